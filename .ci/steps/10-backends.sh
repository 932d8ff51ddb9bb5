#!/usr/bin/env bash
# The backend suite under JAX, in .venv-backends (requirements.txt +
# requirements-backends.txt). TensorFlow's share is the README's test
# command, which CI has just run, plus the `backends_only` tests it leaves
# out. PyTorch (74/74 in 597 s here) runs in `./run.sh backends`, not here,
# to keep CI well inside its 90 minutes (the JAX run took 22 min here).
set -euo pipefail
# The nine-experiment CLI run under JAX is left out: it takes about 3 min an
# experiment here (XLA compiles each model), 27 min in all.
./run.sh backends --backends jax \
    --deselect=tests/test_experiments_backends.py::test_cli_tiny_profile_runs_all_nine
./run.sh test -m backends_only -q -p no:cacheprovider
