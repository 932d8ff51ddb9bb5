"""Wilson intervals and exact McNemar tests against published and SciPy values."""

import pytest
from scipy import stats as scipy_stats

from fcn_experiments.evaluation import accuracy_statistics as statistics


# Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3
# (Wilson score interval without continuity correction), 95%.
@pytest.mark.parametrize(
    "k, n, low, high",
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombe(k, n, low, high):
    got = statistics.wilson_interval(k, n)
    assert got == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize(
    "k, n", [(0, 1), (1, 1), (150, 300), (287, 300), (300, 300), (7, 54)]
)
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy(k, n, confidence):
    ci = scipy_stats.binomtest(k, n).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    got = statistics.wilson_interval(k, n, confidence)
    assert got == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_wilson_ends_are_exact():
    assert statistics.wilson_interval(0, 30)[0] == 0.0
    assert statistics.wilson_interval(30, 30)[1] == 1.0


@pytest.mark.parametrize("k, n", [(0, 0), (3, 20), (10, 20), (0, 5), (7, 30), (60, 61)])
def test_binomial_p_matches_scipy(k, n):
    expected = 1.0 if n == 0 else scipy_stats.binomtest(k, n, 0.5).pvalue
    assert statistics.binomial_two_sided_p(k, n) == pytest.approx(
        expected, rel=1e-12
    )


def test_mcnemar_counts_discordant_pairs():
    a = [True] * 10 + [True] * 8 + [False] * 2 + [False] * 5
    b = [True] * 10 + [False] * 8 + [True] * 2 + [False] * 5
    p, a_only, b_only = statistics.mcnemar_exact(a, b)
    assert (a_only, b_only) == (8, 2)
    assert p == pytest.approx(scipy_stats.binomtest(2, 10, 0.5).pvalue)
    # Symmetric in the two classifiers.
    assert statistics.mcnemar_exact(b, a)[0] == p


def test_mcnemar_of_identical_predictions_is_one():
    same = [True, False, True]
    assert statistics.mcnemar_exact(same, same) == (1.0, 0, 0)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="trials"):
        statistics.wilson_interval(0, 0)
    with pytest.raises(ValueError, match="successes"):
        statistics.wilson_interval(5, 4)
    with pytest.raises(ValueError, match="confidence"):
        statistics.wilson_interval(1, 4, confidence=95)
    with pytest.raises(ValueError, match="same images"):
        statistics.mcnemar_exact([True], [True, False])
