#!/usr/bin/env bash
# Sets up .venv (this checkout installed editable with the extras of
# requirements.txt, every version pinned by constraints.txt; FCN extensions
# installed into its Keras), then runs one job:
#   ./run.sh demo [args]   the nine-experiment demo on the bundled data
#   ./run.sh test [args]   the test suite (extra args go to pytest), over 2
#                          processes where there are 2+ cores (pytest-xdist;
#                          FCN_TEST_WORKERS=N: N of them, 0: serial)
#   ./run.sh notebook [args]  JupyterLab on 127.0.0.1 with this venv's kernel
#                             "FCN in Keras (.venv)" (extra args go to jupyter lab)
#   ./run.sh backends [args]  the backend suite under TensorFlow, JAX and
#                          PyTorch, in its own .venv-backends
#                          (requirements-backends.txt); args go to
#                          tests/backend_suite.py (--help)
# A second run reinstalls nothing unless the requirements, constraints.txt,
# pyproject.toml, setup.py or extensions/ changed.
set -euo pipefail
cd "$(dirname "$0")"

usage() { echo "usage: ./run.sh demo|test|notebook|backends [args...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
job=$1; shift
case "$job" in demo|test|notebook|backends) ;; *) usage ;; esac

find_python() {
    for candidate in "${PYTHON:-}" python3.11 python3 python; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            echo "$candidate"; return 0
        fi
    done
    return 1
}

# sync_venv VENV REQUIREMENTS: creates VENV, installs REQUIREMENTS (again only
# when it, the constraints or the package's metadata change), then the FCN
# extensions into its Keras.
sync_venv() {
    local venv=$1 requirements=$2
    if [ ! -x "$venv/bin/python" ]; then
        python=$(find_python) || {
            echo "error: Python 3.11 not found; install it or set PYTHON=/path/to/python3.11" >&2
            exit 1
        }
        echo "[run.sh] creating $venv with $python"
        "$python" -m venv "$venv"
    fi
    local stamp="$venv/.requirements.sha256" wanted
    wanted=$(cat "$requirements" constraints.txt pyproject.toml setup.py |
        "$venv/bin/python" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
    if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
        echo "[run.sh] installing $requirements into $venv (a few minutes the first time)"
        # A venv made before the package existed has tensorflow-cpu, which
        # shares its files with the `tensorflow` the package requires.
        if "$venv/bin/python" -m pip show -q tensorflow-cpu >/dev/null 2>&1; then
            "$venv/bin/python" -m pip uninstall -q -y tensorflow-cpu tensorflow
        fi
        # Both venvs install this checkout editable, which writes its
        # metadata here: one pip at a time (CI prepares them side by side).
        local install=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements")
        if command -v flock >/dev/null 2>&1; then
            flock .run.sh.lock "${install[@]}"
        else
            "${install[@]}"
        fi
        echo "$wanted" > "$stamp"
    fi
    # Idempotent: reports "up to date" and writes nothing when extensions/ is unchanged.
    "$venv/bin/python" FCN_setup.py install --quiet
}

if [ "$job" = backends ]; then
    sync_venv .venv-backends requirements-backends.txt
else
    sync_venv .venv requirements.txt
fi

export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
# TF's BFC allocator reuses the large multi-crop batches instead of having the
# kernel zero-fill fresh pages for each (see BENCHMARKS.md, image loaders).
export TF_CPU_ALLOCATOR_USE_BFC="${TF_CPU_ALLOCATOR_USE_BFC:-true}"
case "$job" in
    demo) exec .venv/bin/python -m fcn_experiments demo "$@" ;;
    test)
        # Over pytest-xdist workers, each test file on one worker, longest
        # first (tests/conftest.py): 2 where the machine has 2 or more cores
        # (docs/testing.md);
        # FCN_TEST_WORKERS=N sets N (auto: one per core), 0 or 1 runs serially.
        workers=${FCN_TEST_WORKERS:-}
        if [ -z "$workers" ]; then
            cores=$(.venv/bin/python -c 'import os; print(os.cpu_count() or 1)')
            workers=1
            [ "$cores" -ge 2 ] && workers=2
        fi
        parallel=()
        case "$workers" in
            0|1) ;;
            *) parallel=(-n "$workers" --dist loadfile --no-loadscope-reorder) ;;
        esac
        exec .venv/bin/python -m pytest ${parallel[@]+"${parallel[@]}"} "$@" ;;
    notebook)
        # The kernel FCN_demo.ipynb names, in the venv (not the user's Jupyter
        # dirs); re-registered each time, as it holds this venv's absolute path.
        .venv/bin/python -m ipykernel install --sys-prefix --name fcn-keras \
            --display-name "FCN in Keras (.venv)" >/dev/null
        # Serves this folder (the working directory). `python -m`: the venv's
        # console scripts may name another venv's python.
        exec .venv/bin/python -m jupyterlab --ip=127.0.0.1 "$@" ;;
    backends) exec .venv-backends/bin/python tests/backend_suite.py "$@" ;;
esac
