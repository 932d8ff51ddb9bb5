"""Metrics of predicted quality scores, with bootstrap intervals: SRCC, PLCC,
KRCC, RMSE, accuracy at a threshold, and score-distribution helpers (EMD).

Every metric is computed on *counts*: row r of a `(resamples, images)` array
says how many times each test image was drawn in bootstrap resample r (the
point estimate is the all-ones row). Because a resample only repeats the
original images, its ranks, tie groups and Kendall's pair signs follow from
the original data's, and each resample costs a few vectorised passes over its
counts instead of a sort: 2000 resamples of 1000 images take about 0.1 s for
SRCC (see `bench/score_statistics_bench.py`).

A correlation is undefined on a resample in which every drawn `y_true` (or
every drawn `y_pred`) is the same value. Such a resample is *degenerate*: it
is skipped and counted (`n_degenerate`), and the interval is the percentile
interval of the others. When more than `max_degenerate_fraction` of the
resamples are degenerate, that conditioning would bias the interval, so
`low` and `high` are NaN instead. RMSE and accuracy are never degenerate.

Numpy throughout, except KRCC on more than `_KENDALL_COUNTS_MAX` images: its
counts form costs resamples x images**2, so there each resample is handed to
SciPy's O(n log n) `kendalltau` instead. The tests compare every estimate
with SciPy's.
"""

from typing import NamedTuple

import numpy as np

METRICS = ("srcc", "plcc", "krcc", "rmse", "accuracy")
CORRELATIONS = ("srcc", "plcc", "krcc")

# Values per array of a resample chunk: bounds memory and keeps the arrays
# near the cache (e.g. 2000 resamples of 1000 images go in 10 chunks of 200).
# Results do not depend on it: the generator's stream is the same however the
# draws are split. KRCC rebuilds its pair-sign matrix per chunk, so it takes
# bigger ones.
_CHUNK_VALUES = 200_000
_KENDALL_CHUNK_VALUES = 4_000_000
# Rows of Kendall's pair-sign matrix built at once.
_KENDALL_BLOCK = 256
# Above this many images, KRCC calls SciPy once per resample (see the module
# docstring). Measured on 2 CPU cores, 200 resamples: 4000 images take 1.6 s
# in the counts form and 0.8 s by SciPy; 1000 images 0.05 s and 0.7 s.
_KENDALL_COUNTS_MAX = 3000


class BootstrapInterval(NamedTuple):
    """A point estimate and its bootstrap percentile interval.

    `estimate` is the metric on all images (for a paired difference,
    metric(A) - metric(B)); `low`, `high` the interval (NaN when more than
    `max_degenerate_fraction` of the resamples were degenerate);
    `n_degenerate` how many of the `n_resamples` were skipped.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    n_degenerate: int

    @property
    def excludes_zero(self):
        """Whether the interval lies entirely above or below 0 (False if NaN)."""
        return bool(self.low > 0 or self.high < 0)


# ---------------------------------------------------------------- arguments


def _check_scores(values, name):
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(
            f"`{name}` must be a 1-D sequence of scores, one per image. "
            f"Received: {name} with shape {values.shape}"
        )
    if values.size < 2:
        raise ValueError(
            f"`{name}` needs at least 2 images. Received: {values.size} value(s)"
        )
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(
            f"`{name}` must hold finite numbers; drop or fix those images "
            f"first. Received: {name}[{bad[0]}]={values[bad[0]]} "
            f"({bad.size} non-finite value(s))"
        )
    return values


def _check_pair(y_true, y_pred, metric, pred_name="y_pred"):
    y_true = _check_scores(y_true, "y_true")
    y_pred = _check_scores(y_pred, pred_name)
    if y_true.size != y_pred.size:
        raise ValueError(
            "`y_true` and `y_pred` must score the same images in the same "
            f"order. Received: {y_true.size} true and {y_pred.size} predicted "
            "scores"
        )
    if metric in CORRELATIONS:
        for name, values in (("y_true", y_true), (pred_name, y_pred)):
            if np.unique(values).size < 2:
                raise ValueError(
                    f"{metric.upper()} is undefined when `{name}` has fewer "
                    "than 2 distinct values (a constant score does not rank "
                    f"the images). Received: every {name} = {values[0]}"
                )
    return y_true, y_pred


def _check_metric(metric):
    if metric not in METRICS:
        raise ValueError(
            f"`metric` must be one of {METRICS}. Received: metric={metric!r}"
        )


def _check_bootstrap_arguments(n_resamples, confidence, max_degenerate_fraction):
    if (
        isinstance(n_resamples, bool)
        or not isinstance(n_resamples, (int, np.integer))
        or n_resamples < 1
    ):
        raise ValueError(
            "`n_resamples` must be a positive integer (e.g. 2000). "
            f"Received: n_resamples={n_resamples!r}"
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(
            "`confidence` must be in (0, 1), e.g. 0.95. "
            f"Received: confidence={confidence!r}"
        )
    if not 0.0 <= max_degenerate_fraction <= 1.0:
        raise ValueError(
            "`max_degenerate_fraction` must be in [0, 1]. "
            f"Received: max_degenerate_fraction={max_degenerate_fraction!r}"
        )


# ------------------------------------------------- metrics on counts (rows)


class _Groups(NamedTuple):
    """Tie groups of one score vector: images sorted, and where groups start."""

    order: np.ndarray
    starts: np.ndarray
    group_of_sorted: np.ndarray


def _tie_groups(values):
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    new_group = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    return _Groups(order, np.flatnonzero(new_group), np.cumsum(new_group) - 1)


def _group_counts(counts, groups):
    # How many drawn images share each distinct value, per resample.
    return np.add.reduceat(counts[:, groups.order], groups.starts, axis=1)


def _is_constant(counts, group_counts):
    # All drawn images in one tie group: the resample's scores are constant.
    return group_counts.max(axis=1) == counts.sum(axis=1)


def _ranks(groups, group_counts):
    """Average ranks (1-based, ties averaged, as SciPy's `rankdata`) of each
    image within each resample; images not drawn get an unused rank."""
    below = np.cumsum(group_counts, axis=1) - group_counts
    average = below + (group_counts + 1) / 2
    ranks = np.empty((group_counts.shape[0], groups.order.size))
    ranks[:, groups.order] = average[:, groups.group_of_sorted]
    return ranks


def _pearson(x, y, counts):
    # x, y: (n,) or (resamples, n); counts weight each image.
    total = counts.sum(axis=1)
    dx = x - ((counts * x).sum(axis=1) / total)[:, None]
    dy = y - ((counts * y).sum(axis=1) / total)[:, None]
    sxy = (counts * dx * dy).sum(axis=1)
    sxx = (counts * dx * dx).sum(axis=1)
    syy = (counts * dy * dy).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = sxy / np.sqrt(sxx * syy)
    # Rounding can leave |r| a hair above 1.
    return np.clip(r, -1.0, 1.0)


def _kendall_tau_b(x, y, counts, *, x_group_counts, y_group_counts):
    # tau-b = (concordant - discordant) / sqrt((n0 - n1)(n0 - n2)) over the
    # pairs of drawn images; two draws of the same image are a pair tied in
    # both, which adds to n1 and n2 only, as in SciPy on the repeated sample.
    # The numerator is sum_{i<j} c_i c_j sign(x_i-x_j) sign(y_i-y_j), built
    # from blocks of the sign matrix. float32 (twice as fast) is exact while
    # every entry of the product, an integer, stays below 2**24 in size.
    exact = np.float32 if counts.sum(axis=1).max() < 2**24 else np.float64
    drawn = counts.astype(exact)
    numerator = np.zeros(counts.shape[0])
    for start in range(0, x.size, _KENDALL_BLOCK):
        block = slice(start, start + _KENDALL_BLOCK)
        signs = np.sign(x[block, None] - x[None, :]) * np.sign(
            y[block, None] - y[None, :]
        )
        partial = drawn @ signs.astype(exact).T
        numerator += (partial.astype(np.float64) * counts[:, block]).sum(axis=1)
    numerator /= 2
    total = counts.sum(axis=1)
    n0 = total * (total - 1) / 2
    n1 = (x_group_counts * (x_group_counts - 1) / 2).sum(axis=1)
    n2 = (y_group_counts * (y_group_counts - 1) / 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = numerator / np.sqrt((n0 - n1) * (n0 - n2))
    return np.clip(tau, -1.0, 1.0)


def _kendall_tau_b_by_scipy(x, y, counts, degenerate):
    from scipy import stats  # only needed for large test sets

    values = np.full(counts.shape[0], np.nan)
    for row in np.flatnonzero(~degenerate):
        drawn = counts[row].astype(np.int64)
        values[row] = stats.kendalltau(
            np.repeat(x, drawn), np.repeat(y, drawn), variant="b"
        ).statistic
    # Its float result may stray a hair beyond 1, as the counts form's.
    return np.clip(values, -1.0, 1.0)


class _Prepared(NamedTuple):
    y_true: np.ndarray
    y_pred: np.ndarray
    true_groups: _Groups
    pred_groups: _Groups
    threshold: float


def _prepare(y_true, y_pred, threshold):
    return _Prepared(
        y_true, y_pred, _tie_groups(y_true), _tie_groups(y_pred), threshold
    )


def _values_on_counts(metric, prepared, counts):
    """Metric per row of `counts`; NaN where the row is degenerate."""
    p = prepared
    if metric == "rmse":
        squared = (p.y_pred - p.y_true) ** 2
        return np.sqrt((counts * squared).sum(axis=1) / counts.sum(axis=1))
    if metric == "accuracy":
        agree = (p.y_pred >= p.threshold) == (p.y_true >= p.threshold)
        return (counts * agree).sum(axis=1) / counts.sum(axis=1)
    true_counts = _group_counts(counts, p.true_groups)
    pred_counts = _group_counts(counts, p.pred_groups)
    # Decided from the tie groups, not from a rounded zero variance.
    degenerate = _is_constant(counts, true_counts) | _is_constant(
        counts, pred_counts
    )
    if metric == "srcc":
        values = _pearson(
            _ranks(p.true_groups, true_counts),
            _ranks(p.pred_groups, pred_counts),
            counts,
        )
    elif metric == "plcc":
        values = _pearson(p.y_true, p.y_pred, counts)
    elif p.y_true.size <= _KENDALL_COUNTS_MAX:
        values = _kendall_tau_b(
            p.y_true, p.y_pred, counts,
            x_group_counts=true_counts, y_group_counts=pred_counts,
        )
    else:
        values = _kendall_tau_b_by_scipy(p.y_true, p.y_pred, counts, degenerate)
    values[degenerate] = np.nan
    return values


def metric_on_resamples(metric, y_true, y_pred, counts, *, threshold=5.0):
    """A metric on given resamples, described by counts.

    Args:
        metric: one of `METRICS`.
        y_true, y_pred: the scores of the n test images.
        counts: `(resamples, n)` non-negative integers: how many times each
            image is drawn in each resample (rows need not sum to n).
        threshold: the class boundary of `"accuracy"`.

    Returns:
        One value per resample; NaN for a degenerate one (a correlation on
        a resample whose drawn `y_true` or `y_pred` are all equal).
    """
    _check_metric(metric)
    y_true, y_pred = _check_pair(y_true, y_pred, metric)
    counts = np.asarray(counts)
    if (
        counts.ndim != 2
        or counts.shape[1] != y_true.size
        or not np.issubdtype(counts.dtype, np.integer)
        or (counts < 0).any()
        or (counts.sum(axis=1) < 1).any()
    ):
        raise ValueError(
            "`counts` must be non-negative integers of shape (resamples, "
            f"{y_true.size}), each row drawing at least one image. Received: "
            f"counts with shape {counts.shape} and dtype {counts.dtype}"
        )
    return _values_on_counts(
        metric, _prepare(y_true, y_pred, threshold), counts.astype(np.float64)
    )


# ------------------------------------------------------------ point metrics


def _point(metric, y_true, y_pred, threshold=5.0):
    y_true, y_pred = _check_pair(y_true, y_pred, metric)
    ones = np.ones((1, y_true.size))
    return float(
        _values_on_counts(metric, _prepare(y_true, y_pred, threshold), ones)[0]
    )


def srcc(y_true, y_pred):
    """Spearman rank correlation (ties get average ranks)."""
    return _point("srcc", y_true, y_pred)


def plcc(y_true, y_pred):
    """Pearson linear correlation."""
    return _point("plcc", y_true, y_pred)


def krcc(y_true, y_pred):
    """Kendall rank correlation, tau-b (corrected for ties)."""
    return _point("krcc", y_true, y_pred)


def rmse(y_true, y_pred):
    """Root mean squared error, in the scores' unit."""
    return _point("rmse", y_true, y_pred)


def threshold_accuracy(y_true, y_pred, threshold=5.0):
    """Share of images put on the right side of `threshold` (AVA: 5).

    An image is "high" when its score is `>= threshold`, for the true and
    the predicted score alike: a score exactly at the threshold is high.
    """
    return _point("accuracy", y_true, y_pred, threshold)


# ---------------------------------------------------------------- bootstrap


def _count_chunks(n, n_resamples, seed, metrics):
    """Yields `(chunk, n)` counts of resamples drawn with replacement."""
    rng = np.random.default_rng(seed)
    values = _KENDALL_CHUNK_VALUES if "krcc" in metrics else _CHUNK_VALUES
    chunk = max(1, min(n_resamples, values // n))
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        indices = rng.integers(0, n, size=(size, n))
        offsets = (np.arange(size) * n)[:, None]
        counts = np.bincount((indices + offsets).ravel(), minlength=size * n)
        yield counts.reshape(size, n).astype(np.float64)
        done += size


def _interval(estimate, values, confidence, max_degenerate_fraction):
    valid = values[~np.isnan(values)]
    n_degenerate = values.size - valid.size
    if valid.size == 0 or n_degenerate > max_degenerate_fraction * values.size:
        low = high = float("nan")
    else:
        tail = (1 - confidence) / 2 * 100
        low, high = (float(v) for v in np.percentile(valid, [tail, 100 - tail]))
    return BootstrapInterval(
        estimate, low, high, confidence, values.size, int(n_degenerate)
    )


def bootstrap_intervals(
    y_true,
    y_pred,
    metrics=METRICS,
    *,
    threshold=5.0,
    n_resamples=2000,
    confidence=0.95,
    seed=0,
    max_degenerate_fraction=0.01,
):
    """Point estimates and percentile bootstrap intervals of several metrics.

    All metrics share the same resamples (images drawn with replacement,
    `np.random.default_rng(seed)`), so the result is reproducible from the
    seed.

    Args:
        y_true, y_pred: the scores of the test images, in the same order.
        metrics: names from `METRICS`.
        threshold: the class boundary of `"accuracy"` (see
            `threshold_accuracy`).
        n_resamples: number of bootstrap resamples.
        confidence: two-sided level of the interval, in (0, 1).
        seed: seed of the resampling.
        max_degenerate_fraction: above this share of degenerate resamples
            the interval is reported as NaN (see the module docstring).

    Returns:
        `{metric: BootstrapInterval}`.

    Raises:
        ValueError: on bad arguments, and when a correlation is asked of
            scores with fewer than 2 distinct values (a collapsed model that
            predicts one score): ask only `("rmse", "accuracy")` of it.
    """
    metrics = tuple(metrics)
    if not metrics:
        raise ValueError(f"`metrics` must name at least one of {METRICS}. Received: ()")
    for metric in metrics:
        _check_metric(metric)
        y_true, y_pred = _check_pair(y_true, y_pred, metric)
    _check_bootstrap_arguments(n_resamples, confidence, max_degenerate_fraction)
    prepared = _prepare(y_true, y_pred, threshold)
    ones = np.ones((1, prepared.y_true.size))
    values = {metric: [] for metric in metrics}
    for counts in _count_chunks(prepared.y_true.size, n_resamples, seed, metrics):
        for metric in metrics:
            values[metric].append(_values_on_counts(metric, prepared, counts))
    return {
        metric: _interval(
            float(_values_on_counts(metric, prepared, ones)[0]),
            np.concatenate(values[metric]),
            confidence,
            max_degenerate_fraction,
        )
        for metric in metrics
    }


def bootstrap_interval(y_true, y_pred, metric="srcc", **kwargs):
    """`bootstrap_intervals` for one metric: its `BootstrapInterval`."""
    return bootstrap_intervals(y_true, y_pred, (metric,), **kwargs)[metric]


def paired_bootstrap_difference(
    y_true,
    y_pred_a,
    y_pred_b,
    metric="srcc",
    *,
    threshold=5.0,
    n_resamples=2000,
    confidence=0.95,
    seed=0,
    max_degenerate_fraction=0.01,
):
    """Interval of metric(A) - metric(B) for two experiments on the same images.

    Each resample draws the same images for A and B, so what the two share
    (the images' difficulty) cancels; this replaces McNemar's test for
    scores. The difference is significant at the level when
    `result.excludes_zero`. A resample degenerate for either is skipped.

    Args and returns: as `bootstrap_interval`, with `y_pred_a`, `y_pred_b`
    the two experiments' scores; `estimate` is metric(A) - metric(B).
    """
    _check_metric(metric)
    y_true, y_pred_a = _check_pair(y_true, y_pred_a, metric, "y_pred_a")
    y_true, y_pred_b = _check_pair(y_true, y_pred_b, metric, "y_pred_b")
    _check_bootstrap_arguments(n_resamples, confidence, max_degenerate_fraction)
    a = _prepare(y_true, y_pred_a, threshold)
    b = _prepare(y_true, y_pred_b, threshold)
    ones = np.ones((1, y_true.size))
    estimate = float(
        _values_on_counts(metric, a, ones)[0] - _values_on_counts(metric, b, ones)[0]
    )
    differences = np.concatenate(
        [
            _values_on_counts(metric, a, counts) - _values_on_counts(metric, b, counts)
            for counts in _count_chunks(y_true.size, n_resamples, seed, (metric,))
        ]
    )
    return _interval(estimate, differences, confidence, max_degenerate_fraction)


# ------------------------------------------------------ score distributions


def _check_distributions(p, name):
    p = np.asarray(p, dtype=np.float64)
    if p.ndim < 1 or p.shape[-1] < 2:
        raise ValueError(
            f"`{name}` must hold distributions over K >= 2 bins on its last "
            f"axis. Received: {name} with shape {p.shape}"
        )
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError(
            f"`{name}` must be non-negative finite probabilities. Received: "
            f"min {np.nanmin(p)}, {np.count_nonzero(~np.isfinite(p))} "
            "non-finite value(s)"
        )
    sums = p.sum(axis=-1)
    worst = np.max(np.abs(sums - 1))
    if worst > 1e-4:
        raise ValueError(
            f"Each distribution in `{name}` must sum to 1; divide vote counts "
            f"by their total first. Received: a sum of "
            f"{np.ravel(sums)[np.argmax(np.abs(np.ravel(sums) - 1))]}"
        )
    return p


def emd(p, q, r=2):
    """Earth mover's distance between K-bin score distributions (NIMA).

    `(mean_k |CDF_p(k) - CDF_q(k)|**r) ** (1/r)`, the normalised form of
    Talebi & Milanfar (2018), eq. 1, which trains NIMA with r = 2. For r = 1
    it is the 1-Wasserstein distance over bins 1..K divided by K.

    Args:
        p, q: arrays of shape `(..., K)` whose last axis sums to 1.
        r: the norm's order (>= 1).

    Returns:
        An array of shape `(...)` (a float for one pair).
    """
    p = _check_distributions(p, "p")
    q = _check_distributions(q, "q")
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(
            "`p` and `q` must have the same number of bins. Received: "
            f"{p.shape[-1]} and {q.shape[-1]} bins"
        )
    if not r >= 1:
        raise ValueError(f"`r` must be >= 1 (NIMA uses 2). Received: r={r!r}")
    gap = np.abs(np.cumsum(p, axis=-1) - np.cumsum(q, axis=-1))
    distance = np.mean(gap**r, axis=-1) ** (1 / r)
    return float(distance) if distance.ndim == 0 else distance


def _bin_values(k):
    return np.arange(1, k + 1, dtype=np.float64)


def distribution_mean(p):
    """Mean score of distributions over the bin values 1..K (last axis)."""
    p = _check_distributions(p, "p")
    mean = p @ _bin_values(p.shape[-1])
    return float(mean) if np.ndim(mean) == 0 else mean


def distribution_std(p):
    """Standard deviation of distributions over the bin values 1..K."""
    p = _check_distributions(p, "p")
    values = _bin_values(p.shape[-1])
    mean = p @ values
    variance = (p * (values - np.expand_dims(mean, -1)) ** 2).sum(axis=-1)
    std = np.sqrt(variance)
    return float(std) if np.ndim(std) == 0 else std
