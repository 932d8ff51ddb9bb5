"""Training speed of the FCNs in float32 and mixed precision, side by side.

usage: python bench/mixed_precision.py [--families VGG16 ...]
           [--policy mixed_bfloat16] [--batch-size 4] [--steps 2] [--rounds 2]

For each family at its native size (224, InceptionV3 and Xception 299;
MobileNetV2 with the framework's alpha=0.35 unless `--alpha`), two FCNs
(`*_fcn(weights=None, classes=2)`, global max head, as the experiments
train them) are built: one under the float32 policy, one under `--policy`
(default `mixed_bfloat16`, the CPU's half type). Both train with SGD on
the same batch of real photos (`train_on_batch`, compiled, no XLA, like
the framework), in alternating rounds of `--steps` steps, after one
untimed warm-up step each. Prints per model the training images/s of the
fastest round (wall clock: the least disturbed on a shared machine) and
per CPU second (process CPU time: the work done, hardly affected by other
processes), and the mixed / float32 ratios of both, measured in the same
run. A ratio below 1 means mixed precision is slower.
"""

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import skimage.data  # noqa: E402
from PIL import Image  # noqa: E402

import keras  # noqa: E402

FAMILIES = {
    "VGG16": (keras.applications.vgg16_fcn, "VGG16_fcn", 224),
    "VGG19": (keras.applications.vgg19_fcn, "VGG19_fcn", 224),
    "InceptionV3": (keras.applications.inception_v3_fcn, "InceptionV3_fcn", 299),
    "Xception": (keras.applications.xception_fcn, "Xception_fcn", 299),
    "MobileNetV2": (keras.applications.mobilenet_v2_fcn, "MobileNetV2_fcn", 224),
}
PHOTOS = ("coffee", "chelsea", "astronaut", "rocket", "immunohistochemistry")


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


def build(family, policy, alpha):
    module, builder, _ = FAMILIES[family]
    keras.mixed_precision.set_global_policy(policy)
    try:
        kwargs = {"alpha": alpha} if family == "MobileNetV2" else {}
        model = getattr(module, builder)(weights=None, classes=2, **kwargs)
        model.compile(
            keras.optimizers.SGD(0.01),
            "sparse_categorical_crossentropy",
            jit_compile=False,
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model


def time_steps(model, x, y, steps):
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        loss = model.train_on_batch(x, y)
    assert np.isfinite(loss), loss
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_family(family, policy, args):
    module, _, size = FAMILIES[family]
    x, y = photo_batch(module, size, args.batch_size)
    models = {p: build(family, p, args.alpha) for p in ("float32", policy)}
    for model in models.values():
        model.train_on_batch(x, y)  # Warm-up: traces the step.
    best = {p: float("inf") for p in models}
    cpu = {p: 0.0 for p in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            seconds, cpu_seconds = time_steps(model, x, y, args.steps)
            best[name] = min(best[name], seconds)
            cpu[name] += cpu_seconds
    images = args.batch_size * args.steps
    wall_rate = {p: images / best[p] for p in models}
    cpu_rate = {p: images * args.rounds / cpu[p] for p in models}
    del models
    keras.backend.clear_session()
    return size, wall_rate, cpu_rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument(
        "--policy", default="mixed_bfloat16", choices=["mixed_bfloat16", "mixed_float16"]
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--alpha", type=float, default=0.35)
    args = parser.parse_args()
    print(
        f"Keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"batch {args.batch_size}, {args.rounds} rounds of {args.steps} steps; "
        f"training images/s, float32 vs {args.policy}"
    )
    print(
        "| model | size | fp32 img/s (wall) | mixed img/s (wall) | ratio (wall) "
        "| fp32 img/CPU-s | mixed img/CPU-s | ratio (CPU) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for family in args.families:
        size, wall, cpu = bench_family(family, args.policy, args)
        label = f"{family} (alpha={args.alpha})" if family == "MobileNetV2" else family
        print(
            f"| {label} | {size} | {wall['float32']:.2f} | {wall[args.policy]:.2f} "
            f"| {wall[args.policy] / wall['float32']:.2f}x | {cpu['float32']:.2f} "
            f"| {cpu[args.policy]:.2f} | {cpu[args.policy] / cpu['float32']:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
