"""run.json records what a run's numbers depend on, and a resumed run keeps
the precision policy chosen when the run started (real tiny runs)."""

import json
import os
import platform
import subprocess

import numpy as np

import keras
import tensorflow as tf

from fcn_experiments import run_experiments
from fcn_experiments.models.experiments import get_experiment
from fcn_experiments.reporting.run_record import RUN_FILE
from fcn_experiments.training import records as training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _json(path):
    with open(path) as f:
        return json.load(f)


def test_run_json_records_what_the_numbers_depend_on(tmp_path):
    out = str(tmp_path / "out")
    run_experiments(profile="tiny", experiments=(1,), output_dir=out,
                    seed=7, plots_to_make=False, verbose=0)
    (record,) = _json(os.path.join(out, RUN_FILE))["runs"]
    assert record["seed"] == 7
    assert record["software"] == {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
    }
    assert record["backend"] == keras.backend.backend()
    with open("/proc/cpuinfo") as f:
        text = f.read()
    assert record["cpu"]["model"] and record["cpu"]["model"] in text
    assert set(record["cpu"]["flags"]) <= set(text.split())
    assert record["threads"]["cpu_count"] == os.cpu_count()
    assert record["numerics"]["TF_ENABLE_ONEDNN_OPTS"] == os.environ.get(
        "TF_ENABLE_ONEDNN_OPTS")
    assert record["precision"] == {
        "requested": "float32", "policy": "float32", "reason": "as requested"}
    assert len(record["data_listing_sha256"]) == 64
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"],
                          capture_output=True, text=True)
    if head.returncode == 0:
        assert record["code"]["commit"] == head.stdout.strip()


def test_resumed_auto_run_keeps_the_policy_it_started_with(tmp_path):
    out = str(tmp_path / "out")
    settings = dict(profile="tiny", output_dir=out, mixed_precision="auto",
                    plots_to_make=False, verbose=0)
    run_experiments(experiments=(1,), **settings)
    path = os.path.join(out, RUN_FILE)
    first = _json(path)
    (record,) = first["runs"]
    assert record["precision"]["requested"] == "auto"
    # As if the run had started on a machine where `auto` chose bf16.
    record["precision"].update(policy="mixed_bfloat16", reason="bf16 was faster")
    with open(path, "w") as f:
        json.dump(first, f)
    config_1 = _json(os.path.join(out, get_experiment(1).folder,
                                  training.CONFIG_FILE))
    rows = run_experiments(experiments=(2,), **settings)
    resumed = {row["experiment"]: row for row in rows}[2]
    assert resumed["mixed_precision"] == "mixed_bfloat16"
    assert resumed["precision_reason"] == (
        "recorded when this run started: bf16 was faster")
    runs = _json(path)["runs"]
    assert len(runs) == 2 and runs[1]["precision"]["policy"] == "mixed_bfloat16"
    # The earlier experiment's fingerprint is untouched: still finished.
    assert _json(os.path.join(out, get_experiment(1).folder,
                              training.CONFIG_FILE)) == config_1
    assert 1 in {row["experiment"] for row in rows}
