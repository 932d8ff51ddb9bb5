"""The experiments framework on the running Keras backend (the backend
suite runs this under TensorFlow, JAX and torch): the CLI's tiny profile,
all nine experiments, and the device(s) it says it trains on."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import keras
from fcn_experiments import plots
from fcn_experiments.distribute import resolve_strategy
from fcn_experiments.results import read_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.backend_suite


@pytest.mark.backends_only  # `./run.sh test` runs the nine via the notebook.
def test_cli_tiny_profile_runs_all_nine(tmp_path):
    out = str(tmp_path / "out")
    done = subprocess.run(
        [sys.executable, "-m", "fcn_experiments", "run", "--profile", "tiny",
         "--output-dir", out],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1100,  # Under pytest-timeout's 1200 s: this error says more.
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    backend = keras.backend.backend()
    said = f"[fcn_experiments] {backend} backend: training on one device"
    assert (said in done.stdout) == (backend != "tensorflow"), done.stdout[:2000]
    rows = read_results(out)
    assert [row["experiment"] for row in rows] == list(range(1, 10))
    for row in rows:
        assert 0.0 <= row["test_accuracy"] <= 1.0
        assert math.isfinite(row["test_loss"])
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
