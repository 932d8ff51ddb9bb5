"""`fcn_experiments.tasks.losses`: the EMD against SciPy and the formula,
its reductions, gradients and serialization; the regression losses."""

import numpy as np
import pytest
import scipy.stats

import keras

from fcn_experiments.evaluation import score_statistics
from fcn_experiments.tasks.losses import EarthMoversDistance
from fcn_experiments.tasks.losses import regression_loss

# Runs under every backend in `./run.sh backends` (tests/backend_suite.py).
pytestmark = pytest.mark.backend_suite

BINS = 10


def distributions(count, bins=BINS, seed=0):
    """`count` random distributions over `bins` bins, some mass in each."""
    rng = np.random.default_rng(seed)
    values = rng.dirichlet(np.ones(bins), size=count)
    return values.astype("float32")


def emd_loop(p, q, r):
    """The CDF formula, one sample and one bin at a time, in float64."""
    losses = []
    for p_row, q_row in zip(np.float64(p), np.float64(q)):
        cdf_p = cdf_q = 0.0
        total = 0.0
        for p_bin, q_bin in zip(p_row, q_row):
            cdf_p += p_bin
            cdf_q += q_bin
            total += abs(cdf_p - cdf_q) ** r
        losses.append((total / len(p_row)) ** (1 / r))
    return np.array(losses)


def per_sample(loss, y_true, y_pred):
    return keras.ops.convert_to_numpy(loss(y_true, y_pred))


def test_r1_is_scipy_wasserstein_distance_over_the_bins():
    p, q = distributions(6, seed=1), distributions(6, seed=2)
    positions = np.arange(1, BINS + 1)
    expected = [
        scipy.stats.wasserstein_distance(positions, positions, p_row, q_row)
        / BINS
        for p_row, q_row in zip(p, q)
    ]
    loss = EarthMoversDistance(r=1, reduction=None)
    np.testing.assert_allclose(per_sample(loss, p, q), expected, rtol=1e-5)


@pytest.mark.parametrize("r", [2, 3, 1.5])
def test_matches_the_cdf_formula(r):
    p, q = distributions(6, seed=3), distributions(6, seed=4)
    loss = EarthMoversDistance(r=r, reduction=None)
    np.testing.assert_allclose(
        per_sample(loss, p, q), emd_loop(p, q, r), rtol=1e-5, atol=1e-7
    )


@pytest.mark.parametrize("r", [1, 2])
def test_equals_the_reported_emd_metric(r):
    """The loss trains on what score_statistics.emd reports."""
    p, q = distributions(5, seed=15), distributions(5, seed=16)
    np.testing.assert_allclose(
        per_sample(EarthMoversDistance(r=r, reduction=None), p, q),
        score_statistics.emd(p, q, r=r),
        rtol=1e-5,
    )


def test_one_bin_off_costs_less_than_five():
    true = np.eye(BINS, dtype="float32")[[2]]
    near = np.eye(BINS, dtype="float32")[[3]]
    far = np.eye(BINS, dtype="float32")[[7]]
    loss = EarthMoversDistance()
    assert 0 < float(loss(true, near)) < float(loss(true, far))
    # Mass moved one bin changes the CDF in one bin by 1: sqrt(1 / K).
    np.testing.assert_allclose(float(loss(true, near)), (1 / BINS) ** 0.5,
                               rtol=1e-6)


def test_zero_for_identical_distributions_and_symmetric():
    p, q = distributions(5, seed=5), distributions(5, seed=6)
    loss = EarthMoversDistance(reduction=None)
    np.testing.assert_array_equal(per_sample(loss, p, p), np.zeros(5))
    np.testing.assert_allclose(
        per_sample(loss, p, q), per_sample(loss, q, p), rtol=1e-6
    )
    assert (per_sample(loss, p, q) > 0).all()


def test_reductions_and_sample_weight():
    p, q = distributions(4, seed=7), distributions(4, seed=8)
    each = emd_loop(p, q, 2)
    weights = np.array([1.0, 0.0, 2.0, 0.5], "float32")
    cases = [
        (EarthMoversDistance(), None, each.mean()),
        (EarthMoversDistance(reduction="sum"), None, each.sum()),
        (EarthMoversDistance(reduction="sum"), weights, (each * weights).sum()),
        # sum_over_batch_size divides by the batch, not by the weights.
        (EarthMoversDistance(), weights, (each * weights).sum() / 4),
    ]
    for loss, sample_weight, expected in cases:
        actual = keras.ops.convert_to_numpy(loss(p, q, sample_weight))
        assert actual.shape == ()
        np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_float32_under_a_mixed_policy():
    p, q = distributions(3, seed=9), distributions(3, seed=10)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        loss = EarthMoversDistance(reduction=None)
        actual = loss(p, keras.ops.cast(q, "bfloat16"))
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.backend.standardize_dtype(actual.dtype) == "float32"
    # y_pred rounded to bfloat16, the sums in float32.
    q_rounded = keras.ops.convert_to_numpy(
        keras.ops.cast(keras.ops.cast(q, "bfloat16"), "float32")
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(actual), emd_loop(p, q_rounded, 2),
        rtol=1e-5,
    )


def gradient(function, x):
    """d sum(function(x)) / dx, on the current backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(function(x))
        return tape.gradient(total, x).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: function(v).sum())(x))
    if backend == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        function(x).sum().backward()
        return x.grad.numpy()
    pytest.skip(f"no gradient helper for the {backend} backend")


@pytest.mark.parametrize("r", [2, 1, 3])
def test_gradient_is_finite_even_where_the_cdfs_agree(r):
    p = distributions(3, seed=11)
    # The second prediction is the label itself: zero distance, where the
    # root's derivative is infinite.
    y_pred = np.stack([distributions(1, seed=12)[0], p[1], p[2] * 0.9])
    loss = EarthMoversDistance(r=r, reduction=None)
    grad = gradient(lambda x: loss(p, x), y_pred)
    assert np.isfinite(grad).all()
    # Away from zero: a central difference of the formula, per bin.
    step = 1e-3
    for row in (0, 2):
        numeric = []
        for i in range(BINS):
            up, down = y_pred.copy(), y_pred.copy()
            up[row, i] += step
            down[row, i] -= step
            numeric.append(
                (emd_loop(p, up, r)[row] - emd_loop(p, down, r)[row])
                / (2 * step)
            )
        np.testing.assert_allclose(grad[row], numeric, rtol=1e-2, atol=1e-4)


def test_round_trip_in_a_saved_model(tmp_path):
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(BINS, activation="softmax")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile("sgd", EarthMoversDistance(r=1.5, reduction="sum"))
    x = np.random.default_rng(13).normal(size=(6, 4)).astype("float32")
    y = distributions(6, seed=14)
    expected = model.evaluate(x, y, verbose=0)
    path = str(tmp_path / "emd.keras")
    model.save(path)

    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.loss, EarthMoversDistance)
    assert (loaded.loss.r, loaded.loss.reduction) == (1.5, "sum")
    assert loaded.loss.name == "earth_movers_distance"
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), expected,
                               rtol=1e-6)

    config = EarthMoversDistance(r=3, dtype="float64").get_config()
    again = EarthMoversDistance.from_config(config)
    assert again.get_config() == config
    assert (again.r, again.dtype) == (3, "float64")


@pytest.mark.parametrize("r", [0.5, 0, -1, float("inf"), float("nan"), "2",
                               None, True])
def test_bad_r(r):
    with pytest.raises(ValueError, match="Received: r="):
        EarthMoversDistance(r=r)


def test_bins_must_match():
    with pytest.raises(ValueError, match="same last dimension"):
        EarthMoversDistance()(distributions(2, bins=5), distributions(2))


def test_regression_losses():
    y_true = np.array([[1.0], [2.0], [5.0]], "float32")
    y_pred = np.array([[1.5], [2.0], [2.0]], "float32")
    error = (y_pred - y_true)[:, 0]
    mse = regression_loss("mse")
    assert isinstance(mse, keras.losses.MeanSquaredError)
    np.testing.assert_allclose(float(mse(y_true, y_pred)), np.mean(error**2),
                               rtol=1e-6)
    huber = regression_loss("huber")
    assert isinstance(huber, keras.losses.Huber)
    # Quadratic within delta=1, linear beyond.
    expected = np.where(
        np.abs(error) <= 1, 0.5 * error**2, np.abs(error) - 0.5
    ).mean()
    np.testing.assert_allclose(float(huber(y_true, y_pred)), expected,
                               rtol=1e-6)


@pytest.mark.parametrize("name", ["mae", "MSE", None])
def test_bad_regression_loss(name):
    with pytest.raises(ValueError, match="Received: regression_loss=") as info:
        regression_loss(name)
    assert "mse, huber" in str(info.value)
    assert "\n" not in str(info.value)
