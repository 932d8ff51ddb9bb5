"""The experiments framework on the running Keras backend (the backend
suite runs this under TensorFlow, JAX and torch): the CLI's tiny profile
(three experiments in CI, all nine in `./run.sh backends`), the device(s) it
says it trains on, and mixed precision."""

import collections
import json
import math
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import keras

from fcn_experiments.models.experiments import get_experiment
from fcn_experiments.reporting import plots
from fcn_experiments.reporting.results import read_results
from fcn_experiments.reporting.run_record import RUN_FILE
from fcn_experiments.training import records as training
from fcn_experiments.training.distribute import resolve_strategy
from fcn_experiments.training.output_lock import LOCK_FILE
from fcn_experiments.training.timings import TIMINGS_FILE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.backend_suite


# CI's share of the CLI on every backend: multi-crop, the FCN at 1.5x on
# three crops of each image (each experiment costs most of a minute of
# compiling under JAX). All nine stay in `./run.sh backends`, marker
# `cli_all_nine`.
CI_EXPERIMENTS = (8,)


def _run_tiny_cli(out, *args):
    return subprocess.run(
        [sys.executable, "-m", "fcn_experiments", "run", "--profile", "tiny",
         "--output-dir", out, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1100,  # Under pytest-timeout's 1200 s: this error says more.
    )


def _check_run(done, out, experiments):
    """The run succeeded, said what it trains on, and wrote one finite row
    per experiment."""
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    backend = keras.backend.backend()
    said = [
        line for line in done.stdout.splitlines()
        if line.startswith(f"[fcn_experiments] {backend} backend: training on ")
    ]
    if backend == "tensorflow":  # tf.distribute's default strategy: silent.
        assert said == [], said
        replicas = 1
    else:
        devices = keras.distribution.list_devices() if backend == "jax" else []
        replicas = max(len(devices), 1)
        where = (
            f"keras.distribution.DataParallel over {replicas} JAX devices"
            if replicas > 1
            else f"one device (tf.distribute does not apply to the {backend} backend)"
        )
        assert said == [f"[fcn_experiments] {backend} backend: training on {where}"]
    assert f", {replicas} replica(s), output {out}" in done.stdout, done.stdout[:2000]
    rows = read_results(out)
    assert [row["experiment"] for row in rows] == list(experiments)
    for row in rows:
        assert 0.0 <= row["test_accuracy"] <= 1.0
        assert math.isfinite(row["test_loss"])
        assert row["train_images_per_s"] > 0


@pytest.mark.backends_only  # `./run.sh test` runs the nine via the notebook.
def test_cli_tiny_profile_fcn_and_multicrop(tmp_path):
    out = str(tmp_path / "out")
    done = _run_tiny_cli(
        out, "--experiments", ",".join(map(str, CI_EXPERIMENTS)), "--no-plots"
    )
    _check_run(done, out, CI_EXPERIMENTS)
    # This process is the chief (no cluster): the results, each experiment's
    # own files, the data, the starting weights, the run's record and its
    # (released) lock, and nothing else.
    folders = [get_experiment(n).folder for n in CI_EXPERIMENTS]
    assert sorted(os.listdir(out)) == sorted(
        ["data", "starting_weights", *folders, "results.csv", "results.md",
         RUN_FILE, TIMINGS_FILE, LOCK_FILE]
    )
    for folder in folders:
        assert os.path.isfile(os.path.join(out, folder, training.RESULT_FILE))


@pytest.mark.backends_only
@pytest.mark.cli_all_nine
def test_cli_tiny_profile_runs_all_nine(tmp_path):
    out = str(tmp_path / "out")
    done = _run_tiny_cli(out)
    _check_run(done, out, range(1, 10))
    for png in (plots.ACCURACY_PNG, plots.CURVES_PNG, plots.SCORE_MAP_PNG):
        assert os.path.getsize(os.path.join(out, png)) > 0


@pytest.mark.parametrize("name", ["mirrored", "multi_worker"])
def test_tf_distribute_strategies_need_the_tensorflow_backend(name):
    if keras.backend.backend() == "tensorflow":
        pytest.skip("tf.distribute applies on the TensorFlow backend")
    with pytest.raises(ValueError, match=f"Received: strategy='{name}'"):
        resolve_strategy(name)


def test_strategy_on_this_backend(capsys):
    strategy = resolve_strategy("auto")
    assert strategy.num_replicas_in_sync >= 1
    with strategy.scope():
        outputs = keras.layers.Dense(2)(np.ones((4, 3), "float32"))
    assert tuple(outputs.shape) == (4, 2)
    if keras.backend.backend() != "tensorflow":
        assert "training on" in capsys.readouterr().out


def test_mixed_precision_run_is_recorded(tmp_path):
    """`mixed_precision` trains under that policy, lands in results.csv, and
    the global policy is put back afterwards."""
    from fcn_experiments import run_experiments

    out = str(tmp_path / "out")
    rows = run_experiments(
        profile="tiny",
        output_dir=out,
        experiments=(1, 2),  # Keras' own model and its FCN twin.
        mixed_precision="mixed_bfloat16",
        plots_to_make=False,
        verbose=0,
    )
    assert keras.mixed_precision.global_policy().name == "float32"
    assert [row["mixed_precision"] for row in rows] == ["mixed_bfloat16"] * 2
    for row in read_results(out):
        assert row["mixed_precision"] == "mixed_bfloat16"
        assert row["precision_reason"] == "as requested"
        # Trained under it, not only recorded (clear_session resets Keras'
        # global policy): the saved model's layers compute in bfloat16.
        folder = get_experiment(row["experiment"]).folder
        policies = _saved_dtype_policies(os.path.join(out, folder, "best.keras"))
        assert policies["mixed_bfloat16"] > 100, policies
        assert 0.0 <= row["test_accuracy"] <= 1.0
        assert math.isfinite(row["test_loss"])


def test_mixed_precision_flag_is_checked(tmp_path):
    from fcn_experiments.cli import main
    from fcn_experiments.config import make_config

    with pytest.raises(SystemExit):
        main(["run", "--mixed-precision", "float16"])
    with pytest.raises(ValueError, match="Received: mixed_precision='bf16'"):
        make_config("tiny", mixed_precision="bf16")
    # float32 runs keep the fingerprint they had before the flag existed.
    assert "mixed_precision" not in make_config("tiny").fingerprint()
    assert make_config("tiny", mixed_precision="mixed_float16").fingerprint()[
        "mixed_precision"
    ] == "mixed_float16"


def _saved_dtype_policies(keras_file):
    """How many layers of a saved `.keras` model use each dtype policy."""
    counts = collections.Counter()

    def walk(node):
        if isinstance(node, dict):
            dtype = node.get("dtype")
            if isinstance(dtype, dict) and "config" in dtype:
                counts[dtype["config"].get("name")] += 1
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    with zipfile.ZipFile(keras_file) as archive:
        walk(json.loads(archive.read("config.json")))
    return counts


def test_training_compiles_the_step_as_this_backend_runs_it_fastest(tmp_path):
    """The tiny profile (`run_eagerly="auto"`) runs eagerly on TensorFlow
    and PyTorch, and jits under JAX, whose eager mode compiles each
    operation alone; a run that traces jits under JAX (there,
    `jit_compile=False` would mean no jit at all) and not elsewhere."""
    from fcn_experiments.config import make_config
    from fcn_experiments.training import loop

    jax = keras.backend.backend() == "jax"
    for run_eagerly, eager, jitted in (
        ("auto", not jax, jax),
        (False, False, jax),
        (True, True, False),
    ):
        config = make_config(
            "tiny", output_dir=str(tmp_path), run_eagerly=run_eagerly
        )
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        loop._compile(model, config, num_outputs=2)
        assert (model.run_eagerly, model.jit_compile) == (eager, jitted), (
            run_eagerly
        )


def test_test_scoring_compiles_the_model_once_per_shape():
    """Scoring calls the model's Python code once per image shape where it
    is traced (TensorFlow: once for all shapes; JAX: once per shape), and
    on every batch only where it runs eagerly (PyTorch)."""
    from fcn_experiments.evaluation.predictions import predict_with_labels

    tf = pytest.importorskip("tensorflow")
    calls = []

    def mean_colour(x):
        calls.append(tuple(x.shape))
        return keras.ops.mean(x, axis=(1, 2))

    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Lambda(mean_colour)(inputs))
    model.compile(loss="mse")
    calls.clear()
    images = [np.full((8, 8, 3), i, "float32") for i in range(6)]
    images += [np.full((6, 10, 3), i, "float32") for i in range(6)]
    labels = np.zeros((12, 3), "float32")
    dataset = tf.data.Dataset.from_generator(
        lambda: zip(images, labels),
        output_signature=(
            tf.TensorSpec((None, None, 3), tf.float32),
            tf.TensorSpec((3,), tf.float32),
        ),
    )
    outputs, _ = predict_with_labels(model, dataset, batch_size=2)
    np.testing.assert_allclose(outputs[:, 0], [*range(6), *range(6)])
    backend = keras.backend.backend()
    # Six batches of two images, in two shapes.
    expected = {"tensorflow": 1, "jax": 2, "torch": 6}[backend]
    assert len(calls) == expected, calls
