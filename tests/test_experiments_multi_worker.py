"""Multi-worker training for real: two worker processes on 127.0.0.1
(MultiWorkerMirroredStrategy, cluster from TF_CONFIG) run the experiments
CLI; one of them is killed (SIGKILL) mid-training; a re-run resumes.

Each worker runs the CLI (`fcn_experiments.cli.main`); a worker told to
hold does so in the middle of epoch 2, after epoch 1 is backed up, so that
the kill lands mid-training however fast the machine is.

The cluster tests take minutes of CPU: they are marked `multi_worker` and run
in CI's step .ci/steps/40-multiworker.sh (`./run.sh test -m multi_worker`);
the rest of this file runs in the default suite.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import types

import pytest

from fcn_experiments.models.experiments import get_experiment
from fcn_experiments.reporting.run_record import RUN_FILE
from fcn_experiments.training import distribute
from fcn_experiments.training import records as training
from fcn_experiments.training.output_lock import LOCK_FILE
from fcn_experiments.training.timings import TIMINGS_FILE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENT = 1
# Seconds a collective waits for the other worker: above the skew between two
# workers tracing on a loaded 2-core machine, and the bound on how long the
# survivor waits once its peer is dead.
COLLECTIVE_TIMEOUT = 120


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# A worker: the CLI, with one callback added when this worker is told to
# hold (argv[1]: the flag file to write once it holds, or "").
WORKER = """
import json, os, sys, time
import keras
from fcn_experiments import cli
from fcn_experiments import runner

class HoldInEpoch2(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1:
            open(sys.argv[1], "w").close()
            time.sleep(3600)

if sys.argv[1]:
    run = runner.run_experiments
    runner.run_experiments = lambda *a, **k: run(
        *a, callbacks=[HoldInEpoch2()], **k
    )
raise SystemExit(cli.main(sys.argv[2:]))
"""


class Cluster:
    """Two workers running the experiments CLI, each in its own process
    group, killed whatever happens."""

    def __init__(self, tmp_path, output_dir, epochs):
        self.tmp_path = tmp_path
        self.output_dir = output_dir
        self.epochs = epochs
        self.workers = []
        self.logs = []

    def start(self, name, hold=None):
        """Starts both workers; worker `hold` holds in epoch 2 and writes
        `self.holding` when it does."""
        ports = _free_ports(2)
        cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
        arguments = [
            "run",
            "--profile", "tiny",
            "--experiments", str(EXPERIMENT),
            "--epochs", str(self.epochs),
            "--no-run-eagerly",  # the tf.function path, as real training
            "--no-plots",
            "--quiet",
            "--output-dir", self.output_dir,
            "--collective-timeout", str(COLLECTIVE_TIMEOUT),
        ]  # fmt: skip
        self.holding = self.tmp_path / f"{name}_holding"
        self.workers, self.logs = [], []
        for index in range(2):
            env = dict(os.environ)
            env["TF_CONFIG"] = json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            )
            flag = str(self.holding) if index == hold else ""
            log = self.tmp_path / f"{name}_worker{index}.txt"
            with open(log, "w") as out:
                self.workers.append(
                    subprocess.Popen(
                        [sys.executable, "-c", WORKER, flag, *arguments],
                        cwd=ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            self.logs.append(log)
        return self

    def wait(self):
        return [worker.wait() for worker in self.workers]

    def log(self, index):
        return self.logs[index].read_text()

    def stop(self):
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


@pytest.fixture
def cluster(tmp_path):
    made = []

    def make(output_dir, epochs):
        made.append(Cluster(tmp_path, str(output_dir), epochs))
        return made[-1]

    yield make
    for c in made:
        c.stop()


def _log_rows(folder):
    with open(os.path.join(folder, training.LOG_FILE), newline="") as f:
        return list(csv.DictReader(f))


def _backed_up_epoch(folder):
    path = os.path.join(folder, training.BACKUP_DIR, "training_metadata.json")
    try:
        with open(path) as f:
            return json.load(f)["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.multi_worker
def test_two_workers_train_and_only_the_chief_writes(tmp_path, cluster):
    out = tmp_path / "out"
    run = cluster(out, epochs=1).start("normal")
    codes = run.wait()
    assert codes == [0, 0], run.log(0)[-3000:] + run.log(1)[-3000:]
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["experiment"]) for row in rows] == [EXPERIMENT]
    assert 0 <= float(rows[0]["test_accuracy"]) <= 1
    folder = out / get_experiment(EXPERIMENT).folder
    assert [row["epoch"] for row in _log_rows(folder)] == ["0"]
    # The other worker wrote into a scratch folder it removed: the output
    # folder holds the chief's files (its run record and released lock
    # among them) and the shared data only.
    assert sorted(os.listdir(out)) == sorted(
        ["data", "starting_weights", folder.name, "results.csv", "results.md",
         RUN_FILE, TIMINGS_FILE, LOCK_FILE]
    )


@pytest.mark.multi_worker
def test_killed_worker_stops_the_other_and_a_rerun_resumes(tmp_path, cluster):
    out = tmp_path / "out"
    folder = os.path.join(out, get_experiment(EXPERIMENT).folder)
    run = cluster(out, epochs=2).start("killed", hold=1)
    # Worker 1 holds in epoch 2 (the chief waits for it there): kill it. A
    # run that ends first fails here; one that hangs meets pytest-timeout.
    while not run.holding.exists():
        assert run.workers[0].poll() is None, run.log(0)[-3000:]
        assert run.workers[1].poll() is None, run.log(1)[-3000:]
        time.sleep(0.2)
    assert _backed_up_epoch(folder) == 1
    os.killpg(run.workers[1].pid, signal.SIGKILL)
    killed_at = time.monotonic()
    code = run.workers[0].wait()
    seconds = time.monotonic() - killed_at
    log = run.log(0)
    assert code == 1, log[-3000:]
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "another worker stopped answering" in errors[0]
    assert "Traceback" not in log, log[-3000:]
    print(f"chief stopped {seconds:.1f} s after the kill: {errors[0]}")
    assert not os.path.exists(os.path.join(folder, training.RESULT_FILE))
    first_epoch = _log_rows(folder)[0]

    rerun = cluster(out, epochs=2).start("rerun")
    codes = rerun.wait()
    assert codes == [0, 0], rerun.log(0)[-3000:] + rerun.log(1)[-3000:]
    log = _log_rows(folder)
    assert [row["epoch"] for row in log] == ["0", "1"]
    # Epoch 1 is the killed run's, not a retrained one.
    assert log[0] == first_epoch
    assert os.path.exists(os.path.join(folder, training.RESULT_FILE))
    with open(out / "results.csv", newline="") as f:
        assert [int(r["epochs"]) for r in csv.DictReader(f)] == [2]


def test_collective_timeout_is_checked(monkeypatch):
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}})
    )
    for bad in (0, -1.0, "60", True):
        with pytest.raises(ValueError, match="Received: collective_timeout="):
            distribute.multi_worker_strategy(bad)
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        distribute.multi_worker_strategy(60)


def test_a_worker_copies_the_chiefs_state(tmp_path):
    chief, worker = tmp_path / "chief", tmp_path / "worker"
    (chief / training.BACKUP_DIR).mkdir(parents=True)
    (chief / training.BACKUP_DIR / "training_metadata.json").write_text(
        '{"epoch": 1}'
    )
    (worker / "stale").mkdir(parents=True)
    distribute.copy_chief_state(str(chief), str(worker))
    assert _backed_up_epoch(worker) == 1
    assert not (worker / "stale").exists()
    # No chief folder yet (a fresh run): the worker starts empty.
    distribute.copy_chief_state(str(tmp_path / "none"), str(worker))
    assert os.listdir(worker) == []


def test_a_lost_worker_reads_as_one_line():
    import tensorflow as tf

    # A real strategy would join the cluster: only its timeout is read.
    strategy = types.SimpleNamespace(collective_timeout=42)
    error = tf.errors.UnavailableError(
        None,
        None,
        "{{function_node __wrapped__CollectiveReduceV2_device_/job:worker/"
        "replica:0/task:0/device:CPU:0}} Collective ops is aborted by: "
        "recvmsg:Connection reset by peer\nAdditional GRPC error information",
    )
    message = str(distribute.worker_lost_error(error, strategy))
    assert message == (
        "Multi-worker training stopped: another worker stopped answering "
        "(UnavailableError: recvmsg:Connection reset by peer; collective "
        "timeout 42 s). Start all workers again with the same command: "
        "they resume from the last finished epoch."
    )


def test_a_lost_heartbeat_names_the_task():
    import tensorflow as tf

    strategy = types.SimpleNamespace(collective_timeout=9)
    error = tf.errors.UnavailableError(
        None,
        None,
        "Error reported from /job:worker/task:1: The following tasks are "
        "unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1"
        "\nThe tasks have crashed.",
    )
    message = str(distribute.worker_lost_error(error, strategy))
    assert "(stopped sending heartbeats): /job:worker/replica:0/task:1;" in message


def test_a_graph_execution_error_reads_as_its_cause():
    import tensorflow as tf

    strategy = types.SimpleNamespace(collective_timeout=9)
    # As the chief printed it when its peer was killed (TF 2.21).
    error = tf.errors.UnavailableError(
        None,
        None,
        "Graph execution error:\n\n"
        "Detected at node CollectiveReduceV2 defined at (most recent call "
        "last):\n"
        '  File "<string>", line 20, in <module>\n'
        '  File "fcn_experiments/cli.py", line 138, in main\n\n'
        "Collective ops is aborted by: Error reported from /job:worker/task:1"
        ": The following tasks are unhealthy (stopped sending heartbeats)\n"
        "/job:worker/replica:0/task:1\n"
        "The tasks have crashed. Check the task logs for an earlier error.\n"
        "\t [[{{node CollectiveReduceV2}}]] "
        "[type.googleapis.com/tensorflow.DerivedStatus='']",
    )
    message = str(distribute.worker_lost_error(error, strategy))
    assert (
        "(UnavailableError: Error reported from /job:worker/task:1: The "
        "following tasks are unhealthy (stopped sending heartbeats): "
        "/job:worker/replica:0/task:1; collective timeout 9 s)" in message
    )
