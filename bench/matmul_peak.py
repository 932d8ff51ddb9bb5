"""The CPU's matmul ceiling in float32 and bfloat16, measured side by side.

usage: python bench/matmul_peak.py [--size 2048] [--repeats 5] [--rounds 5]
                                   [--out docs/results/matmul_peak.csv]

Multiplies two `--size`-square matrices with TensorFlow (`tf.linalg.matmul`,
the kernels Keras' Dense and Conv2D reach), float32 and bfloat16 in
alternating rounds, and prints the best and median GMAC/s of each (one
multiply-add = one MAC) and their ratio. The best round is the least
disturbed on a shared machine.

Other benches import `measure_peak()` and `model_macs()` to report the
GMAC/s a training step achieves as a fraction of this ceiling.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_file import Provenance  # noqa: E402
from results_file import add_out_argument  # noqa: E402
from results_file import write_results  # noqa: E402

DTYPES = ("float32", "bfloat16")


def _matmul_seconds(a, b, repeats):
    """(wall, process CPU) seconds per product."""
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        c = tf.linalg.matmul(a, b)
    c.numpy()  # Waits for the last product.
    return (
        (time.perf_counter() - start) / repeats,
        (time.process_time() - cpu) / repeats,
    )


def measure_peak(size=2048, repeats=5, rounds=5, dtypes=DTYPES):
    """Matmul GMAC/s per dtype, measured in alternating rounds.

    Returns:
        `{dtype: {"best": GMAC/s, "median": GMAC/s, "per_cpu_s": GMAC per
        CPU second}}`; `per_cpu_s` times the core count is what an idle
        machine would reach, and hardly moves with other processes' load.
    """
    rng = tf.random.Generator.from_seed(0)
    inputs = {}
    for dtype in dtypes:
        a = tf.cast(rng.normal((size, size)), dtype)
        b = tf.cast(rng.normal((size, size)), dtype)
        _matmul_seconds(a, b, 1)  # Warm-up: kernel selection, allocation.
        inputs[dtype] = (a, b)
    rates = {dtype: [] for dtype in dtypes}
    cpu = {dtype: 0.0 for dtype in dtypes}
    macs = size**3
    for _ in range(rounds):
        for dtype, (a, b) in inputs.items():
            wall_s, cpu_s = _matmul_seconds(a, b, repeats)
            rates[dtype].append(macs / wall_s / 1e9)
            cpu[dtype] += cpu_s
    return {
        dtype: {
            "best": max(r),
            "median": statistics.median(r),
            "per_cpu_s": macs * rounds / cpu[dtype] / 1e9,
        }
        for dtype, r in rates.items()
    }


def model_macs(model):
    """Multiply-adds of one forward pass of one image through `model`.

    Counts Conv2D, DepthwiseConv2D, SeparableConv2D and Dense layers (nested
    models included) from their output shapes as built: the layers that
    hold nearly all of a CNN's arithmetic. A training step costs about 3x
    this (forward, and the two backward products).
    """
    import keras

    total = 0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Dense):
            total += _positions(layer.output.shape[1:-1]) * int(
                layer.kernel.shape[0]
            ) * int(layer.kernel.shape[1])
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw, cin, mult = layer.kernel.shape
            total += _positions(layer.output.shape[1:3]) * kh * kw * cin * mult
        elif isinstance(layer, keras.layers.SeparableConv2D):
            kh, kw, cin, mult = layer.depthwise_kernel.shape
            _, _, mid, cout = layer.pointwise_kernel.shape
            positions = _positions(layer.output.shape[1:3])
            total += positions * (kh * kw * cin * mult + mid * cout)
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            total += _positions(layer.output.shape[1:3]) * kh * kw * cin * cout
    return int(total)


def _layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _layers(layer)
        else:
            yield layer


def _positions(spatial_shape):
    count = 1
    for side in spatial_shape:
        if side is None:
            raise ValueError(
                "model_macs needs a model built at a fixed input size. "
                f"Received: output spatial shape {tuple(spatial_shape)}"
            )
        count *= int(side)
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    add_out_argument(parser)
    args = parser.parse_args()
    provenance = Provenance("matmul_peak.py")
    load = os.getloadavg()
    peak = measure_peak(args.size, args.repeats, args.rounds)
    print(
        f"TF {tf.__version__}, {os.cpu_count()} CPUs, {args.size}^3 matmul, "
        f"{args.rounds} rounds of {args.repeats}; load average "
        f"{load[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    print("| dtype | best GMAC/s | median GMAC/s | GMAC per CPU-s |")
    print("|---|---|---|---|")
    for dtype, rate in peak.items():
        print(
            f"| {dtype} | {rate['best']:.1f} | {rate['median']:.1f} "
            f"| {rate['per_cpu_s']:.1f} |"
        )
    print(
        f"bf16 / fp32: {peak['bfloat16']['best'] / peak['float32']['best']:.2f}x "
        f"(best), {peak['bfloat16']['median'] / peak['float32']['median']:.2f}x "
        "(median)"
    )
    if args.out:
        rows = [
            {
                "dtype": dtype,
                "best_gmacs": rate["best"],
                "median_gmacs": rate["median"],
                "gmac_per_cpu_s": rate["per_cpu_s"],
                "size": args.size,
            }
            for dtype, rate in peak.items()
        ]
        write_results(args.out, rows, provenance)


if __name__ == "__main__":
    main()
