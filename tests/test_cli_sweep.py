"""The command line over its combinations, and over bad inputs: `run`,
`demo`, `predict` and `export` on small real photos, for each task x
resize mode (experiments #1 stretch, #3 native, #6 crop, #7 pad, #8
multicrop) x `--scales` x `--heatmaps` x model source (experiment folder,
run folder with `--experiment`, `.keras` file); bad score tables under each
threshold path, missing and empty folders, unreadable images, read-only and
full output disks. Every call must end with a documented exit status and
no exception (a traceback); a failure with exactly one `error:` line.

Each task trains once (tiny profile); predict and export reuse the models.
In-process (`cli.main`) so that TensorFlow loads once; the failure paths
of a separate process are tests/test_cli_failures.py. CI step
.ci/steps/50-cli-sweep.sh (marker `sweep`)."""

import csv
import os
import shutil

import pytest

from cli_helpers import DOCUMENTED_STATUSES
from cli_helpers import can_mount
from cli_helpers import edit_table
from cli_helpers import error_lines
from cli_helpers import tmpfs
from cli_helpers import write_class_split
from cli_helpers import write_scored_split
from fcn_experiments import cli
from fcn_experiments.models.experiments import get_experiment
from loader_test_images import photo
from loader_test_images import write_bad_files

pytestmark = pytest.mark.sweep

TASKS = ("classification", "regression", "distribution")
# Experiment number: its resize mode in the tiny profile.
MODES = {1: "stretch", 3: "native", 6: "crop", 7: "pad", 8: "multicrop"}
FOLDERS = {number: get_experiment(number).folder for number in MODES}
TINY = ("--profile", "tiny", "--no-plots", "--quiet")
MOUNTABLE = can_mount()


def run_cli(capsys, *args, statuses=DOCUMENTED_STATUSES):
    """`cli.main(args)`: checks the status and the one error line; returns
    `(status, error line or '')`."""
    try:
        status = cli.main([str(a) for a in args])
    except SystemExit as exit_:  # argparse's usage errors
        status = exit_.code
    err = capsys.readouterr().err
    assert status in statuses, f"status {status} for {args}\n{err[-3000:]}"
    errors = error_lines(err)
    if status == 0:
        assert not errors, err
        return status, ""
    if status == 2 and not errors:  # argparse: 'prog: error: ...'
        assert "error:" in err, err
        return status, err.strip().splitlines()[-1]
    assert len(errors) == 1, err
    return status, errors[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep_data")
    write_class_split(str(root / "classes" / "train"), 24, 0)
    write_class_split(str(root / "classes" / "test"), 10, 1)
    write_scored_split(str(root / "scored" / "train"), 24, 2)
    write_scored_split(str(root / "scored" / "test"), 10, 3)
    return root


def _split_dirs(data, task):
    kind = "classes" if task == "classification" else "scored"
    return data / kind / "train", data / kind / "test"


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """`{task: run folder}`: experiments 1, 3, 6, 7, 8 of each task."""
    runs = {}
    for task in TASKS:
        out = tmp_path_factory.mktemp(f"run_{task}")
        train, test = _split_dirs(data, task)
        # avg: the pooling a distribution needs, and the quick profile's.
        status = cli.main(["run", *TINY, "--fcn-pooling", "avg", "--task",
                           task, "--experiments",
                           ",".join(map(str, MODES)), "--train-dir", str(train),
                           "--test-dir", str(test), "--output-dir", str(out)])
        assert status == 0, task
        runs[task] = out
    return runs


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep_photos")
    for name in ("rocket", "chelsea_portrait", "motorcycle_wide", "hubble_small"):
        photo(name).save(str(folder / f"{name}.jpg"), quality=92)
    return folder


def test_run_trains_every_task_and_resize_mode(trained):
    for task, out in trained.items():
        with open(out / "results.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert {int(r["experiment"]): r["resize_mode"] for r in rows} == MODES


def test_demo(capsys, tmp_path):
    for task in ("classification", "regression"):
        run_cli(capsys, "demo", *TINY, "--task", task, "--experiments", "3",
                "--output-dir", tmp_path / task, statuses=(0,))


def _nan(rows):
    rows[3][1] = "nan"
    return rows


def _missing(rows):
    rows[3][0] = "img/not_there.png"
    return rows


def _duplicate(rows):
    return rows + [rows[1]]


def _out_of_range(rows):
    rows[3][1] = "9.5"
    return rows


def _one_score(rows):
    return [rows[0]] + [[r[0], "2.0"] for r in rows[1:]]


def _bad_header(rows):
    return [["file", "score"]] + rows[1:]


BAD_TABLES = {"nan": _nan, "missing file": _missing, "duplicate": _duplicate,
              "out of range": _out_of_range, "one score": _one_score,
              "bad header": _bad_header, "no table": None}
THRESHOLDS = {"median": (), "range": ("--score-range", "1", "4"),
              "threshold": ("--score-threshold", "2.5")}


@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize("bad", BAD_TABLES)
@pytest.mark.parametrize("split", ("train", "test"))
def test_bad_score_tables(data, capsys, tmp_path, split, bad, threshold):
    copy = tmp_path / "scored"
    shutil.copytree(data / "scored", copy)
    table = copy / split / "scores.csv"
    if BAD_TABLES[bad] is None:
        os.remove(table)
    else:
        edit_table(str(table), BAD_TABLES[bad])
    status, line = run_cli(
        capsys, "run", *TINY, "--task", "regression", "--experiments", "2",
        "--train-dir", copy / "train", "--test-dir", copy / "test",
        "--output-dir", tmp_path / "out", *THRESHOLDS[threshold])
    # Out of range only exists where a range is given.
    if bad == "out of range" and threshold != "range":
        assert status == 0
        return
    assert status in (1, 2) and "scores.csv" in line
    assert not (tmp_path / "out" / "exp2_fcn" / "training_log.csv").exists()


@pytest.mark.parametrize("bad", ("nan", "missing file", "no table"))
def test_bad_distribution_tables(data, capsys, tmp_path, bad):
    copy = tmp_path / "scored"
    shutil.copytree(data / "scored", copy)
    table = copy / "train" / "distributions.csv"
    if bad == "no table":
        os.remove(table)
    else:
        edit_table(str(table), _nan if bad == "nan" else _missing)
    status, line = run_cli(
        capsys, "run", *TINY, "--fcn-pooling", "avg", "--task",
        "distribution", "--experiments", "2",
        "--train-dir", copy / "train", "--test-dir", copy / "test",
        "--output-dir", tmp_path / "out")
    assert status in (1, 2) and "distributions.csv" in line


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("folder", ("missing", "empty"))
def test_missing_or_empty_data_folder(data, capsys, tmp_path, task, folder):
    train, test = _split_dirs(data, task)
    bad = tmp_path / "train"
    if folder == "empty":
        bad.mkdir()
    status, line = run_cli(
        capsys, "run", *TINY, "--fcn-pooling", "avg", "--task", task,
        "--experiments", "2", "--train-dir", bad, "--test-dir", test,
        "--output-dir", tmp_path / "out")
    assert status in (1, 2) and str(bad) in line


def test_unreadable_images_are_left_out_of_training(data, capsys, tmp_path):
    copy = tmp_path / "classes"
    shutil.copytree(data / "classes", copy)
    bad = write_bad_files(str(copy / "train" / "sharp"))
    status, _ = run_cli(
        capsys, "run", *TINY, "--experiments", "3", "--train-dir",
        copy / "train", "--test-dir", copy / "test", "--output-dir",
        tmp_path / "out", statuses=(0,))
    # And predict reports them one by one.
    status, line = run_cli(
        capsys, "predict", tmp_path / "out" / FOLDERS[3], *bad.values(),
        "--output", tmp_path / "scores.csv")
    assert status == 1 and "could not be scored" in line


@pytest.mark.parametrize("inputs", ("missing", "empty folder", "no images"))
def test_predict_without_images(trained, capsys, tmp_path, inputs):
    folder = tmp_path / "in"
    if inputs != "missing":
        folder.mkdir()
    if inputs == "no images":
        (folder / "notes.txt").write_text("not an image\n")
    status, line = run_cli(capsys, "predict", trained["classification"] /
                           FOLDERS[3], folder, "--output", tmp_path / "s.csv")
    assert status == 2


def test_predict_and_export_missing_models(capsys, tmp_path, photos):
    for command, tail in (("predict", [photos]),
                          ("export", [tmp_path / "m.keras", "--format", "keras"])):
        for model in (tmp_path / "nothing", tmp_path / "nothing.keras"):
            status, _ = run_cli(capsys, command, model, *tail)
            assert status == 2


needs_mount = pytest.mark.skipif(
    not MOUNTABLE, reason="mounting a tmpfs needs root with CAP_SYS_ADMIN "
    "(chmod does not stop root, so a read-only or full disk cannot be made)")


@needs_mount
@pytest.mark.parametrize("disk", ("read-only", "full"))
def test_outputs_on_a_read_only_or_full_disk(trained, photos, capsys, tmp_path, disk):
    experiment = trained["classification"] / FOLDERS[3]
    reason = "Read-only file system" if disk == "read-only" else (
        "No space left on device")
    with tmpfs(str(tmp_path / "disk"), "1m" if disk == "read-only" else "64k",
               read_only=disk == "read-only") as mount:
        calls = [
            ("predict", experiment, photos, "--output",
             os.path.join(mount, "scores.csv"), "--heatmaps",
             os.path.join(mount, "maps"), "--quiet"),
            ("export", experiment, os.path.join(mount, "m.keras"), "--format",
             "keras"),
        ]
        for args in calls:
            status, line = run_cli(capsys, *args, statuses=(1,))
            assert reason in line and mount in line, line


# The model combinations last: the bad inputs, quicker, report first.
def _source(run, number, kind):
    if kind == "experiment folder":
        return [run / FOLDERS[number]]
    if kind == "run folder":
        return [run, "--experiment", number]
    return [run / FOLDERS[number] / "best.keras"]


SOURCES = ("experiment folder", "run folder", ".keras file")


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("heatmaps", (False, True), ids=("", "heatmaps"))
@pytest.mark.parametrize("scales", ("1", "1,1.5"))
@pytest.mark.parametrize("number", sorted(MODES), ids=MODES.values())
@pytest.mark.parametrize("task", TASKS)
def test_predict(trained, photos, capsys, tmp_path, task, number, scales,
                 heatmaps, source):
    output = tmp_path / "scores.csv"
    flags = ["--scales", scales, "--output", output, "--quiet"]
    if heatmaps:
        flags += ["--heatmaps", tmp_path / "maps"]
    status, line = run_cli(capsys, "predict", *_source(trained[task], number, source),
                           photos, *flags)
    fixed = number == 1  # Keras' original: one size, no score map.
    if fixed and (heatmaps or scales != "1"):
        assert status == 2 and "Keras' original model" in line
        return
    assert status == 0, line
    with open(output, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and all(row["error"] == "" for row in rows)
    if heatmaps:
        assert len(os.listdir(tmp_path / "maps")) == 4


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("task", TASKS)
def test_export(trained, capsys, tmp_path, task, source):
    out = tmp_path / "model.keras"
    run_cli(capsys, "export", *_source(trained[task], 3, source), out,
            "--format", "keras", statuses=(0,))
    assert out.is_file() and (tmp_path / "model.keras.json").is_file()
