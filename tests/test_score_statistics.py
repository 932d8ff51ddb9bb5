"""Score metrics against SciPy, their bootstrap intervals, and the EMD."""

import functools
import math

import numpy as np
import pytest
import skimage.color
import skimage.data
from scipy import stats as scipy_stats

from fcn_experiments.evaluation import score_statistics as ss

PHOTOS = ("camera", "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field")


@functools.lru_cache(maxsize=None)
def photo_patch_scores():
    """Scores that look like quality scores, from real photos: for 32x32
    patches of skimage's photos, a "true" score from the patch's mean gradient
    (sharpness) and a "predicted" one from its contrast, both on a 1..10
    scale and rounded to 0.1 as mean opinion scores are, so with ties."""
    true, pred = [], []
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        if image.ndim == 3:
            image = skimage.color.rgb2gray(image)
        image = image.astype(np.float64) / image.max()
        gy, gx = np.gradient(image)
        gradient = np.hypot(gx, gy)
        for top in range(0, image.shape[0] - 32, 48):
            for left in range(0, image.shape[1] - 32, 48):
                patch = (slice(top, top + 32), slice(left, left + 32))
                true.append(gradient[patch].mean())
                pred.append(image[patch].std())

    def to_scale(values):
        ranks = scipy_stats.rankdata(values) / len(values)
        return np.round(1 + 9 * ranks, 1)

    return to_scale(np.array(true)), to_scale(np.array(pred))


def bivariate_normal(n, rho, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = rho * x + math.sqrt(1 - rho * rho) * rng.standard_normal(n)
    return x, y


def integer_votes(n, seed):
    # Heavy ties on both sides: integer scores 1..5.
    rng = np.random.default_rng(seed)
    true = rng.integers(1, 6, size=n)
    pred = np.clip(true + rng.integers(-2, 3, size=n), 1, 5)
    return true.astype(float), pred.astype(float)


def datasets():
    x, y = bivariate_normal(300, 0.6, seed=1)
    return {
        "photo patches": photo_patch_scores(),
        "bivariate normal": (x, y),
        "negative": (x, -y),
        "integer votes": integer_votes(200, seed=2),
        "two images": (np.array([1.0, 2.0]), np.array([3.0, 2.5])),
    }


DATASETS = datasets()


def test_photo_patch_scores_are_realistic():
    true, pred = photo_patch_scores()
    assert true.size > 300
    assert np.unique(true).size < true.size  # ties, as in real MOS tables
    assert 0.2 < scipy_stats.spearmanr(true, pred).statistic < 0.95


# ---------------------------------------------------------- point estimates


@pytest.mark.parametrize("name", DATASETS)
def test_correlations_match_scipy(name):
    true, pred = DATASETS[name]
    assert ss.srcc(true, pred) == pytest.approx(
        scipy_stats.spearmanr(true, pred).statistic, abs=1e-12
    )
    assert ss.plcc(true, pred) == pytest.approx(
        scipy_stats.pearsonr(true, pred).statistic, abs=1e-12
    )
    tau = scipy_stats.kendalltau(true, pred, variant="b").statistic
    assert ss.krcc(true, pred) == pytest.approx(tau, abs=1e-12)


@pytest.mark.parametrize("name", DATASETS)
def test_rmse_matches_numpy(name):
    true, pred = DATASETS[name]
    assert ss.rmse(true, pred) == pytest.approx(
        np.sqrt(np.mean((np.asarray(true) - pred) ** 2)), rel=1e-12
    )


def test_threshold_accuracy_counts_a_score_at_the_threshold_as_high():
    true = [4.9, 5.0, 5.0, 6.0, 3.0, 5.1]
    pred = [5.0, 5.0, 4.99, 5.0, 4.0, 5.1]
    # high/high? 4.9 low vs 5.0 high: wrong; 5.0/5.0 right; 5.0 vs 4.99 wrong;
    # right; right; right.
    assert ss.threshold_accuracy(true, pred) == pytest.approx(4 / 6)
    assert ss.threshold_accuracy(true, pred, threshold=4.95) == pytest.approx(5 / 6)


def test_threshold_accuracy_matches_numpy_on_photo_scores():
    true, pred = photo_patch_scores()
    expected = np.mean((true >= 5.5) == (pred >= 5.5))
    assert ss.threshold_accuracy(true, pred, threshold=5.5) == pytest.approx(expected)


# ------------------------------------------------- metrics on resample counts


@pytest.mark.parametrize("name", ["photo patches", "integer votes"])
def test_metrics_on_counts_match_scipy_on_the_repeated_sample(name):
    true, pred = DATASETS[name]
    rng = np.random.default_rng(5)
    # Bootstrap draws, and a subsample drawn without replacement (rows need
    # not sum to n).
    rows = [rng.integers(0, true.size, size=true.size) for _ in range(4)]
    rows.append(rng.choice(true.size, size=true.size // 3, replace=False))
    counts = np.stack([np.bincount(r, minlength=true.size) for r in rows])
    references = {
        "srcc": lambda a, b: scipy_stats.spearmanr(a, b).statistic,
        "plcc": lambda a, b: scipy_stats.pearsonr(a, b).statistic,
        "krcc": lambda a, b: scipy_stats.kendalltau(a, b).statistic,
        "rmse": lambda a, b: np.sqrt(np.mean((a - b) ** 2)),
        "accuracy": lambda a, b: np.mean((a >= 3) == (b >= 3)),
    }
    for metric, reference in references.items():
        got = ss.metric_on_resamples(metric, true, pred, counts, threshold=3)
        expected = [reference(true[r], pred[r]) for r in rows]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12, err_msg=metric)


def test_krcc_on_many_images_goes_to_scipy_with_the_same_values(monkeypatch):
    # Above _KENDALL_COUNTS_MAX images each resample is handed to SciPy;
    # lower the limit so that both paths see the same small resamples.
    true, pred = DATASETS["integer votes"]
    rng = np.random.default_rng(6)
    counts = np.stack(
        [np.bincount(rng.integers(0, true.size, true.size), minlength=true.size)
         for _ in range(20)]
    )
    counts[0] = 0
    counts[0, np.flatnonzero(true == true[0])[:3]] = 5  # constant true scores
    by_counts = ss.metric_on_resamples("krcc", true, pred, counts)
    monkeypatch.setattr(ss, "_KENDALL_COUNTS_MAX", 10)
    by_scipy = ss.metric_on_resamples("krcc", true, pred, counts)
    assert np.isnan(by_scipy[0]) and np.isfinite(by_scipy[1:]).all()
    np.testing.assert_allclose(by_scipy, by_counts, rtol=0, atol=1e-12)
    assert ss.krcc(true, pred) == pytest.approx(
        scipy_stats.kendalltau(true, pred).statistic, abs=1e-12
    )


def test_a_constant_resample_gives_nan_not_a_number():
    true, pred = DATASETS["integer votes"]
    counts = np.zeros((3, true.size), dtype=int)
    counts[0, 0] = 200  # one image drawn every time
    same_true = np.flatnonzero(true == true[0])[:5]
    counts[1, same_true] = 40  # several images, all with the same true score
    counts[2] = 1  # the full sample
    for metric in ss.CORRELATIONS:
        values = ss.metric_on_resamples(metric, true, pred, counts)
        assert np.isnan(values[:2]).all(), metric
        assert np.isfinite(values[2]), metric
    # RMSE and accuracy stay defined.
    assert np.isfinite(ss.metric_on_resamples("rmse", true, pred, counts)).all()


# --------------------------------------------------------------- intervals


def test_interval_contains_the_estimate_on_photo_scores():
    true, pred = photo_patch_scores()
    results = ss.bootstrap_intervals(true, pred, n_resamples=1000, seed=3)
    assert set(results) == set(ss.METRICS)
    for metric, result in results.items():
        assert result.low < result.estimate < result.high, metric
        assert result.n_resamples == 1000
        assert result.n_degenerate == 0
        assert result.confidence == 0.95
    assert results["srcc"].estimate == ss.srcc(true, pred)


def test_interval_narrows_as_n_grows():
    widths = []
    for n in (100, 400, 1600):
        x, y = bivariate_normal(n, 0.5, seed=n)
        result = ss.bootstrap_interval(x, y, "srcc", n_resamples=1000, seed=0)
        widths.append(result.high - result.low)
    # About 1/sqrt(n): halves each time n quadruples.
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] == pytest.approx(4, rel=0.35)


def test_interval_is_reproducible_from_the_seed(monkeypatch):
    true, pred = photo_patch_scores()
    first = ss.bootstrap_interval(true, pred, "srcc", n_resamples=500, seed=11)
    assert ss.bootstrap_interval(true, pred, "srcc", n_resamples=500, seed=11) == first
    assert ss.bootstrap_interval(true, pred, "srcc", n_resamples=500, seed=12) != first
    # The same resamples whatever the chunking (KRCC takes bigger chunks).
    together = ss.bootstrap_intervals(
        true, pred, ("srcc", "krcc"), n_resamples=500, seed=11
    )
    assert together["srcc"] == first
    monkeypatch.setattr(ss, "_CHUNK_VALUES", 7 * true.size + 3)
    assert ss.bootstrap_interval(true, pred, "srcc", n_resamples=500, seed=11) == first


def test_wider_confidence_gives_a_wider_interval():
    true, pred = photo_patch_scores()
    narrow = ss.bootstrap_interval(true, pred, "plcc", confidence=0.8, n_resamples=800)
    wide = ss.bootstrap_interval(true, pred, "plcc", confidence=0.99, n_resamples=800)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_intervals_cover_the_true_correlation():
    # 200 bivariate-normal samples of 80 images with rho = 0.5; population
    # values: Pearson rho, Spearman 6/pi asin(rho/2), Kendall 2/pi asin(rho).
    rho, samples, n = 0.5, 200, 80
    truth = {
        "plcc": rho,
        "srcc": 6 / math.pi * math.asin(rho / 2),
        "krcc": 2 / math.pi * math.asin(rho),
    }
    covered = {metric: 0 for metric in truth}
    for sample in range(samples):
        x, y = bivariate_normal(n, rho, seed=1000 + sample)
        results = ss.bootstrap_intervals(
            x, y, tuple(truth), n_resamples=300, seed=sample
        )
        for metric, value in truth.items():
            covered[metric] += results[metric].low <= value <= results[metric].high
    coverage = {metric: covered[metric] / samples for metric in truth}
    print(f"coverage of 95% intervals over {samples} samples: {coverage}")
    # Binomial tolerance around 0.95: three standard deviations (0.046).
    tolerance = 3 * math.sqrt(0.95 * 0.05 / samples)
    for metric, value in coverage.items():
        assert abs(value - 0.95) <= tolerance, (metric, value)


def test_degenerate_resamples_are_counted_and_can_void_the_interval():
    # 10 images, one of which alone has the high true score: a resample
    # misses it with probability 0.9**10 = 0.349 and is then constant.
    true = np.array([1.0] * 9 + [2.0])
    pred = np.arange(10.0)
    result = ss.bootstrap_interval(true, pred, "srcc", n_resamples=2000, seed=4)
    expected = 2000 * 0.9**10
    assert abs(result.n_degenerate - expected) < 4 * math.sqrt(expected * 0.651)
    assert math.isnan(result.low) and math.isnan(result.high)
    assert result.estimate == pytest.approx(scipy_stats.spearmanr(true, pred).statistic)
    kept = ss.bootstrap_interval(
        true, pred, "srcc", n_resamples=2000, seed=4, max_degenerate_fraction=0.5
    )
    assert kept.n_degenerate == result.n_degenerate
    # Conditioned on the non-constant resamples; here it even misses the
    # estimate, which is why the default voids it.
    assert -1 <= kept.low < kept.high <= 1
    assert not math.isnan(ss.bootstrap_interval(true, pred, "rmse", seed=4).low)


# ---------------------------------------------------------- paired difference


def test_paired_difference_excludes_zero_when_b_is_a_plus_noise():
    true, a = photo_patch_scores()
    rng = np.random.default_rng(8)
    b = a + rng.normal(0, 0.8, size=a.size)
    for metric in ("srcc", "plcc", "krcc"):
        paired = ss.paired_bootstrap_difference(true, a, b, metric, n_resamples=1000)
        single = ss.srcc if metric == "srcc" else ss.plcc if metric == "plcc" else ss.krcc
        assert paired.estimate == pytest.approx(single(true, a) - single(true, b))
        assert paired.low > 0 and paired.excludes_zero, metric
    # Pairing is what makes it decisive: the two separate intervals overlap.
    alone_a = ss.bootstrap_interval(true, a, "srcc", n_resamples=1000)
    alone_b = ss.bootstrap_interval(true, b, "srcc", n_resamples=1000)
    assert alone_b.high > alone_a.low


def test_paired_difference_includes_zero_when_exchangeable():
    true, _ = photo_patch_scores()
    rng = np.random.default_rng(9)
    a = true + rng.normal(0, 1.5, size=true.size)
    b = true + rng.normal(0, 1.5, size=true.size)
    for metric in ss.METRICS:
        paired = ss.paired_bootstrap_difference(
            true, a, b, metric, threshold=5.5, n_resamples=1000
        )
        assert paired.low < 0 < paired.high and not paired.excludes_zero, metric


def test_paired_difference_of_an_experiment_with_itself_is_zero():
    true, pred = photo_patch_scores()
    paired = ss.paired_bootstrap_difference(true, pred, pred, "krcc", n_resamples=200)
    assert (paired.estimate, paired.low, paired.high) == (0.0, 0.0, 0.0)
    assert not paired.excludes_zero


# ------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ss.srcc([1, 2, 3], [1, 2]), "same images.*Received: 3 true and 2"),
        (lambda: ss.plcc([1, 1, 1], [1, 2, 3]), "fewer than 2 distinct.*y_true = 1"),
        (lambda: ss.krcc([1, 2, 3], [4, 4, 4]), "fewer than 2 distinct.*y_pred = 4"),
        (lambda: ss.rmse([1, np.nan, 3], [1, 2, 3]), r"Received: y_true\[1\]=nan"),
        (lambda: ss.srcc([1, 2, 3], [1, np.inf, 3]), r"Received: y_pred\[1\]=inf"),
        (lambda: ss.srcc([1], [1]), "at least 2 images. Received: 1"),
        (lambda: ss.srcc([[1, 2]], [[1, 2]]), "1-D.*Received: y_true with shape"),
        (
            lambda: ss.bootstrap_interval([1, 2, 3], [1, 3, 2], n_resamples=0),
            "Received: n_resamples=0",
        ),
        (
            lambda: ss.bootstrap_interval([1, 2, 3], [1, 3, 2], n_resamples=2.5),
            "Received: n_resamples=2.5",
        ),
        (
            lambda: ss.bootstrap_interval([1, 2, 3], [1, 3, 2], confidence=1.0),
            r"\(0, 1\).*Received: confidence=1.0",
        ),
        (
            lambda: ss.bootstrap_interval([1, 2, 3], [1, 3, 2], confidence=95),
            "Received: confidence=95",
        ),
        (
            lambda: ss.bootstrap_interval([1, 2, 3], [1, 3, 2], metric="mse"),
            "Received: metric='mse'",
        ),
        (
            lambda: ss.paired_bootstrap_difference([1, 2, 3], [1, 3, 2], [1, 2]),
            "Received: 3 true and 2",
        ),
        (
            lambda: ss.paired_bootstrap_difference([1, 2, 3], [1, 3, 2], [5, 5, 5]),
            "y_pred_b` has fewer than 2 distinct",
        ),
        (
            lambda: ss.metric_on_resamples("srcc", [1, 2], [2, 1], [[1, 1, 1]]),
            r"shape \(resamples, 2\).*Received: counts with shape \(1, 3\)",
        ),
        (lambda: ss.emd([0.5, 0.5], [0.2, 0.2, 0.6]), "same number of bins"),
        (lambda: ss.emd([0.5, 0.6], [0.5, 0.5]), "sum to 1.*Received: a sum of 1.1"),
        (lambda: ss.emd([1.5, -0.5], [0.5, 0.5]), "non-negative.*Received: min -0.5"),
        (lambda: ss.emd([1.0], [1.0]), "K >= 2 bins.*Received: p with shape"),
        (lambda: ss.emd([0.5, 0.5], [0.5, 0.5], r=0.5), "Received: r=0.5"),
        (lambda: ss.distribution_mean([0.5, np.nan]), "finite.*1 non-finite"),
    ],
)
def test_bad_arguments_say_what_was_received(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------ score distributions


@functools.lru_cache(maxsize=None)
def photo_histograms(bins=10):
    """Ten-bin "vote" distributions: each photo's intensity histogram."""
    rows = []
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        if image.ndim == 3:
            image = skimage.color.rgb2gray(image)
        counts, _ = np.histogram(image / image.max(), bins=bins, range=(0, 1))
        rows.append(counts / counts.sum())
    return np.array(rows)


def emd_by_loop(p, q, r):
    # Written out bin by bin, independently of the vectorised form.
    k = len(p)
    cdf_p = cdf_q = total = 0.0
    for i in range(k):
        cdf_p += p[i]
        cdf_q += q[i]
        total += abs(cdf_p - cdf_q) ** r
    return (total / k) ** (1 / r)


@pytest.mark.parametrize("r", [1, 2, 3])
def test_emd_matches_a_bin_by_bin_reference(r):
    histograms = photo_histograms()
    for p in histograms:
        for q in histograms:
            assert ss.emd(p, q, r=r) == pytest.approx(emd_by_loop(p, q, r), abs=1e-12)


def test_emd_r1_is_scipy_wasserstein_over_k():
    histograms = photo_histograms()
    bins = np.arange(1, 11)
    for p in histograms:
        for q in histograms:
            expected = scipy_stats.wasserstein_distance(bins, bins, p, q) / 10
            assert ss.emd(p, q, r=1) == pytest.approx(expected, abs=1e-12)


def test_emd_is_batched_symmetric_and_zero_on_equal_inputs():
    histograms = photo_histograms()
    shifted = np.roll(histograms, 1, axis=0)
    batched = ss.emd(histograms, shifted)
    assert batched.shape == (len(PHOTOS),)
    np.testing.assert_allclose(batched, [ss.emd(p, q) for p, q in zip(histograms, shifted)])
    np.testing.assert_allclose(ss.emd(shifted, histograms), batched)
    assert ss.emd(histograms[0], histograms[0]) == 0.0
    # All mass in bin 1 vs all in bin K: every CDF gap but the last is 1.
    first, last = np.eye(10)[0], np.eye(10)[9]
    assert ss.emd(first, last) == pytest.approx(math.sqrt(9 / 10))


def test_distribution_mean_and_std_over_bins_one_to_k():
    histograms = photo_histograms()
    bins = np.arange(1, 11)
    means = ss.distribution_mean(histograms)
    stds = ss.distribution_std(histograms)
    for p, mean, std in zip(histograms, means, stds):
        expected_mean = sum(b * w for b, w in zip(bins, p))
        expected_var = sum(w * (b - expected_mean) ** 2 for b, w in zip(bins, p))
        assert mean == pytest.approx(expected_mean, abs=1e-12)
        assert std == pytest.approx(math.sqrt(expected_var), abs=1e-12)
    assert ss.distribution_mean(np.eye(10)[4]) == 5.0
    assert ss.distribution_std(np.eye(10)[4]) == 0.0
    assert ss.distribution_std([0.5, 0.0, 0.5]) == pytest.approx(1.0)
