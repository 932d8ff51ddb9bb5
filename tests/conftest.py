"""Suite-wide set-up: the notebook's tiny run, shared by the files that
read a trained experiment, and the set-up for runs over several pytest-xdist
workers.

`./run.sh test` runs the default suite in 2 workers where the machine has
2 or more cores, `FCN_TEST_WORKERS=N ./run.sh test` in N (`-n N --dist
loadfile --no-loadscope-reorder`): each test file runs on
one worker, so its module fixtures (the notebook run, the trained
experiment, the pristine Keras copy) are built once, as in a serial run.
Here, only in an xdist worker:

- TensorFlow's op thread pools are sized for one worker's share of the
  cores. TensorFlow (and the subprocesses the tests start: the CLI, the
  notebook's kernel, the installer) would otherwise size them for the whole
  machine, and the workers' threads would fight over the same cores. The
  variables are read when TensorFlow initialises, so they are set here,
  before any test module imports it; a value the caller set wins.
- The files that take longest go first, so that no long file starts last
  while the other worker idles (the order within a file, and of the other
  files, is kept).
"""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "FCN_demo.ipynb")
NOTEBOOK_TESTS = "test_experiments_end_to_end.py"

XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")

if XDIST_WORKER:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                 "OMP_NUM_THREADS"):
        os.environ.setdefault(name, threads)
    # On a GPU machine, each worker takes the GPU memory it needs, not all.
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

# Longest first, as measured in `./run.sh test --durations` runs (see
# .ci/steps/README.md). A file not listed keeps its place after these.
LONGEST_FIRST = (
    "test_experiments_end_to_end.py",  # the notebook's nine experiments
    "test_fcn_models.py",  # five families, VGG-sized models
    "test_experiments_distribute.py",
    "test_experiments_tasks.py",  # a regression, a distribution, a notebook
    "test_experiments_splits.py",
    "test_experiments_backends.py",
    "test_experiments_resume.py",
    "test_experiments_parallel.py",  # worker processes, a kill, a resume
    "test_installer_safety.py",
    "test_cli_failures.py",  # CLI subprocesses: two runs at once, full disk
    "test_predict.py",
    "test_experiments_weights.py",
    "test_fcn_mixed_precision.py",
)


@pytest.hookimpl(trylast=True)  # after pytest's reordering by fixture scope
def pytest_collection_modifyitems(items):
    if XDIST_WORKER:
        rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def tiny_notebook_run(tmp_path_factory):
    """FCN_demo.ipynb executed once (papermill, tiny profile, all nine
    experiments); returns its output folder. test_experiments_end_to_end
    checks it and reruns in it; other files copy what they read from it
    (`tiny_run_to_copy`)."""
    import papermill  # Here: only sessions that run the notebook need it.

    out = str(tmp_path_factory.mktemp("notebook_snapshots"))
    papermill.execute_notebook(
        NOTEBOOK,
        os.path.join(out, "FCN_demo.executed.ipynb"),
        parameters={"PROFILE": "tiny", "OUTPUT_DIR": out},
        kernel_name="python3",
        cwd=ROOT,
        progress_bar=False,
    )
    return out


@pytest.fixture(scope="session")
def tiny_run_to_copy(request):
    """The notebook's run folder when this session runs the notebook anyway
    (its tests are selected, in one process), else None: a file that needs
    one tiny experiment then copies it from there instead of training its
    own (the same profile, so the same experiment). Under xdist another
    worker may hold the notebook's tests, so each trains its own."""
    if XDIST_WORKER or not any(
        item.path.name == NOTEBOOK_TESTS
        and "tiny_notebook_run" in item.fixturenames
        for item in request.session.items
    ):
        return None
    return request.getfixturevalue("tiny_notebook_run")
