#!/usr/bin/env bash
# Multi-worker training for real: two worker processes on 127.0.0.1
# (MultiWorkerMirroredStrategy), a worker killed mid-training, a resumed
# re-run. Minutes of CPU, hence outside the default suite.
set -euo pipefail
cd "$(dirname "$0")/../.."
FCN_TEST_WORKERS=0 ./run.sh test -m multi_worker tests/test_experiments_multi_worker.py
