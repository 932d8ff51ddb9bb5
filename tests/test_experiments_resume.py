"""A run killed (SIGKILL) in the middle of training resumes from its last
finished epoch."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras

import fcn_experiments
from fcn_experiments.models.experiments import get_experiment
from fcn_experiments.training import records as training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENT = 9  # multi-crop + skip: the most involved model
EPOCHS = 3

# Trains experiment 9 and, in the middle of its second epoch (after the first
# one is backed up), tells the test it is there and waits to be killed.
VICTIM = """
import sys, time, keras, fcn_experiments

class WaitForKill(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1:
            open(sys.argv[2], "w").close()
            time.sleep(600)

fcn_experiments.run_experiments(
    profile="tiny", output_dir=sys.argv[1], experiments=[{experiment}],
    epochs={epochs}, callbacks=[WaitForKill()], plots_to_make=False,
)
raise SystemExit("not killed")
"""


class EpochRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def _log(folder):
    with open(os.path.join(folder, training.LOG_FILE), newline="") as f:
        return list(csv.DictReader(f))


def test_killed_run_resumes_from_its_last_finished_epoch(tmp_path):
    out = str(tmp_path / "out")
    flag = str(tmp_path / "in_epoch_2")
    folder = os.path.join(out, get_experiment(EXPERIMENT).folder)
    script = VICTIM.format(experiment=EXPERIMENT, epochs=EPOCHS)
    errors = tmp_path / "victim_stderr.txt"
    with open(errors, "w") as stderr:
        victim = subprocess.Popen(
            [sys.executable, "-c", script, out, flag],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        # A victim that never reaches epoch 2 exits ("not killed") and fails
        # here; one that hangs is stopped by pytest-timeout.
        while not os.path.exists(flag):
            assert victim.poll() is None, errors.read_text()[-3000:]
            time.sleep(0.2)
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.kill()
        victim.wait()
    assert victim.returncode == -signal.SIGKILL

    with open(
        os.path.join(folder, training.BACKUP_DIR, "training_metadata.json")
    ) as f:
        assert json.load(f)["epoch"] == 1
    assert not os.path.exists(os.path.join(folder, training.RESULT_FILE))
    first_epoch = _log(folder)
    assert [row["epoch"] for row in first_epoch] == ["0"]

    recorder = EpochRecorder()
    rows = fcn_experiments.run_experiments(
        profile="tiny",
        output_dir=out,
        experiments=[EXPERIMENT],
        epochs=EPOCHS,
        callbacks=[recorder],
        plots_to_make=False,
        verbose=0,
    )
    # Only the epochs that had not finished were trained again...
    assert recorder.epochs == [1, 2]
    log = _log(folder)
    assert [row["epoch"] for row in log] == ["0", "1", "2"]
    # ...and the first one is the killed run's, not a retrained one.
    assert log[0] == first_epoch[0]
    assert rows[0]["epochs"] == EPOCHS
    assert os.path.exists(os.path.join(folder, training.RESULT_FILE))
    assert not os.path.exists(os.path.join(folder, training.BACKUP_DIR))
