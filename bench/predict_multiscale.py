"""Does multi-scale scoring help? Test accuracy with and without `--scales`.

Scores a folder-per-class test set with a trained experiment at scale 1 and
at each given set of scales (probabilities averaged, as
`predict --scales` does), and prints each accuracy with its Wilson 95%
interval, and the paired difference to scale 1 with a bootstrap 95%
interval and the exact McNemar p-value (same images, so paired).

    .venv/bin/python bench/predict_multiscale.py snapshots/exp3_fcn_1.5x \\
        snapshots/data/<dataset>/test --scales 1,1.5 0.75,1,1.5 1,1.5,2 \
        [--out docs/results/predict_multiscale.csv]
"""

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.results_file import Provenance  # noqa: E402
from bench.results_file import add_out_argument  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from fcn_experiments.data.listing import list_class_images  # noqa: E402
from fcn_experiments.evaluation.accuracy_statistics import mcnemar_exact  # noqa: E402
from fcn_experiments.evaluation.accuracy_statistics import wilson_interval  # noqa: E402
from fcn_experiments.predict.images import parse_scales  # noqa: E402
from fcn_experiments.predict.images import predict_images  # noqa: E402
from fcn_experiments.predict.model_source import resolve_model_source  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("test_dir")
    parser.add_argument("--scales", nargs="+", default=["1,1.5", "1,1.5,2"])
    parser.add_argument("--experiment", type=int, default=None)
    parser.add_argument("--bootstrap", type=int, default=10000)
    add_out_argument(parser)
    args = parser.parse_args()
    provenance = Provenance("predict_multiscale.py")
    rows = []
    source = resolve_model_source(args.model, experiment=args.experiment)
    files, _ = list_class_images(args.test_dir)
    paths = [path for path, _ in files]
    labels = np.array([source.class_names.index(name) for _, name in files])
    print(f"{source.name}: {len(paths)} test images, classes "
          f"{source.class_names}, input size {source.input_size}")
    correct = {}
    for text in ["1"] + args.scales:
        scales = parse_scales(text)
        scores, stats = predict_images(source, paths, scales=scales, verbose=0)
        assert stats["failed"] == 0, [s.error for s in scores if s.error]
        predicted = np.array([int(np.argmax(s.probabilities)) for s in scores])
        correct[text] = predicted == labels
    rng = np.random.default_rng(0)
    base = correct["1"]
    n = len(base)
    draws = rng.integers(0, n, (args.bootstrap, n))
    for text, hits in correct.items():
        low, high = wilson_interval(int(hits.sum()), n)
        line = (f"scales {text:>12}: accuracy {hits.mean():.4f} "
                f"({hits.sum()}/{n}; Wilson 95% [{low:.3f}, {high:.3f}])")
        row = {
            "scales": ", ".join(text.split(",")),
            "accuracy": hits.mean(),
            "correct": int(hits.sum()),
            "images": n,
            "wilson_low": low,
            "wilson_high": high,
        }
        if text != "1":
            diff = hits.astype(float) - base
            boot = diff[draws].mean(axis=1)
            lo, hi = np.percentile(boot, [2.5, 97.5])
            p_value, gained, lost = mcnemar_exact(hits, base)
            line += (f"; vs scale 1: {diff.mean():+.4f} (bootstrap 95% "
                     f"[{lo:+.3f}, {hi:+.3f}]; {gained} gained, {lost} lost, "
                     f"McNemar p={p_value:.3f})")
            row.update(difference=diff.mean(), difference_low=lo,
                       difference_high=hi, gained=gained, lost=lost,
                       mcnemar_p=p_value)
        rows.append(row)
        print(line)
    if args.out:
        write_results(args.out, rows, provenance)


if __name__ == "__main__":
    main()
