"""Losses for quality scores: the Earth Mover's Distance and the regression losses.

`EarthMoversDistance` compares two score distributions over K ordered bins
(AVA's votes for the scores 1..10, say) through their cumulative
distributions (Hou, Yu and Samaras, "Squared Earth Mover's Distance-based
Loss for Training Deep Neural Networks", 2016; Talebi and Milanfar, "NIMA:
Neural Image Assessment", IEEE TIP 2018):

    EMD_r(p, q) = (1/K * sum_k |CDF_p(k) - CDF_q(k)|^r)^(1/r)

per sample, then Keras' reduction over the batch. Unlike crossentropy, it
knows that the bins are ordered: mass put one bin off costs less than mass
put five bins off. With r=1 it is the 1-D Wasserstein distance between the
distributions on bins one apart, divided by K. The default r=2 is NIMA's
choice: it penalises the Euclidean distance between the CDFs, and, smooth
in their differences (the gradient of |d| is only a sign), it "allows
easier optimization when working with gradient descent" (Talebi and
Milanfar); Hou et al. likewise train with the squared (r=2) form.

`regression_loss(name)` is the loss of a one-output regression head (a mean
score): `"mse"` or `"huber"` (delta 1, less pulled by outlier scores).
"""

import math
import numbers

import keras
from keras import ops

REGRESSION_LOSSES = ("mse", "huber")


def _power(x, exponent):
    """`x ** exponent` for `x >= 0`, 0 at 0 with a zero (finite) gradient.

    `x ** (1 / r)` has an infinite derivative at 0 for r > 1: the root of a
    zero distance (identical distributions) would make the gradient NaN.
    The inner `where` keeps the untaken branch's gradient finite too.
    """
    positive = x > 0
    safe = ops.where(positive, x, ops.ones_like(x))
    return ops.where(positive, ops.power(safe, exponent), ops.zeros_like(x))


@keras.saving.register_keras_serializable(package="fcn_experiments")
class EarthMoversDistance(keras.losses.Loss):
    """NIMA's Earth Mover's Distance between two score distributions.

    Formula, per sample, over the last axis of K bins:

    ```python
    loss = mean(abs(cumsum(y_true) - cumsum(y_pred)) ** r) ** (1 / r)
    ```

    Example:

    ```python
    model = keras.applications.MobileNetV2_fcn(
        classes=10, classifier_activation="softmax", pooling="avg")
    model.compile("adam", EarthMoversDistance())
    ```

    Args:
        r: the exponent, a number >= 1: 2 (default) as in NIMA, 1 for the
            Wasserstein distance between the bins (divided by K).
        reduction: Keras' reduction over the batch (default
            `"sum_over_batch_size"`).
        name: the loss's name.
        dtype: the dtype of the computation; `None` is
            `keras.backend.floatx()`. Half precision (a mixed policy's
            outputs) is computed in float32: the CDFs are sums.

    `y_true`: `(batch, K)` probability distributions (each row sums to 1);
    `y_pred`: `(batch, K)` probabilities, e.g. a softmax output.
    """

    def __init__(
        self,
        r=2,
        reduction="sum_over_batch_size",
        name="earth_movers_distance",
        dtype=None,
    ):
        if (
            isinstance(r, bool)
            or not isinstance(r, numbers.Real)
            or not math.isfinite(r)
            or r < 1
        ):
            # Below 1 it is no distance (no triangle inequality), and the
            # float rounding of CDFs that agree (|1e-7| ** 0.5 = 3e-4)
            # would dominate it.
            raise ValueError(
                "The `r` argument of EarthMoversDistance should be a number "
                ">= 1 (2 as in NIMA, 1 for the Wasserstein distance). "
                f"Received: r={r!r}"
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.r = r

    def call(self, y_true, y_pred):
        # Half precision would round the running sums: compute in float32.
        dtype = "float64" if self.dtype == "float64" else "float32"
        y_true = ops.cast(y_true, dtype)
        y_pred = ops.cast(y_pred, dtype)
        if (
            y_true.shape[-1] is not None
            and y_pred.shape[-1] is not None
            and y_true.shape[-1] != y_pred.shape[-1]
        ):
            raise ValueError(
                "EarthMoversDistance compares distributions over the same "
                "bins: y_true and y_pred need the same last dimension. "
                f"Received: y_true.shape={y_true.shape}, "
                f"y_pred.shape={y_pred.shape}"
            )
        distance = ops.abs(
            ops.cumsum(y_true, axis=-1) - ops.cumsum(y_pred, axis=-1)
        )
        return _power(ops.mean(_power(distance, self.r), axis=-1), 1 / self.r)

    def get_config(self):
        config = super().get_config()
        config.update({"r": self.r, "dtype": self.dtype})
        return config


def regression_loss(name):
    """The loss of a regression head: `"mse"` or `"huber"` (delta 1.0)."""
    if name == "mse":
        return keras.losses.MeanSquaredError()
    if name == "huber":
        return keras.losses.Huber(delta=1.0)
    raise ValueError(
        f"The regression loss should be one of {', '.join(REGRESSION_LOSSES)}. "
        f"Received: regression_loss={name!r}"
    )
