"""Experiments side by side (`jobs`): worker processes with their share of
the cores give each experiment the numbers it gets alone; a worker's error
stops the run with that error; killing the run ends its workers."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

import fcn_experiments
from cli_helpers import check_ended_cleanly
from cli_helpers import cli
from fcn_experiments.config import make_config
from fcn_experiments.errors import UsageError
from fcn_experiments.models.experiments import get_experiment
from fcn_experiments.training import parallel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ("run", "--profile", "tiny", "--mixed-precision",
        "float32", "--epochs", "1", "--seed", "3", "--no-plots")


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _results(out):
    import csv

    with open(os.path.join(out, "results.csv"), newline="") as f:
        return {int(row["experiment"]): row for row in csv.DictReader(f)}


def test_an_experiment_side_by_side_equals_it_alone(tmp_path):
    data = str(tmp_path / "data")
    both = str(tmp_path / "both")
    alone = str(tmp_path / "alone")
    proc = cli(*TINY, "--jobs", "2", "--experiments", "1,3", "--data-dir",
               data, "--output-dir", both)
    check_ended_cleanly(proc, (0,))
    # Each worker's lines reach this process's output, named by experiment.
    assert "#3: epoch 1/1:" in proc.stdout, proc.stdout[-3000:]
    assert "2 experiment(s) in 2 worker process(es)" in proc.stdout
    proc = cli(*TINY, "--jobs", "2", "--experiments", "3", "--data-dir",
               data, "--output-dir", alone)
    check_ended_cleanly(proc, (0,))
    folder = get_experiment(3).folder
    assert _read(os.path.join(alone, folder, "test_predictions.csv")) == _read(
        os.path.join(both, folder, "test_predictions.csv")
    )
    threads = parallel.threads_per_job(2)
    rows = _results(both)
    assert sorted(rows) == [1, 3]
    assert {rows[1]["threads"], rows[3]["threads"]} == {str(threads)}
    assert _results(alone)[3]["threads"] == str(threads)
    with open(os.path.join(both, "run.json")) as f:
        recorded = json.load(f)["runs"][-1]["threads"]
    assert (recorded["jobs"], recorded["threads_per_experiment"]) == (2, threads)


def test_a_worker_error_stops_the_run_with_that_error(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    # Experiment 2's folder cannot be made: its worker fails there.
    (out / get_experiment(2).folder).write_text("a file, not a folder")
    with pytest.raises(FileExistsError) as raised:
        fcn_experiments.run_experiments(
            profile="tiny", jobs=2, experiments=[1, 2], output_dir=str(out),
            data_dir=str(tmp_path / "data"), plots_to_make=False, verbose=0,
        )
    assert get_experiment(2).folder in str(raised.value)
    assert any("In the worker process" in note
               for note in raised.value.__notes__)
    assert not multiprocessing.active_children()


def _children(pid):
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(name))
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_workers_end_when_the_run_is_killed(tmp_path):
    out = str(tmp_path / "out")
    log = os.path.join(out, get_experiment(1).folder, "training_log.csv")
    run = subprocess.Popen(
        [sys.executable, "-m", "fcn_experiments", *TINY, "--epochs", "100000",
         "--jobs", "2", "--experiments", "1,2", "--output-dir", out],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        while not os.path.exists(log):  # A worker has finished an epoch.
            assert run.poll() is None, run.stderr.read()[-3000:]
            time.sleep(0.2)
        workers = _children(run.pid)
        assert workers
        run.send_signal(signal.SIGKILL)
        run.wait()
        # Each worker watches its parent and exits with it; an orphan
        # would train its 100,000 epochs, so pytest-timeout fails the test.
        while any(_alive(pid) for pid in workers):
            time.sleep(0.2)
    finally:
        run.kill()
        run.wait()
        run.stderr.close()


def test_jobs_setting_is_checked():
    assert make_config("quick").jobs == "auto"
    assert make_config("tiny").jobs == 1
    for bad in (0, -1, "two", 1.5, True):
        with pytest.raises(UsageError, match="`jobs` must be 'auto' or a "
                           "positive integer. Received: jobs="):
            make_config("tiny", jobs=bad)
    proc = cli("run", "--profile", "tiny", "--jobs", "two")
    assert proc.returncode == 2
    assert "expected 'auto' or a positive integer. Received: 'two'" in proc.stderr


def test_auto_jobs_train_in_this_process_where_workers_do_not_fit():
    cores = parallel.usable_cores()
    assert parallel.resolve_jobs("auto", replicas=1, gpu=False,
                                 callbacks=()) == parallel.auto_jobs()
    assert 1 <= parallel.auto_jobs() <= cores + 1
    # One thread each wherever auto does not hit the memory cap.
    assert parallel.threads_per_job(cores + 1) == 1
    assert parallel.resolve_jobs("auto", replicas=1, gpu=True,
                                 callbacks=()) == 1
    assert parallel.resolve_jobs("auto", replicas=2, gpu=False,
                                 callbacks=()) == 1
    assert parallel.resolve_jobs("auto", replicas=1, gpu=False,
                                 callbacks=("a callback",)) == 1
    with pytest.raises(UsageError, match="strategy has 2 replicas"):
        parallel.resolve_jobs(2, replicas=2, gpu=False, callbacks=())
    with pytest.raises(UsageError, match="Pass jobs=1 to use callbacks"):
        parallel.resolve_jobs(2, replicas=1, gpu=False, callbacks=("cb",))
    # The extra worker only for a queue longer than the workers.
    assert parallel.worker_count(cores + 1, 9 + cores, auto=True) == cores + 1
    assert parallel.worker_count(cores + 1, cores + 1, auto=True) == cores
    assert parallel.worker_count(cores + 1, 1, auto=True) == 1
    assert parallel.worker_count(cores + 1, cores + 1, auto=False) == cores + 1
    assert parallel.worker_count(3, 2, auto=False) == 2
    assert parallel.threads_per_job(cores) == 1
    assert parallel.threads_per_job(1) == cores


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_a_killed_worker_stops_the_run_in_one_line_and_a_rerun_resumes(tmp_path):
    out = str(tmp_path / "out")
    # The kill comes after epoch 1, three epochs (seconds) before the end.
    command = (*TINY, "--epochs", "4", "--jobs", "2", "--experiments", "1",
               "--output-dir", out, "--quiet")
    log = os.path.join(out, get_experiment(1).folder, "training_log.csv")
    run = subprocess.Popen(
        [sys.executable, "-m", "fcn_experiments", *command],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        while not os.path.exists(log):
            assert run.poll() is None, run.stderr.read()[-3000:]
            time.sleep(0.1)
        (worker,) = [pid for pid in _children(run.pid) if "resource_tracker"
                     not in _read(f"/proc/{pid}/cmdline").decode()]
        os.kill(worker, signal.SIGKILL)  # As the kernel's OOM killer would.
        stdout, stderr = run.communicate(timeout=120)
    finally:
        run.kill()
        run.wait()
    proc = subprocess.CompletedProcess(run.args, run.returncode, stdout, stderr)
    line = check_ended_cleanly(proc, (1,))
    assert "fcn-experiments-worker-1 stopped (exit code -9) while training " \
        "experiment 1" in line, line
    assert "Run the same command again to resume" in line
    proc = cli(*command)
    check_ended_cleanly(proc, (0,))
    assert _results(out)[1]["epochs"] == "4"
