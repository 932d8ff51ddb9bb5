"""Global-pooling families' FCNs (`fcn.to_fcn`) against Keras' originals,
side by side: at the native size, and dense on a 2x image vs sliding.

usage: python bench/fcn_global_pooling_speed.py [--families A,B,...]
           [--batch N] [--repeats N] [--out docs/results/fcn_global_pooling_speed.csv]

Per family (its first member in `fcn.FAMILIES`, or the names given), in
one process, runs interleaved and timed as the fastest of `--repeats`
(the least disturbed on a shared machine) and as the median CPU time:
- native: a batch of `--batch` native-size images through the FCN
  (`pooling="max"`) and through the original; ratio FCN / original (the
  window pooling and the per-position head should cost nothing);
- 2x: one image of twice the native side. Dense: the FCN's score map
  (`pooling=None`) in one pass. Sliding: the original on every native-size
  crop at the FCN's stride (the windows of the same positions), in batches
  of 16, crop extraction included. Ratio sliding / dense.
Random weights (speed does not depend on them).
"""

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import keras  # noqa: E402
from keras.applications import fcn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_file import Provenance  # noqa: E402
from results_file import add_out_argument  # noqa: E402
from results_file import write_results  # noqa: E402

DEFAULT_FAMILIES = ("MobileNetV3Small", "EfficientNetB0", "ResNet50")
SLIDING_BATCH = 16


def crops(image, size, stride):
    rows, cols = image.shape[:2]
    return np.stack(
        [
            image[r : r + size, c : c + size]
            for r in range(0, rows - size + 1, stride)
            for c in range(0, cols - size + 1, stride)
        ]
    )


def time_interleaved(runs, repeats):
    """{name: (fastest s, median CPU s)} of interleaved runs, warmed up."""
    for run in runs.values():
        run()
    walls = {name: [] for name in runs}
    cpus = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            cpus[name].append(time.process_time() - start_cpu)
            walls[name].append(time.perf_counter() - start)
    return {
        name: (min(walls[name]), float(np.median(cpus[name]))) for name in runs
    }


def bench_family(name, batch, repeats):
    kwargs = {"input_shape": (224, 224, 3)} if "V3" in name else {}
    original = getattr(keras.applications, name)(weights=None, **kwargs)
    fcn_max = fcn.to_fcn(original)
    score_map = fcn.to_fcn(original, pooling=None)
    geometry = fcn.geometry(score_map)
    size = geometry.native_size[0]
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    big = rng.uniform(0, 255, (2 * size, 2 * size, 3)).astype("float32")
    windows = crops(big, size, geometry.stride)
    positions = score_map.predict_on_batch(big[None]).shape[1:3]
    runs = {
        "native, FCN": lambda: fcn_max.predict_on_batch(images),
        "native, original": lambda: original.predict_on_batch(images),
        "2x, dense FCN": lambda: score_map.predict_on_batch(big[None]),
        "2x, sliding original": lambda: [
            original.predict_on_batch(part)
            for part in np.array_split(
                crops(big, size, geometry.stride),
                -(-len(windows) // SLIDING_BATCH),
            )
        ],
    }
    measured = time_interleaved(runs, repeats)
    # Each run against its side by side counterpart (1.00x for that one).
    versus = {
        "native, FCN": "native, original",
        "native, original": "native, original",
        "2x, dense FCN": "2x, dense FCN",
        "2x, sliding original": "2x, dense FCN",
    }
    rows = [
        {
            "family": name,
            "run": run,
            "fastest_ms": wall * 1000,
            "cpu_ms": cpu * 1000,
            "versus": versus[run],
            "ratio_fastest": wall / measured[versus[run]][0],
            "ratio_cpu": cpu / measured[versus[run]][1],
            "repeats": repeats,
            "native_size": size,
            "stride": geometry.stride,
            "crops": len(windows),
            "positions": f"{positions[0]}x{positions[1]}",
        }
        for run, (wall, cpu) in measured.items()
    ]
    for ratio, over, under in (
        ("native FCN / original", "native, FCN", "native, original"),
        ("2x sliding / dense", "2x, sliding original", "2x, dense FCN"),
    ):
        print(
            f"{name:<18} {ratio:<22} fastest "
            f"{measured[over][0] / measured[under][0]:5.2f}x  cpu "
            f"{measured[over][1] / measured[under][1]:5.2f}x"
        )
    keras.backend.clear_session()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--families",
        default=",".join(DEFAULT_FAMILIES),
        help="comma-separated keras.applications builders",
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    add_out_argument(parser)
    args = parser.parse_args()
    provenance = Provenance("fcn_global_pooling_speed.py")
    members = {m for names in fcn.FAMILIES.values() for m in names}
    names = [n for n in args.families.split(",") if n]
    unknown = [n for n in names if n not in members]
    if unknown:
        parser.error(
            f"--families takes builders of fcn.FAMILIES. Received: {unknown}"
        )
    print(
        f"# {platform.machine()}, {os.cpu_count()} CPUs, Keras "
        f"{keras.__version__}, backend {keras.backend.backend()}; batch "
        f"{args.batch}, {args.repeats} interleaved runs"
    )
    rows = []
    for name in names:
        rows += bench_family(name, args.batch, args.repeats)
    if args.out:
        write_results(args.out, rows, provenance)


if __name__ == "__main__":
    main()
