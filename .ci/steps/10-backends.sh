#!/usr/bin/env bash
# The backend suite under JAX, in .venv-backends (requirements.txt +
# requirements-backends.txt). TensorFlow's share is the README's test
# command, which CI has just run, plus the `backends_only` tests it leaves
# out. PyTorch runs in `./run.sh backends` (all three backends), not here:
# its eager steps do not fit CI's 90 minutes beside the other suites
# (measured 2026-11-29: the JAX run alone took 22 min on the 2-core machine).
set -euo pipefail
./run.sh backends --backends jax
./run.sh test -m backends_only -q -p no:cacheprovider
