"""Bootstrap intervals of score metrics: the vectorised counts form against a
loop of SciPy calls over the same resamples, side by side.

usage: .venv/bin/python bench/score_statistics_bench.py [--images 1000]
                                                      [--resamples 2000]

Times `fcn_experiments.evaluation.score_statistics.bootstrap_interval` for SRCC, PLCC and
KRCC against `scipy.stats.spearmanr` / `pearsonr` / `kendalltau` called once
per resample (on the first 200 resamples, scaled up), checks that both give
the same values, and prints seconds and the ratio.
"""

import argparse
import time

import numpy as np
from scipy import stats

from fcn_experiments.evaluation import score_statistics

SCIPY = {
    "srcc": lambda a, b: stats.spearmanr(a, b).statistic,
    "plcc": lambda a, b: stats.pearsonr(a, b).statistic,
    "krcc": lambda a, b: stats.kendalltau(a, b).statistic,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    # Mean-opinion-like scores: rounded to 0.1, so with ties.
    y_true = np.round(rng.normal(5.5, 1.0, args.images), 1)
    y_pred = np.round(y_true + rng.normal(0, 0.8, args.images), 1)
    looped = min(200, args.resamples)
    indices = rng.integers(0, args.images, size=(looped, args.images))
    counts = np.stack([np.bincount(i, minlength=args.images) for i in indices])
    print(f"{args.images} images, {args.resamples} resamples")
    print(f"{'metric':8}{'vectorised s':>14}{'SciPy loop s':>14}{'ratio':>8}")
    for metric, reference in SCIPY.items():
        start = time.perf_counter()
        score_statistics.bootstrap_interval(
            y_true, y_pred, metric, n_resamples=args.resamples
        )
        ours = time.perf_counter() - start
        start = time.perf_counter()
        expected = [reference(y_true[i], y_pred[i]) for i in indices]
        theirs = (time.perf_counter() - start) * args.resamples / looped
        got = score_statistics.metric_on_resamples(metric, y_true, y_pred, counts)
        assert np.allclose(got, expected, atol=1e-12), metric
        print(f"{metric:8}{ours:14.3f}{theirs:14.3f}{theirs / ours:7.1f}x")


if __name__ == "__main__":
    main()
