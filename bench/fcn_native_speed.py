"""FCN at native size vs Keras' original, batch 1 and 8, side by side.

usage: python bench/fcn_native_speed.py [--families VGG16 ...] [--repeats N]
                                        [--seconds S]
                                        [--out docs/results/fcn_native_speed.csv]

For each family: Keras' original (`include_top=True`, logits) and its FCN
twins from `to_fcn` (input shape `(None, None, 3)`, the weights copied),
timed alternately on the same random batch with `predict_on_batch`
(compiled): `pooling="max"` (the builders' default), and for the global
average pooling families also `pooling="avg"` (`to_fcn`'s default, computed
as the 1x1 conv of the averaged features). For VGG16, two other ways of
computing `fc1` on the 7x7 map are timed too, to pick the fastest correct
one (`VGG16_fcn` computes it as a 7x7 `Conv2D`):
- `matmul@7x7`: the map flattened and multiplied by the kernel as a matrix,
  exactly the original's Dense (valid only for a 7x7 map);
- `patches+matmul`: the 49 shifted views concatenated into patches, then
  one matmul (valid at every size).
Prints, over interleaved runs (at least `--repeats` and `--seconds` in all
per model), the fastest and the median wall-clock time and the median CPU
time of each, and the ratios to the original's measured in the same run:
of the fastest run (the least disturbed on a shared machine) and of the CPU
time (the work done, hardly affected by other processes); then the max abs
diff of the logits against the original's where they compute the same
function (`-` where they do not: max over positions vs average).
"""

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import keras  # noqa: E402
from keras import layers  # noqa: E402
from keras import ops  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_file import Provenance  # noqa: E402
from results_file import add_out_argument  # noqa: E402
from results_file import write_results  # noqa: E402

FAMILIES = {
    "VGG16": (keras.applications.VGG16, keras.applications.vgg16_fcn, {}),
    "VGG19": (keras.applications.VGG19, keras.applications.vgg19_fcn, {}),
    "InceptionV3": (
        keras.applications.InceptionV3,
        keras.applications.inception_v3_fcn,
        {},
    ),
    "Xception": (
        keras.applications.Xception,
        keras.applications.xception_fcn,
        {},
    ),
    "MobileNetV2": (
        keras.applications.MobileNetV2,
        keras.applications.mobilenet_v2_fcn,
        {},
    ),
}
NATIVE = {"InceptionV3": 299, "Xception": 299}


class Fc1Matmul(layers.Layer):
    """fc1 as the original's matmul; the map must be exactly 7x7."""

    def __init__(self, kernel, bias, patches, **kwargs):
        super().__init__(**kwargs)
        self.patches = patches
        self.kernel = self.add_weight(shape=(25088, 4096), initializer="zeros")
        self.bias = self.add_weight(shape=(4096,), initializer="zeros")
        self.kernel.assign(np.reshape(kernel, (25088, 4096)))
        self.bias.assign(bias)

    def call(self, x):
        if self.patches:
            rows, cols = ops.shape(x)[1] - 6, ops.shape(x)[2] - 6
            x = ops.concatenate(
                [
                    x[:, i : i + rows, j : j + cols, :]
                    for i in range(7)
                    for j in range(7)
                ],
                axis=-1,
            )
            return ops.relu(ops.matmul(x, self.kernel) + self.bias)
        y = ops.matmul(ops.reshape(x, (-1, 25088)), self.kernel) + self.bias
        return ops.reshape(ops.relu(y), (-1, 1, 1, 4096))

    def compute_output_shape(self, shape):
        return (
            (shape[0], 1, 1, 4096)
            if not self.patches
            else (
                shape[0],
                None if shape[1] is None else shape[1] - 6,
                None if shape[2] is None else shape[2] - 6,
                4096,
            )
        )


def vgg16_fc1_variant(fcn, patches):
    """`fcn` with fc1 computed by `Fc1Matmul`; the same weights."""
    fc1 = fcn.get_layer("fc1")
    x = fcn.get_layer("fc1_pad").output
    x = Fc1Matmul(*fc1.get_weights(), patches=patches)(x)
    for layer in fcn.layers[fcn.layers.index(fc1) + 1 :]:  # A chain.
        x = layer(x)
    return keras.Model(fcn.inputs, x)


def time_side_by_side(models, batch, repeats, seconds):
    """Interleaved runs: at least `repeats` each, and `seconds` in all each.

    Returns per model the fastest wall-clock time, the median wall-clock
    time, the median CPU time of this process (all its threads: less
    sensitive to other processes on a shared machine) and the run count.
    """
    for model in models.values():  # Trace and warm up.
        model.predict_on_batch(batch)
    wall = {name: [] for name in models}
    cpu = {name: [] for name in models}
    while (
        min(len(t) for t in wall.values()) < repeats
        or min(sum(t) for t in wall.values()) < seconds
    ):
        for name, model in models.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            model.predict_on_batch(batch)
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    return {
        name: (min(t), float(np.median(t)), float(np.median(cpu[name])), len(t))
        for name, t in wall.items()
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES)
    )
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="least time per model"
    )
    add_out_argument(parser)
    args = parser.parse_args()
    provenance = Provenance("fcn_native_speed.py")
    results = []
    print(
        f"# {platform.machine()}, {os.cpu_count()} CPUs, Keras "
        f"{keras.__version__}, backend {keras.backend.backend()}"
    )
    print(
        f"{'model':<26} {'batch':>5} {'fastest ms':>10} {'median ms':>10} "
        f"{'cpu ms':>10} {'runs':>5} {'fastest':>9} {'cpu':>9} "
        f"{'max abs diff':>12}"
    )
    rng = np.random.default_rng(0)
    for family in args.families:
        builder, module, kwargs = FAMILIES[family]
        size = NATIVE.get(family, 224)
        original = builder(weights=None, classifier_activation=None, **kwargs)
        models = {f"{family} original": original}
        poolings = ["max"] if family.startswith("VGG") else ["avg", "max"]
        for pooling in poolings:
            name = f"{family}_fcn, {pooling}"
            models[name] = module.to_fcn(original, pooling=pooling)
        if family == "VGG16":
            fcn = models["VGG16_fcn, max"]
            models["  fc1 as matmul@7x7"] = vgg16_fc1_variant(fcn, False)
            models["  fc1 as patches+matmul"] = vgg16_fc1_variant(fcn, True)
        for batch_size in args.batches:
            batch = rng.uniform(-1, 1, (batch_size, size, size, 3))
            batch = batch.astype("float32")
            expected = original.predict_on_batch(batch)
            times = time_side_by_side(models, batch, args.repeats, args.seconds)
            base = times[f"{family} original"]
            for name, model in models.items():
                if name.endswith("max") and family not in ("VGG16", "VGG19"):
                    diff = "-"
                else:
                    outputs = model.predict_on_batch(batch)
                    diff = float(np.max(np.abs(outputs - expected)))
                fastest, median, cpu, runs = times[name]
                label = name.strip()
                results.append({
                    # A markdown cell drops leading spaces: the variants
                    # are indented under VGG16_fcn with &nbsp;.
                    "model": "&nbsp;" * (len(name) - len(label)) + label,
                    "batch": batch_size,
                    "fastest_ms": fastest * 1000,
                    "median_ms": median * 1000,
                    "cpu_ms": cpu * 1000,
                    "runs": runs,
                    "ratio_fastest": fastest / base[0],
                    "ratio_cpu": cpu / base[2],
                    "max_abs_diff": diff,
                })
                diff = diff if diff == "-" else f"{diff:.1e}"
                print(
                    f"{name:<26} {batch_size:>5} {fastest * 1000:>10.1f} "
                    f"{median * 1000:>10.1f} {cpu * 1000:>10.1f} {runs:>5} "
                    f"{fastest / base[0]:>8.2f}x {cpu / base[2]:>8.2f}x "
                    f"{diff:>12}",
                    flush=True,
                )
        del models, original
    if args.out:
        write_results(args.out, results, provenance)


if __name__ == "__main__":
    main()
