"""Regression and score-distribution heads: `classes=1` with a linear
activation, `classes=K` with softmax, through `to_fcn`, the builders'
poolings, `MultiCrop`, one training step with the score losses, and a saved
model compiled with `EarthMoversDistance`.

Small models: MobileNetV2 (alpha 0.35) at 64 px or so, and VGG16 built for
32 px (fc1 then reads a 1x1 map, so it is a 1x1 conv), random weights with
BatchNorm calibrated on real photos (so that the scores differ by photo).
"""

import numpy as np
import pytest

import keras

from fcn_experiments.tasks.losses import EarthMoversDistance
from fcn_experiments.tasks.losses import regression_loss
from fcn_model_helpers import FAMILIES
from fcn_model_helpers import ONE_STEP_EAGERLY
from fcn_model_helpers import assert_close
from fcn_model_helpers import calibrate_batch_norm
from fcn_model_helpers import photos
from fcn_model_helpers import run

# Runs under every backend in `./run.sh backends` (tests/backend_suite.py).
pytestmark = pytest.mark.backend_suite

BINS = 10
# family: the size Keras' original is built for (its native size here).
SIZES = {"MobileNetV2": 64, "VGG16": 32}


def original(family, classes, classifier_activation):
    """Keras' own model, random weights, built for SIZES[family]."""
    builder, _, family_kwargs = FAMILIES[family]
    size = SIZES[family]
    model = builder(
        weights=None,
        input_shape=(size, size, 3),
        classes=classes,
        classifier_activation=classifier_activation,
        **family_kwargs,
    )
    calibrate_batch_norm(model, photos(family, size, size, count=4))
    return model


def module(family):
    return FAMILIES[family][1]


def has_activation_layer(model):
    return any(
        isinstance(layer, keras.layers.Activation) for layer in model.layers
    )


@pytest.fixture(scope="module", params=list(SIZES))
def regression_original(request):
    """(family, Keras' original with a 1-unit linear `predictions`)."""
    return request.param, original(request.param, 1, "linear")


def test_to_fcn_keeps_a_linear_regression_head(regression_original):
    family, model = regression_original
    size = SIZES[family]
    images = photos(family, size, size)
    fcn = module(family).to_fcn(model)  # pooling="avg"
    assert fcn.output.shape == (None, 1)
    # The activation comes from the original's `predictions`: linear.
    assert fcn.get_layer("predictions").activation is keras.activations.linear
    assert not has_activation_layer(fcn)
    expected = run(model, images)
    assert np.ptp(expected) > 0  # Two photos, two scores.
    assert_close(run(fcn, images), expected)


def test_max_pooling_is_the_best_positions_score(regression_original):
    family, model = regression_original
    images = photos(family, 96, 128)
    score_map = run(module(family).to_fcn(model, pooling=None), images)
    assert score_map.shape[1:] == (3, 4, 1)
    best = run(module(family).to_fcn(model, pooling="max"), images)
    assert best.shape == (2, 1)
    assert_close(best, score_map.max(axis=(1, 2)))
    # Not a degenerate map: the best differs from the mean position.
    assert np.abs(best - score_map.mean(axis=(1, 2))).max() > 1e-4


@pytest.mark.parametrize("family", list(SIZES))
def test_distribution_head_equals_the_original(family):
    model = original(family, BINS, "softmax")
    size = SIZES[family]
    images = photos(family, size, size)
    fcn = module(family).to_fcn(model)  # pooling="avg", softmax kept
    expected = run(model, images)
    assert np.abs(expected[0] - expected[1]).max() > 1e-4  # Photo-dependent.
    actual = run(fcn, images)
    assert actual.shape == (2, BINS)
    assert_close(actual, expected)
    np.testing.assert_allclose(actual.sum(axis=-1), 1.0, rtol=1e-5)


def test_distribution_head_is_the_softmax_of_the_mean_logits():
    """At a size other than the original's: several positions."""
    fcn = keras.applications.MobileNetV2_fcn(
        weights=None, alpha=0.35, classes=BINS, pooling="avg"
    )
    calibrate_batch_norm(fcn, photos("MobileNetV2", 96, 128, count=4))
    logits = keras.applications.MobileNetV2_fcn(
        weights=None, alpha=0.35, classes=BINS, pooling=None,
        classifier_activation="linear",
    )
    logits.set_weights(fcn.get_weights())
    images = photos("MobileNetV2", 96, 128)
    mean_logits = run(logits, images).mean(axis=(1, 2))
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(mean_logits))
    assert_close(run(fcn, images), expected)


def test_builder_regression_heads():
    """`classes=1` from the builder: no activation layer for None or
    "linear"; "max" is the score map's best position, "avg" its mean."""
    heads = {
        pooling: keras.applications.MobileNetV2_fcn(
            weights=None,
            alpha=0.35,
            classes=1,
            classifier_activation=classifier_activation,
            pooling=pooling,
        )
        for pooling, classifier_activation in [
            ("avg", None), ("max", "linear"), (None, None)
        ]
    }
    calibrate_batch_norm(heads[None], photos("MobileNetV2", 64, 96, count=4))
    for model in heads.values():
        assert not has_activation_layer(model)
        model.set_weights(heads[None].get_weights())
    images = photos("MobileNetV2", 64, 96)
    score_map = run(heads[None], images)
    assert score_map.shape[1:] == (2, 3, 1)
    assert np.ptp(score_map.mean(axis=(1, 2))) > 1e-4  # Photo-dependent.
    assert_close(run(heads["max"], images), score_map.max(axis=(1, 2)))
    assert_close(run(heads["avg"], images), score_map.mean(axis=(1, 2)))


def test_multicrop_averages_the_crops_scores():
    fcn = module("MobileNetV2").to_fcn(original("MobileNetV2", 1, "linear"))
    crops = photos("MobileNetV2", 48, 48, count=4).reshape(2, 2, 48, 48, 3)
    crops = np.concatenate([crops, crops[:, :1, ::-1]], axis=1)  # 3 crops
    model = keras.applications.MultiCrop(fcn, pooling="avg")
    assert model.compute_output_shape((None, 3, 48, 48, 3)) == (None, 1)
    per_crop = run(fcn, crops.reshape(6, 48, 48, 3)).reshape(2, 3, 1)
    assert np.ptp(per_crop, axis=1).max() > 0  # The crops score differently.
    assert_close(run(model, crops), per_crop.mean(axis=1))


def score_fcn(classes):
    """A MobileNetV2 FCN with a regression (1) or distribution head."""
    model = keras.applications.MobileNetV2_fcn(
        weights=None,
        alpha=0.35,
        classes=classes,
        classifier_activation="linear" if classes == 1 else "softmax",
        pooling="avg",
    )
    calibrate_batch_norm(model, photos("MobileNetV2", 40, 56, count=4))
    return model


def fit_one_step(model, loss, targets):
    model.compile(
        keras.optimizers.SGD(0.01),
        loss,
        run_eagerly=ONE_STEP_EAGERLY,
    )
    watched = [
        model.get_layer("Conv1").kernel,
        model.get_layer("predictions").kernel,
    ]
    before = [keras.ops.convert_to_numpy(v) for v in watched]
    images = photos("MobileNetV2", 40, 56)
    history = model.fit(images, targets, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert history.history["loss"][0] > 0
    for variable, old in zip(watched, before):
        assert not np.array_equal(keras.ops.convert_to_numpy(variable), old)
    return images


@pytest.mark.parametrize("name", ["mse", "huber"])
def test_one_regression_training_step(name):
    fit_one_step(
        score_fcn(1), regression_loss(name), np.array([[3.0], [7.5]], "float32")
    )


def test_one_distribution_step_and_saved_model(tmp_path):
    model = score_fcn(BINS)
    targets = np.random.default_rng(0).dirichlet(np.ones(BINS), 2)
    images = fit_one_step(model, EarthMoversDistance(), targets.astype("float32"))
    path = str(tmp_path / "distribution.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.loss, EarthMoversDistance)
    assert loaded.loss.r == 2
    assert_close(run(loaded, images), run(model, images))
    loss = loaded.evaluate(images, targets, verbose=0)
    assert_close(loss, model.evaluate(images, targets, verbose=0))


@pytest.mark.parametrize("pooling", ["avg", "max", None])
def test_regression_head_outputs_float32_under_mixed_bfloat16(pooling):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = keras.applications.MobileNetV2_fcn(
            weights=None,
            alpha=0.35,
            classes=1,
            classifier_activation="linear",
            pooling=pooling,
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("Conv1").compute_dtype == "bfloat16"
    assert model.get_layer("predictions").compute_dtype == "float32"
    output = model(photos("MobileNetV2", 64, 64), training=False)
    assert keras.backend.standardize_dtype(output.dtype) == "float32"
    assert output.shape == ((2, 1) if pooling else (2, 2, 2, 1))


def test_distribution_step_under_mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = score_fcn(BINS)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("Conv1").compute_dtype == "bfloat16"
    targets = np.random.default_rng(1).dirichlet(np.ones(BINS), 2)
    fit_one_step(model, EarthMoversDistance(), targets.astype("float32"))
