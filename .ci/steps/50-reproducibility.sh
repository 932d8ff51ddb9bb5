#!/usr/bin/env bash
# Same seed, same numbers: a small real run twice, once beside a CPU-bound
# process; byte-identical test predictions (tests/test_reproducibility.py).
set -euo pipefail
FCN_TEST_WORKERS=0 ./run.sh test tests/test_reproducibility.py -m reproducibility -q
