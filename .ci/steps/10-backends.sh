#!/usr/bin/env bash
# The backend suite: the `backend_suite` tests under JAX and PyTorch, one
# subprocess each, in their own .venv-backends (requirements.txt +
# requirements-backends.txt). TensorFlow's share is the README's test
# command, which CI has just run, plus the `backends_only` tests it leaves
# out: together, what `./run.sh backends` runs under TensorFlow.
set -euo pipefail
./run.sh backends --backends jax,torch
./run.sh test -m backends_only -q -p no:cacheprovider
