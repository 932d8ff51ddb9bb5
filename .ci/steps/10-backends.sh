#!/usr/bin/env bash
# The backend suite: the `backend_suite` tests under TensorFlow, JAX and
# PyTorch, one subprocess each, in their own .venv-backends (installed from
# requirements.txt + requirements-backends.txt on the first run).
set -euo pipefail
./run.sh backends
