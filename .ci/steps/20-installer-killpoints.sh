#!/usr/bin/env bash
# FCN_setup.py under faults, in full (the default suite samples them):
# - kill install and uninstall before every one of their file operations;
# - 50 pairs of concurrent installs, then of uninstalls.
# Budget: about 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
export TF_CPP_MIN_LOG_LEVEL=3
start=$(date +%s)
.venv/bin/python tests/installer_killpoints.py --every 1 --workers 2
FCN_SETUP_CONCURRENT_PAIRS=50 .venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/test_installer_safety.py -k concurrent
echo "[installer-killpoints] $(( $(date +%s) - start )) s"
