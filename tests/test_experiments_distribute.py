"""Training under tf.distribute: MirroredStrategy on two logical CPUs."""

import json
import math
import os
import subprocess
import sys
import types

import pytest

from fcn_experiments.training import distribute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Logical devices must be configured before TensorFlow initialises, hence a
# fresh interpreter.
MIRRORED = """
import json, sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

import keras
import fcn_experiments

class CountBatches(keras.callbacks.Callback):
    batches = 0

    def on_train_batch_end(self, batch, logs=None):
        CountBatches.batches += 1

rows = fcn_experiments.run_experiments(
    profile="tiny", output_dir=sys.argv[1], experiments=[8],
    strategy=strategy, callbacks=[CountBatches()], plots_to_make=False,
    run_eagerly=False,  # the tf.function path, as real training uses
    verbose=0,
)
print(json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "batches": CountBatches.batches,
    "rows": rows,
}))
"""


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    rows = report["rows"]
    # Experiment 8: the FCN inside MultiCrop, fed 3 crops per image.
    assert [row["experiment"] for row in rows] == [8]
    for row in rows:
        assert (
            math.isfinite(row["test_loss"]) and 0 <= row["test_accuracy"] <= 1
        )
    # Batch size is per replica: 8 x 2 replicas = 16 images a step.
    steps = sum(math.ceil(row["train_images"] / 16) for row in rows)
    assert report["batches"] == steps


def _fake_strategy(task_type, task_id, cluster):
    resolver = types.SimpleNamespace(
        task_type=task_type,
        task_id=task_id,
        cluster_spec=lambda: types.SimpleNamespace(as_dict=lambda: cluster),
    )
    return types.SimpleNamespace(cluster_resolver=resolver)


@pytest.mark.parametrize(
    "task_type, task_id, cluster, expected",
    [
        ("chief", 0, {"chief": ["a"], "worker": ["b"]}, None),
        ("worker", 0, {"chief": ["a"], "worker": ["b"]}, "worker_0"),
        ("worker", 0, {"worker": ["a", "b"]}, None),
        ("worker", 1, {"worker": ["a", "b"]}, "worker_1"),
    ],
)
def test_only_the_chief_writes_results(task_type, task_id, cluster, expected):
    strategy = _fake_strategy(task_type, task_id, cluster)
    assert distribute.worker_id(strategy) == expected


def test_strategy_names(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.resolve_strategy("auto").num_replicas_in_sync == 1
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        distribute.resolve_strategy("auto")
    with pytest.raises(ValueError, match="Received: strategy='gpu'"):
        distribute.resolve_strategy("gpu")
