"""Training speed and accuracy of the FCNs in float32 and mixed_bfloat16.

usage: python bench/mixed_precision.py [--models VGG16 ...] [--sizes 224 336]
           [--batch-size 8] [--demo-sizes 32 48 64 96] [--demo-batch 32]
           [--warmup 2] [--steps 3] [--rounds 3] [--accuracy-steps 60]
           [--accuracy-seeds 2] [--policy mixed_bfloat16]
           [--out docs/results/mixed_precision_<name>.csv]

Speed. For each backbone (`--models`, at its native size or at each of
`--sizes`, batch `--batch-size`, global max head, as the paper profile
trains them) and for the demo's model (MobileNetV2 alpha 0.35, average
head, batch `--demo-batch`, at each of `--demo-sizes`), two FCNs are built
from the same initial weights: one under float32, one under `--policy`.
Both train (`train_on_batch`, compiled, no XLA, like the framework) on the
same batch of real photos: `--warmup` untimed steps each, then `--rounds`
alternating rounds of `--steps` steps. Prints per case the training
images/s of the best round and the median round (wall clock), images per
CPU second (process CPU time: the work done, hardly moved by other
processes), the mixed/float32 ratios of all three, the seconds per step,
and the GMAC achieved (3x the forward MACs per image, times the images)
as a percentage of the matmul ceiling of the same dtype, measured first in
the same run (`matmul_peak.measure_peak`): per CPU second against the
ceiling's GMAC per CPU second (steady under other processes' load), and
best wall round against the best wall ceiling.

`--models VGG16 --sizes 224 336 --demo-sizes` is the paper profile on
this CPU: its s/step column times the steps per epoch is the epoch time.

Accuracy. On a small content task (96 px crops of astronaut and brick vs
coffee and chelsea, from skimage), the demo's model trains `--accuracy-steps`
Adam steps at batch 32 from the same random initialisation under both
policies, per seed in `--accuracy-seeds`; prints the test accuracy of each.
bf16 must not lose accuracy: its accuracies should lie within the float32
ones' seed spread.
"""

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import skimage.data  # noqa: E402
from PIL import Image  # noqa: E402

import keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from matmul_peak import measure_peak  # noqa: E402
from matmul_peak import model_macs  # noqa: E402
from results_file import Provenance  # noqa: E402
from results_file import add_out_argument  # noqa: E402
from results_file import write_results  # noqa: E402

FAMILIES = {
    "VGG16": ("vgg16_fcn", "VGG16_fcn", 224),
    "VGG19": ("vgg19_fcn", "VGG19_fcn", 224),
    "InceptionV3": ("inception_v3_fcn", "InceptionV3_fcn", 299),
    "Xception": ("xception_fcn", "Xception_fcn", 299),
    "MobileNetV2": ("mobilenet_v2_fcn", "MobileNetV2_fcn", 224),
}
PHOTOS = ("coffee", "chelsea", "astronaut", "rocket", "immunohistochemistry")
DEMO_ALPHA = 0.35
PEAK_DTYPE = {"float32": "float32", "mixed_bfloat16": "bfloat16",
              "mixed_float16": "float16"}


def photo_batch(module, size, batch_size):
    images = [
        np.asarray(
            Image.fromarray(getattr(skimage.data, PHOTOS[i % len(PHOTOS)])())
            .convert("RGB")
            .resize((size, size))
        )
        for i in range(batch_size)
    ]
    x = module.preprocess_input(np.stack(images).astype("float32"))
    return x, np.arange(batch_size) % 2


def build(family, policy, size, pooling, alpha, optimizer=None):
    module, builder, _ = FAMILIES[family]
    keras.mixed_precision.set_global_policy(policy)
    try:
        kwargs = {"alpha": alpha} if family == "MobileNetV2" else {}
        model = getattr(getattr(keras.applications, module), builder)(
            weights=None,
            classes=2,
            input_shape=(size, size, 3),
            pooling=pooling,
            **kwargs,
        )
        model.compile(
            optimizer or keras.optimizers.SGD(0.01),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=False,
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model


def time_steps(model, x, y, steps):
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        loss = model.train_on_batch(x, y)
    loss = np.asarray(loss).ravel()[0]
    assert np.isfinite(loss), loss
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_case(family, size, batch_size, pooling, alpha, policy, args):
    """Rates of one case: {policy: {"best", "median", "cpu"}} images/s,
    and the forward MACs per image."""
    module = getattr(keras.applications, FAMILIES[family][0])
    x, y = photo_batch(module, size, batch_size)
    models = {p: build(family, p, size, pooling, alpha) for p in ("float32", policy)}
    models[policy].set_weights(models["float32"].get_weights())
    for model in models.values():
        for _ in range(args.warmup):  # Traces the step, warms the caches.
            model.train_on_batch(x, y)
    walls = {p: [] for p in models}
    cpu = {p: 0.0 for p in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            seconds, cpu_seconds = time_steps(model, x, y, args.steps)
            walls[name].append(seconds)
            cpu[name] += cpu_seconds
    images = batch_size * args.steps
    rates = {
        p: {
            "best": images / min(walls[p]),
            "median": images / statistics.median(walls[p]),
            "cpu": images * args.rounds / cpu[p],
        }
        for p in models
    }
    macs = model_macs(models["float32"])
    del models
    keras.backend.clear_session()
    return rates, macs


def content_task(size, count, seed):
    """`count` random crops of astronaut/brick (class 0) and coffee/chelsea
    (class 1), `size` px, flipped at random, as MobileNetV2 inputs."""
    rng = np.random.default_rng(seed)
    sources = []
    for label, names in enumerate((("astronaut", "brick"), ("coffee", "chelsea"))):
        for name in names:
            image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
            sources.append((np.asarray(image.resize((2 * size, 2 * size))), label))
    x = np.empty((count, size, size, 3), "float32")
    y = np.empty(count, "int64")
    for i in range(count):
        image, y[i] = sources[rng.integers(len(sources))]
        top, left = rng.integers(image.shape[0] - size, size=2)
        crop = image[top:top + size, left:left + size]
        x[i] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return keras.applications.mobilenet_v2.preprocess_input(x), y


def accuracy_check(policy, steps, seeds, size=96, batch_size=32):
    """Test accuracy per seed of the demo's model after `steps` Adam steps,
    float32 and `policy` from the same initial weights."""
    accuracies = {"float32": [], policy: []}
    for seed in seeds:
        x, y = content_task(size, steps * batch_size, seed)
        x_test, y_test = content_task(size, 256, seed + 1000)
        initial = None
        for name in accuracies:
            keras.utils.set_random_seed(seed)
            model = build(
                "MobileNetV2", name, size, "avg", DEMO_ALPHA,
                optimizer=keras.optimizers.Adam(1e-3),
            )
            # As the framework does from random initialisation.
            for layer in model.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.momentum = 0.9
            if initial is None:
                initial = model.get_weights()
            model.set_weights(initial)
            for step in range(steps):
                batch = slice(step * batch_size, (step + 1) * batch_size)
                model.train_on_batch(x[batch], y[batch])
            _, accuracy = model.evaluate(x_test, y_test, batch_size=64, verbose=0)
            accuracies[name].append(accuracy)
            keras.backend.clear_session()
    return accuracies


def _pct(rate, macs, peak):
    return 100.0 * 3 * macs * rate / 1e9 / peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", "--families", nargs="*", default=list(FAMILIES),
                        choices=list(FAMILIES))
    parser.add_argument("--sizes", nargs="*", type=int, default=None,
                        help="input sides for --models (default: each one's own)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--demo-sizes", nargs="*", type=int, default=[32, 48, 64, 96])
    parser.add_argument("--demo-batch", type=int, default=32)
    parser.add_argument("--policy", default="mixed_bfloat16",
                        choices=["mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--alpha", type=float, default=DEMO_ALPHA,
                        help="MobileNetV2 width in --models")
    parser.add_argument("--accuracy-steps", type=int, default=60,
                        help="0: no accuracy check")
    parser.add_argument("--accuracy-seeds", type=int, default=2)
    parser.add_argument("--peak-size", type=int, default=2048)
    add_out_argument(parser)
    args = parser.parse_args()
    for key in ("steps", "rounds", "batch_size", "demo_batch"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be >= 1. "
                         f"Received: {getattr(args, key)}")
    provenance = Provenance("mixed_precision.py")
    results = []
    load_before = os.getloadavg()[0]
    peak = measure_peak(args.peak_size, repeats=3, rounds=3,
                        dtypes=("float32", PEAK_DTYPE[args.policy]))
    print(
        f"Keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"{args.warmup} warm-up steps, then {args.rounds} alternating rounds "
        f"of {args.steps} steps; load average {load_before:.2f} at the start"
    )
    print(
        "matmul ceiling: "
        + ", ".join(
            f"{d} {r['best']:.1f} GMAC/s best, {r['per_cpu_s']:.1f} GMAC per CPU-s"
            for d, r in peak.items()
        )
    )
    cases = [
        (f, size, args.batch_size, "max", args.alpha)
        for f in args.models
        for size in (args.sizes or [FAMILIES[f][2]])
    ] + [
        ("MobileNetV2", size, args.demo_batch, "avg", DEMO_ALPHA)
        for size in args.demo_sizes
    ]
    mixed = args.policy
    print(
        "| model | size | batch | fp32 img/s best (median) | bf16 img/s best "
        "(median) | ratio best (median) | fp32 img/CPU-s | bf16 img/CPU-s "
        "| ratio CPU | fp32 s/step | fp32 % peak CPU (wall) "
        "| bf16 % peak CPU (wall) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for family, size, batch, pooling, alpha in cases:
        rates, macs = bench_case(family, size, batch, pooling, alpha, mixed, args)
        f, m = rates["float32"], rates[mixed]
        mixed_peak = peak[PEAK_DTYPE[mixed]]
        results.append({
            "part": "speed",
            "model": f"{family} {alpha}" if family == "MobileNetV2" else family,
            "size": size,
            "batch": batch,
            "head": pooling,
            "policy": mixed,
            "forward_macs": macs,
            "fp32_best": f["best"],
            "fp32_median": f["median"],
            "bf16_best": m["best"],
            "bf16_median": m["median"],
            "ratio_wall_best": m["best"] / f["best"],
            "ratio_wall_median": m["median"] / f["median"],
            "fp32_cpu": f["cpu"],
            "bf16_cpu": m["cpu"],
            "ratio_cpu": m["cpu"] / f["cpu"],
            "fp32_s_per_step": batch / f["best"],
            "fp32_pct_ceiling_cpu": _pct(f["cpu"], macs, peak["float32"]["per_cpu_s"]),
            "bf16_pct_ceiling_cpu": _pct(m["cpu"], macs, mixed_peak["per_cpu_s"]),
            "fp32_pct_ceiling_wall": _pct(f["best"], macs, peak["float32"]["best"]),
            "bf16_pct_ceiling_wall": _pct(m["best"], macs, mixed_peak["best"]),
        })
        label = f"{family} {alpha}" if family == "MobileNetV2" else family
        label += f" ({macs / 1e9:.3g} GMAC fwd)"
        print(
            f"| {label} | {size} | {batch} | {f['best']:.2f} ({f['median']:.2f}) "
            f"| {m['best']:.2f} ({m['median']:.2f}) "
            f"| {m['best'] / f['best']:.2f}x ({m['median'] / f['median']:.2f}x) "
            f"| {f['cpu']:.2f} | {m['cpu']:.2f} | {m['cpu'] / f['cpu']:.2f}x "
            f"| {batch / f['best']:.2f} "
            f"| {_pct(f['cpu'], macs, peak['float32']['per_cpu_s']):.0f} "
            f"({_pct(f['best'], macs, peak['float32']['best']):.0f}) "
            f"| {_pct(m['cpu'], macs, peak[PEAK_DTYPE[mixed]]['per_cpu_s']):.0f} "
            f"({_pct(m['best'], macs, peak[PEAK_DTYPE[mixed]]['best']):.0f}) |",
            flush=True,
        )
    if args.accuracy_steps:
        accuracies = accuracy_check(
            mixed, args.accuracy_steps, range(1, args.accuracy_seeds + 1)
        )
        print(
            f"accuracy after {args.accuracy_steps} Adam steps (MobileNetV2 "
            f"{DEMO_ALPHA}, 96 px, batch 32, 256 test crops), per seed: "
            + "; ".join(
                f"{p} " + " ".join(f"{a:.3f}" for a in accs)
                for p, accs in accuracies.items()
            )
        )
        for i, seed in enumerate(range(1, args.accuracy_seeds + 1)):
            results.append({
                "part": "accuracy",
                "policy": mixed,
                "accuracy_steps": args.accuracy_steps,
                "seed": seed,
                "fp32_accuracy": accuracies["float32"][i],
                "bf16_accuracy": accuracies[mixed][i],
            })
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    if args.out:
        write_results(args.out, results, provenance)


if __name__ == "__main__":
    main()
