"""Uncertainty of test accuracies: Wilson intervals and exact McNemar tests.

Pure Python (no SciPy): the experiments' results are small counts, for which
both are exact closed forms or short sums.
"""

import math
from statistics import NormalDist


def wilson_interval(successes, trials, confidence=0.95):
    """Wilson score interval of a binomial proportion.

    Args:
        successes: number of correct predictions.
        trials: number of predictions (> 0).
        confidence: two-sided confidence level in (0, 1).

    Returns:
        `(low, high)`, both in [0, 1].
    """
    if not isinstance(trials, int) or trials < 1:
        raise ValueError(
            f"`trials` must be a positive integer. Received: trials={trials!r}"
        )
    if not isinstance(successes, int) or not 0 <= successes <= trials:
        raise ValueError(
            f"`successes` must be an integer in [0, trials={trials}]. "
            f"Received: successes={successes!r}"
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(
            f"`confidence` must be in (0, 1). Received: confidence={confidence}"
        )
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = (
        z
        * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
        / denominator
    )
    # Exact at the ends: rounding would leave 1e-17 above 0 or below 1.
    low = 0.0 if successes == 0 else centre - half
    high = 1.0 if successes == trials else centre + half
    return low, high


def binomial_two_sided_p(k, n):
    """Exact two-sided p-value of `k` successes in `n` trials at p = 1/2.

    The symmetric case of SciPy's `binomtest(k, n, 0.5).pvalue`: twice the
    smaller tail, capped at 1.
    """
    if n == 0:
        return 1.0
    tail = min(k, n - k)
    mass = sum(math.comb(n, i) for i in range(tail + 1))
    return min(1.0, 2 * mass / 2**n)


def mcnemar_exact(correct_a, correct_b):
    """Exact McNemar test of two classifiers on the same test images.

    Args:
        correct_a, correct_b: sequences of booleans, one per test image in
            the same order: whether classifier A (B) got it right.

    Returns:
        `(p_value, a_only, b_only)`: the two-sided p-value of the exact
        binomial test on the discordant pairs, and their counts (images only
        A got right, only B got right). 1.0 when there are none.
    """
    correct_a, correct_b = list(correct_a), list(correct_b)
    if len(correct_a) != len(correct_b):
        raise ValueError(
            "Both classifiers must be scored on the same images. Received: "
            f"{len(correct_a)} and {len(correct_b)} results"
        )
    a_only = sum(1 for a, b in zip(correct_a, correct_b) if a and not b)
    b_only = sum(1 for a, b in zip(correct_a, correct_b) if b and not a)
    return binomial_two_sided_p(a_only, a_only + b_only), a_only, b_only
