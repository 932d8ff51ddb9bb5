"""Dense FCN evaluation vs sliding the original over crops, side by side.

usage: python bench/fcn_dense_vs_sliding.py [--family VGG16|VGG19] [--repeats N]
                                            [--out docs/results/fcn_dense_vs_sliding.csv]

One 448x448 image. Dense: `<Name>_fcn(pooling=None)` gives its 8x8 score map
in one pass. Sliding: the original classifies all 64 crops of 224x224 at
stride 32 (the windows of the same 8x8 positions; numerically not the same
scores, since each crop's convolutions zero-pad at the crop's border), in
batches of 8 and of 64, crop extraction included. The theoretical ratio is
the multiply-accumulates (MACs) of the 64 crops over those of the dense
pass, counted from the layers' shapes; the measured ratio is the time of the
faster sliding batch size over the dense time, both as the fastest of
interleaved runs (the least disturbed on a shared machine) and as the
median CPU time of this process (the work done, hardly affected by other
processes); its quotient by the theoretical one is the share of the
theoretical saving that is reached.
"""

import argparse
import math
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_file import Provenance  # noqa: E402
from results_file import add_out_argument  # noqa: E402
from results_file import write_results  # noqa: E402

FAMILIES = {
    "VGG16": (keras.applications.VGG16, keras.applications.VGG16_fcn),
    "VGG19": (keras.applications.VGG19, keras.applications.VGG19_fcn),
}
IMAGE, CROP, STRIDE = 448, 224, 32


def macs(model):
    """Multiply-accumulates of one image through the Conv2D and Dense layers."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            positions = math.prod(layer.output.shape[1:-1])
            total += positions * math.prod(layer.kernel.shape)
    return total


def crops(image):
    steps = range(0, IMAGE - CROP + 1, STRIDE)
    return np.stack(
        [image[r : r + CROP, c : c + CROP] for r in steps for c in steps]
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", default="VGG16", choices=list(FAMILIES))
    parser.add_argument("--repeats", type=int, default=5)
    add_out_argument(parser)
    args = parser.parse_args()
    provenance = Provenance("fcn_dense_vs_sliding.py")
    original_builder, fcn_builder = FAMILIES[args.family]
    original = original_builder(weights=None)
    dense = fcn_builder(weights=None, pooling=None)
    static = fcn_builder(
        weights=None, pooling=None, input_shape=(IMAGE, IMAGE, 3)
    )
    n_crops = len(range(0, IMAGE - CROP + 1, STRIDE)) ** 2
    theoretical = n_crops * macs(original) / macs(static)
    del static

    image = (
        np.random.default_rng(0)
        .uniform(-1, 1, (IMAGE, IMAGE, 3))
        .astype("float32")
    )
    runs = {
        "dense FCN, 1 pass": lambda: dense.predict_on_batch(image[None]),
        "sliding, batches of 8": lambda: [
            original.predict_on_batch(b)
            for b in np.split(crops(image), n_crops // 8)
        ],
        f"sliding, batch of {n_crops}": lambda: original.predict_on_batch(
            crops(image)
        ),
    }
    assert runs["dense FCN, 1 pass"]().shape == (1, 8, 8, 1000)
    for run in runs.values():  # Trace and warm up.
        run()
    times = {name: [] for name in runs}
    cpu_times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            cpu_times[name].append(time.process_time() - start_cpu)
            times[name].append(time.perf_counter() - start)
    fastest = {name: min(t) for name, t in times.items()}
    cpu = {name: float(np.median(t)) for name, t in cpu_times.items()}

    print(
        f"# {platform.machine()}, {os.cpu_count()} CPUs, Keras "
        f"{keras.__version__}, backend {keras.backend.backend()}"
    )
    print(
        f"# {args.family}: one {IMAGE}x{IMAGE} image, {n_crops} crops of "
        f"{CROP}x{CROP} at stride {STRIDE}; {args.repeats} interleaved runs"
    )
    print(f"{'':<24} {'fastest ms':>10} {'median ms':>10} {'cpu ms':>10}")
    for name, t in times.items():
        print(
            f"{name:<24} {min(t) * 1000:>10.0f} {np.median(t) * 1000:>10.0f} "
            f"{cpu[name] * 1000:>10.0f}"
        )
    print(f"theoretical MAC ratio    {theoretical:>9.2f}x")
    for label, measure in (("fastest time", fastest), ("cpu time", cpu)):
        sliding = min(measure[name] for name in runs if "sliding" in name)
        measured = sliding / measure["dense FCN, 1 pass"]
        print(
            f"measured {label:<15} {measured:>9.2f}x, "
            f"{measured / theoretical:.2f} of the theoretical"
        )
    if args.out:
        rows = [
            {
                "family": args.family,
                "method": name,
                "fastest_ms": min(t) * 1000,
                "median_ms": float(np.median(t)) * 1000,
                "cpu_ms": cpu[name] * 1000,
                "theoretical_ratio": theoretical,
            }
            for name, t in times.items()
        ]
        write_results(args.out, rows, provenance)


if __name__ == "__main__":
    main()
