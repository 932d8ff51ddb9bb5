"""Expected failures of the command line end in one line, never a
traceback: multi-scale heatmaps, bad score tables under every threshold
path, two runs into one folder, a full or read-only disk, sizes below the
backbone's minimum. Real photos, real (tiny) training, the CLI in a
subprocess as a user runs it."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from cli_helpers import ROOT
from cli_helpers import can_mount
from cli_helpers import check_ended_cleanly
from cli_helpers import cli
from cli_helpers import edit_table
from cli_helpers import remount
from cli_helpers import tmpfs
from cli_helpers import write_scored_split
from loader_test_images import photo

TINY = ("--profile", "tiny", "--no-plots", "--quiet")
MOUNTABLE = can_mount()
NEEDS_MOUNT = pytest.mark.skipif(
    not MOUNTABLE,
    reason="mounting a tmpfs needs root with CAP_SYS_ADMIN: a full or "
    "read-only disk cannot be made here (chmod does not stop root)",
)


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The bundled dataset's cache, built by the first run that uses it."""
    return str(tmp_path_factory.mktemp("bundled"))


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """A tiny run of experiment #3 (the FCN at 1.5x, native size)."""
    out = str(tmp_path_factory.mktemp("run"))
    proc = cli("run", *TINY, "--experiments", "3", "--data-dir", data_dir,
               "--output-dir", out)
    assert check_ended_cleanly(proc, (0,)) == ""
    return out


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("photos"))
    for name in ("rocket", "coffee", "chelsea_portrait"):
        photo(name).save(os.path.join(folder, f"{name}.png"))
    return folder


def test_multi_scale_scores_with_heatmaps(trained, photos, tmp_path):
    experiment = os.path.join(trained, "exp3_fcn_1.5x")
    both = str(tmp_path / "both.csv")
    proc = cli("predict", experiment, photos, "--scales", "1,1.5",
               "--heatmaps", tmp_path / "maps", "--output", both, "--quiet")
    check_ended_cleanly(proc, (0,))
    rows = _read_csv(both)
    assert len(rows) == 3 and all(row["error"] == "" for row in rows)
    assert sorted(os.listdir(tmp_path / "maps")) == sorted(
        os.path.basename(row["heatmap"]) for row in rows
    )
    # The heatmaps change nothing in the scores.
    plain = str(tmp_path / "plain.csv")
    check_ended_cleanly(
        cli("predict", experiment, photos, "--scales", "1,1.5", "--output",
            plain, "--quiet"), (0,))
    for row, other in zip(rows, _read_csv(plain)):
        for key in other:
            if key.startswith("p_"):
                assert float(row[key]) == pytest.approx(float(other[key]), abs=1e-6)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("scored")
    write_scored_split(str(root / "train"), 20, 0)
    write_scored_split(str(root / "test"), 10, 1)
    return root


def _nan_row(rows):
    rows[4][1] = "nan"
    return rows


def _missing_file(rows):
    rows[4][0] = "img/not_there.png"
    return rows


@pytest.mark.parametrize(
    "bad, threshold, message",
    [
        ("nan", (), "'nan'"),
        ("missing file", (), "not_there.png"),
        ("no table", (), "scores.csv"),
        ("nan", ("--score-range", "1", "4"), "'nan'"),
        ("missing file", ("--score-threshold", "2.5"), "not_there.png"),
    ],
)
def test_bad_score_table_is_one_line_on_every_threshold_path(
    scored, tmp_path, bad, threshold, message
):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(scored, data)
    table = str(data / "train" / "scores.csv")
    if bad == "no table":
        os.remove(table)
    else:
        edit_table(table, _nan_row if bad == "nan" else _missing_file)
    out = tmp_path / "out"
    proc = cli("run", *TINY, "--task", "regression", "--experiments", "2",
               "--train-dir", data / "train", "--test-dir", data / "test",
               "--output-dir", out, *threshold)
    line = check_ended_cleanly(proc, (1, 2))
    assert message in line and "scores.csv" in line
    assert not os.path.exists(out / "exp2_fcn" / "training_log.csv")


VICTIM_EPOCHS = "400"  # Far longer than the test: it is killed.


def _wait_for_line(path, text, proc):
    """Polls `path` (the process's stdout) until it holds `text`."""
    while proc.poll() is None:
        with open(path) as f:
            if text in f.read():
                return True
        time.sleep(0.2)
    return False


def test_second_run_into_one_folder_stops_at_once(data_dir, tmp_path):
    out = str(tmp_path / "out")
    command = [sys.executable, "-m", "fcn_experiments", "run", *TINY[:2],
               "--no-plots", "--experiments", "3", "--epochs", VICTIM_EPOCHS,
               "--data-dir", data_dir, "--output-dir", out]
    log = str(tmp_path / "first.log")
    with open(log, "w") as stdout:
        first = subprocess.Popen(command, cwd=ROOT, stdout=stdout,
                                 stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait_for_line(log, "Precision:", first), open(log).read()
        # Another experiment and another size of output: the same folder.
        second = cli("run", *TINY, "--experiments", "1", "--epochs",
                     VICTIM_EPOCHS, "--data-dir", data_dir, "--output-dir",
                     out, timeout=300)
        line = check_ended_cleanly(second, (1,))
        assert f"pid {first.pid}" in line and out in line
        assert "--output-dir" in line
        assert first.poll() is None  # The first run goes on.
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # The killed run's lock is stale: the next run takes it over.
    third = cli("run", *TINY, "--experiments", "3", "--epochs", "1",
                "--force", "--data-dir", data_dir, "--output-dir", out)
    check_ended_cleanly(third, (0,))
    assert os.path.isfile(os.path.join(out, "exp3_fcn_1.5x", "result.json"))


def test_refuses_sizes_below_the_backbones_minimum(tmp_path):
    for size in ("0", "16"):
        proc = cli("run", *TINY, "--base-size", size, "--output-dir",
                   tmp_path / "out")
        line = check_ended_cleanly(proc, (2,))
        assert f"Received: base_size={size}" in line and "32 px" in line
    assert not os.path.exists(tmp_path / "out")


@NEEDS_MOUNT
def test_full_disk_is_one_line_and_a_rerun_resumes(data_dir, tmp_path):
    with tmpfs(str(tmp_path / "disk"), "3m") as disk:
        out = os.path.join(disk, "out")
        args = ("run", *TINY, "--experiments", "3,4", "--data-dir", data_dir,
                "--output-dir", out)
        line = check_ended_cleanly(cli(*args), (1,))
        assert "No space left on device" in line and disk in line
        assert "resumes" in line
        remount(disk, "64m")  # Space freed: the same command finishes.
        check_ended_cleanly(cli(*args), (0,))
        rows = _read_csv(os.path.join(out, "results.csv"))
        assert [row["experiment"] for row in rows] == ["3", "4"]


@NEEDS_MOUNT
def test_read_only_output_folder_is_one_line(data_dir, tmp_path):
    with tmpfs(str(tmp_path / "ro"), "1m", read_only=True) as disk:
        proc = cli("run", *TINY, "--experiments", "1", "--data-dir",
                   data_dir, "--output-dir", disk)
        line = check_ended_cleanly(proc, (1,))
        assert "Read-only file system" in line and disk in line
