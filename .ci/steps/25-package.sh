#!/usr/bin/env bash
# The package as a user installs it: the sdist and wheel built, the wheel
# installed in a fresh venv outside the checkout (runtime layer, pinned by
# constraints.txt), then fcn-setup, the imports, a tiny run, predict, the
# notebook and the uninstall run from there (tests/test_package_install.py).
set -euo pipefail
FCN_TEST_WORKERS=0 ./run.sh test tests/test_package_install.py -m package -q
