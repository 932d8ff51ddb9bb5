"""Same seed, same numbers: a small real run (graph mode, as a user's),
made twice through the command line, once with a CPU-bound process beside
it, gives byte-identical per-image test predictions and equal results
apart from timings. CI step .ci/steps/50-reproducibility.sh (marker
`reproducibility`)."""

import csv
import os
import subprocess
import sys

import pytest

from cli_helpers import check_ended_cleanly
from cli_helpers import cli
from fcn_experiments.models.experiments import get_experiment

pytestmark = pytest.mark.reproducibility

# Experiments #3 (native size) and #8 (multi-crop), in graph mode.
COMMAND = ("run", "--profile", "tiny", "--no-run-eagerly", "--experiments",
           "3,8", "--epochs", "3", "--mixed-precision", "float32", "--seed",
           "1", "--no-plots", "--quiet")
# Timing columns, besides each phase's `seconds_<phase>`.
TIMINGS = {"train_images_per_s", "wall_time_s", "epoch_seconds",
           "train_seconds"}
FOLDERS = tuple(get_experiment(number).folder for number in (3, 8))


def _rows(path):
    with open(path, newline="") as f:
        return [
            {k: v for k, v in row.items()
             if k not in TIMINGS and not k.startswith("seconds_")}
            for row in csv.DictReader(f)
        ]


def _run(data_dir, out):
    proc = cli(*COMMAND, "--data-dir", data_dir, "--output-dir", out)
    check_ended_cleanly(proc, (0,))
    return out


def test_same_seed_same_numbers_idle_and_beside_a_busy_process(tmp_path):
    data_dir = str(tmp_path / "data")
    idle = _run(data_dir, str(tmp_path / "idle"))
    busy_loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        loaded = _run(data_dir, str(tmp_path / "loaded"))
    finally:
        busy_loop.kill()
        busy_loop.wait()
    for folder in FOLDERS:
        for name in ("test_predictions.csv",):
            with open(os.path.join(idle, folder, name), "rb") as f:
                first = f.read()
            with open(os.path.join(loaded, folder, name), "rb") as f:
                assert f.read() == first, f"{folder}/{name} differs"
        assert _rows(os.path.join(idle, folder, "training_log.csv")) == _rows(
            os.path.join(loaded, folder, "training_log.csv"))
    assert _rows(os.path.join(idle, "results.csv")) == _rows(
        os.path.join(loaded, "results.csv"))
