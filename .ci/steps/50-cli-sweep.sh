#!/usr/bin/env bash
# The command line over its combinations and bad inputs: no traceback, only
# documented exit statuses (tests/test_cli_sweep.py). Full and read-only
# disks need a tmpfs mount (root); elsewhere those cases are skipped.
set -euo pipefail
# Two pytest workers, test by test: each trains the three tasks once (its
# own module fixture), then shares out the combinations.
FCN_TEST_WORKERS=0 ./run.sh test tests/test_cli_sweep.py -m sweep -q -n 2 --dist load
