#!/usr/bin/env bash
# The backend suite under JAX and PyTorch, one process each, in .venv-backends
# (requirements-backends.txt); TensorFlow's share is the
# README's test command, which CI has just run, plus the `backends_only`
# tests it leaves out. Together: every backend, and the framework's CLI on
# each (tiny profile, experiment 8: multi-crop, the FCN at 1.5x on three
# crops). The CLI's all-nine run (marker `cli_all_nine`: 7 to 8 minutes
# under JAX on a 2-core Xeon) stays in `./run.sh backends`.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Two pytest workers per backend: XLA compiles on one core, so a second
# worker about halves JAX's share. JAX's long tests sit in a few files, so
# its workers share out tests (on a 2-core Xeon: 906 s by file; 797 s and
# 515 s by test in two runs); PyTorch's, by file.
suite="backend_suite and not cli_all_nine and not fcn_families"
./run.sh backends --backends jax -m "$suite" -n 2 --dist load
./run.sh backends --backends torch -m "$suite" -n 2 --dist loadfile
FCN_TEST_WORKERS=0 ./run.sh test -m "backends_only and not cli_all_nine" -q -p no:cacheprovider \
    -n 2 --dist loadfile
