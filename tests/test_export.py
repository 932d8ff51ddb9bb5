"""`export` to .keras, SavedModel and ONNX, each checked against Keras at two
non-square sizes on real photos: the plain FCN, the skip variant and the
multi-crop model (MobileNetV2, alpha 0.35), then the CLI on an experiment
trained for real. ONNX export takes tens of seconds per model on a 2-core
CPU: marked `export`, run by .ci/steps/20-export.sh, not by default."""

import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime
import pytest

import keras
import tensorflow as tf

from fcn_experiments import cli
from fcn_experiments import run_experiments
from fcn_experiments.predict.export import export_keras_model
from fcn_experiments.predict.images import predict_images
from fcn_experiments.predict.model_source import resolve_model_source
from fcn_model_helpers import photos
from fcn_model_helpers import randomize_batch_norm
from loader_test_images import write_photos

pytestmark = pytest.mark.export

SIZES = ((64, 96), (97, 161))  # (rows, cols): landscape, odd and non-square.
TOLERANCE = 1e-4
FORMATS = ("keras", "saved_model", "onnx")
MODELS = ("plain", "skip", "multicrop")


def _fcn(skip=False, pooling=None):
    builder = keras.applications.mobilenet_v2_fcn
    build = builder.MobileNetV2_fcn_skip if skip else builder.MobileNetV2_fcn
    model = build(weights=None, alpha=0.35, classes=5, pooling=pooling,
                  classifier_activation=None)
    # Non-trivial outputs: statistics, and the zero-initialized skip.
    randomize_batch_norm(model)
    if skip:
        kernel = model.get_layer("skip_project").weights[0]
        kernel.assign(np.random.default_rng(1).normal(0, 0.1, kernel.shape)
                      .astype("float32"))
    return model


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    multicrop = keras.applications.MultiCrop(_fcn(pooling="avg"))
    multicrop.build((None, 3, None, None, 3))
    return {"plain": _fcn(), "skip": _fcn(skip=True), "multicrop": multicrop}


def _inputs(kind, rows, cols):
    images = photos("MobileNetV2", rows, cols, count=2)
    if kind != "multicrop":
        return images
    # Three "crops" per image: the image, flipped, upside down.
    return np.stack([images, images[:, :, ::-1], images[:, ::-1]], axis=1)


def _run_exported(fmt, path, x):
    if fmt == "keras":
        return None  # Reloaded in a fresh process, see below.
    if fmt == "saved_model":
        loaded = tf.saved_model.load(path)
        signature = loaded.signatures["serving_default"]
        spec = list(signature.structured_input_signature[1].values())[0]
        assert spec.shape[-3:-1] == [None, None]  # Dynamic height and width.
        return loaded.serve(tf.constant(x)).numpy()
    session = onnxruntime.InferenceSession(path)
    (onnx_input,) = session.get_inputs()
    assert all(not isinstance(d, int) for d in onnx_input.shape[-3:-1])
    return session.run(None, {onnx_input.name: x})[0]


def _reload_in_fresh_process(path, inputs, tmp_path):
    """`keras.saving.load_model` in a new interpreter: no import but keras
    (the installed FCN extension registers its layers)."""
    np.savez(tmp_path / "inputs.npz", *inputs)
    script = (
        "import sys, numpy as np, keras\n"
        "model = keras.saving.load_model(sys.argv[1])\n"
        "inputs = np.load(sys.argv[2])\n"
        "np.savez(sys.argv[3], *[keras.ops.convert_to_numpy("
        "model(inputs[k], training=False)) for k in sorted(inputs.files)])\n"
    )
    outputs = tmp_path / "outputs.npz"
    subprocess.run(
        [sys.executable, "-c", script, path, str(tmp_path / "inputs.npz"),
         str(outputs)],
        check=True,
        cwd=tmp_path,  # Not the repository: nothing of it is importable.
    )
    loaded = np.load(outputs)
    return [loaded[k] for k in sorted(loaded.files)]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", MODELS)
def test_export_matches_keras(models, kind, fmt, tmp_path):
    model = models[kind]
    suffix = {"keras": ".keras", "saved_model": "", "onnx": ".onnx"}[fmt]
    path = export_keras_model(model, str(tmp_path / f"{kind}{suffix}"), fmt)
    inputs = [_inputs(kind, *size) for size in SIZES]
    expected = [keras.ops.convert_to_numpy(model(x, training=False))
                for x in inputs]
    if fmt == "keras":
        got = _reload_in_fresh_process(path, inputs, tmp_path)
    else:
        got = [_run_exported(fmt, path, x) for x in inputs]
    for size, a, b in zip(SIZES, expected, got):
        assert a.shape == b.shape
        assert float(np.abs(a).max()) > 0.1  # Outputs that mean something.
        diff = float(np.abs(a - b).max())
        print(f"{kind} {fmt} {size}: max abs diff {diff:.2e}")
        assert diff <= TOLERANCE, (kind, fmt, size, diff)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Experiment #9 (multi-crop + skip), trained with the tiny profile."""
    out = str(tmp_path_factory.mktemp("snapshots"))
    run_experiments(profile="tiny", experiments=(9,), output_dir=out,
                    plots_to_make=False, verbose=0)
    return os.path.join(out, "exp9_fcn_1.5x_multicrop_skip")


@pytest.mark.parametrize("fmt", FORMATS)
def test_cli_export_of_a_trained_experiment(trained, fmt, tmp_path):
    suffix = {"keras": ".keras", "saved_model": "", "onnx": ".onnx"}[fmt]
    out = str(tmp_path / f"exp9{suffix}")
    assert cli.main(["export", trained, out, "--format", fmt]) == 0
    with open(out + ".json") as f:
        info = json.load(f)
    source = resolve_model_source(trained)
    assert info["class_names"] == source.class_names
    assert info["backbone"] == "mobilenet_v2" and info["input_size"] == 48
    # The inner FCN, on whole images preprocessed for MobileNetV2.
    x = photos("MobileNetV2", 48, 80, count=2)
    expected = keras.ops.convert_to_numpy(source.model(x, training=False))
    if fmt == "keras":
        reloaded = resolve_model_source(out)
        got = keras.ops.convert_to_numpy(reloaded.model(x, training=False))
        folder = tmp_path / "images"
        files = write_photos(str(folder), ["rocket", "coffee"])
        a, _ = predict_images(source, files, verbose=0)
        b, _ = predict_images(reloaded, files, verbose=0)
        for x_, y_ in zip(a, b):
            np.testing.assert_allclose(x_.probabilities, y_.probabilities,
                                       atol=1e-6)
    else:
        got = _run_exported(fmt, out, x)
    assert float(np.abs(expected - got).max()) <= TOLERANCE
