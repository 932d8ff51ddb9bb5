"""Images/s of the FCN image loaders against Keras' own, side by side.

usage: .venv/bin/python bench/bench_loaders.py [--images 400] [--rounds 5]
                                                [--size 224] [--batch 32]
                                                [--out docs/results/bench_loaders.csv]

Writes a folder of real JPEGs (scikit-image's bundled photos, cropped to
aspect ratios 0.6 to 1.8 and scaled to a longer side of 320 to 800 px) under
$TMPDIR/fcn_bench/, then times one epoch of every loader per round, the loaders
interleaved so that load on the machine hits them alike; the table shows the
best images/s and the median CPU time per image (all threads of the process;
steadier than wall time on a shared machine), each also as a ratio to Keras'
`image_dataset_from_directory(crop_to_aspect_ratio=True)`. The loaders are
timed again in a process using TF's BFC allocator on the CPU. Last, MobileNetV2
training steps on in-memory batches, to compare the loaders with what
training consumes.
Goals: crop and pad >= 1.0x Keras, multicrop >= 0.8x our crop.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import skimage.data  # noqa: E402
from PIL import Image  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_file import Provenance  # noqa: E402
from results_file import add_out_argument  # noqa: E402
from results_file import write_results  # noqa: E402

PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg",
          "motorcycle_left.png", "motorcycle_right.png", "retina.jpg", "rocket.jpg"]


def make_jpegs(directory, count, seed=0):
    """`count` JPEGs in two class folders, from real photos at varied sizes."""
    shutil.rmtree(directory, ignore_errors=True)
    rng = np.random.RandomState(seed)
    source = os.path.dirname(skimage.data.__file__)
    photos = [Image.open(os.path.join(source, p)).convert("RGB") for p in PHOTOS]
    for c in range(2):
        os.makedirs(os.path.join(directory, f"class_{c}"))
    for i in range(count):
        img = photos[i % len(photos)]
        width, height = img.size
        aspect = rng.uniform(0.6, 1.8)  # width / height
        crop_w = min(width, round(height * aspect))
        crop_h = min(height, round(crop_w / aspect))
        left = rng.randint(0, width - crop_w + 1)
        top = rng.randint(0, height - crop_h + 1)
        img = img.crop((left, top, left + crop_w, top + crop_h))
        scale = rng.randint(320, 801) / max(img.size)
        img = img.resize((round(img.size[0] * scale), round(img.size[1] * scale)),
                         Image.BICUBIC)
        img.save(os.path.join(directory, f"class_{i % 2}", f"{i:05d}.jpg"), quality=90)


def timed(epoch):
    """(wall, CPU, system CPU) seconds of `epoch()`, CPU over all threads."""
    wall, start = time.perf_counter(), os.times()
    epoch()
    end = os.times()
    system = end.system - start.system
    return time.perf_counter() - wall, end.user - start.user + system, system


def consume(batches):
    for _ in batches:  # each batch is dropped before the next is made
        pass


def epoch_seconds(dataset):
    return timed(lambda: consume(dataset))


def legacy_epoch_seconds(iterator):
    return timed(lambda: consume(iterator[i] for i in range(len(iterator))))


def loaders(directory, size, batch):
    """name -> (make, run): `make()` builds the loader, `run(loader)` times an epoch."""
    def keras_ds(**kwargs):
        return lambda: keras.utils.image_dataset_from_directory(
            directory, image_size=(size, size), batch_size=batch, seed=0,
            verbose=False, **kwargs)

    def fcn_ds(mode):
        return lambda: keras.utils.fcn_image_dataset_from_directory(
            directory, image_size=size, resize_mode=mode, batch_size=batch, seed=0,
            verbose=False)

    def legacy():
        generator = tf.keras.preprocessing.image.ImageDataGenerator()
        return generator.flow_from_directory(
            directory, target_size=(size, size), batch_size=batch, seed=0)

    # name -> (make, time one epoch, load_img type the legacy iterator reads)
    return {
        "keras crop_to_aspect_ratio": (keras_ds(crop_to_aspect_ratio=True), epoch_seconds, 0),
        "keras pad_to_aspect_ratio": (keras_ds(pad_to_aspect_ratio=True), epoch_seconds, 0),
        "keras stretch": (keras_ds(), epoch_seconds, 0),
        "legacy flow_from_directory": (legacy, legacy_epoch_seconds, 0),
        "legacy flow_from_directory, crop (mode 3)": (legacy, legacy_epoch_seconds, 3),
        "legacy flow_from_directory, multicrop (mode 4)": (legacy, legacy_epoch_seconds, 4),
        "fcn stretch": (fcn_ds("stretch"), epoch_seconds, 0),
        "fcn crop": (fcn_ds("crop"), epoch_seconds, 0),
        "fcn pad": (fcn_ds("pad"), epoch_seconds, 0),
        "fcn multicrop": (fcn_ds("multicrop"), epoch_seconds, 0),
        "fcn native": (fcn_ds("native"), epoch_seconds, 0),
    }


def bench_loaders(directory, *, count, size, batch, rounds):
    candidates = loaders(directory, size, batch)
    built, build_s = {}, {}
    for name, (make, run, load_img_type) in candidates.items():
        start = time.perf_counter()
        built[name] = make()
        build_s[name] = time.perf_counter() - start
        keras.utils.set_load_img_type(load_img_type)
        run(built[name])  # warm-up: tracing, file cache
    times = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, (_, run, load_img_type) in candidates.items():
            keras.utils.set_load_img_type(load_img_type)
            times[name].append(run(built[name]))
    keras.utils.set_load_img_type(0)
    # Other jobs on the machine only ever slow a loader down: the best wall
    # time is the least disturbed; CPU time per image varies far less.
    return {
        name: (count / min(w for w, _, _ in t),
               1000 * statistics.median(c for _, c, _ in t) / count,
               1000 * statistics.median(s for _, _, s in t) / count,
               build_s[name])
        for name, t in times.items()
    }


def bench_training(size, batch, alphas=(1.0, 0.35), steps=5):
    """Images/s of MobileNetV2 training steps on in-memory batches."""
    results = {}
    x = np.random.RandomState(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    y = np.arange(batch) % 2
    for alpha in alphas:
        model = keras.applications.MobileNetV2(
            input_shape=(size, size, 3), alpha=alpha, weights=None, classes=2)
        model.compile("sgd", "sparse_categorical_crossentropy")
        model.train_on_batch(x, y)  # warm-up: tracing
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        results[f"MobileNetV2 alpha={alpha} training step"] = (
            steps * batch / (time.perf_counter() - start))
    return results


def print_table(results):
    ref_rate, ref_cpu, _, _ = results["keras crop_to_aspect_ratio"]
    print("| Loader | images/s (best) | vs Keras crop | CPU ms/image (median) "
          "| of which system | vs Keras crop (CPU) | build (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (rate, cpu, system, build) in results.items():
        print(f"| {name} | {rate:.0f} | {rate / ref_rate:.2f}x | {cpu:.2f} | "
              f"{system:.2f} | {ref_cpu / cpu:.2f}x | {build:.2f} |")
    crop_rate, crop_cpu, _, _ = results["fcn crop"]
    multi_rate, multi_cpu, _, _ = results["fcn multicrop"]
    print(f"\nfcn multicrop / fcn crop: {multi_rate / crop_rate:.2f}x images/s, "
          f"{crop_cpu / multi_cpu:.2f}x by CPU time (goal >= 0.8x)")


def result_rows(results, allocator):
    """The results file's rows of one allocator's loader table."""
    _, ref_cpu, _, _ = results["keras crop_to_aspect_ratio"]
    return [
        {
            "part": "loaders",
            "allocator": allocator,
            "loader": name,
            "images_per_s": rate,
            "cpu_ms_per_image": cpu,
            "system_ms_per_image": system,
            "ratio_cpu": ref_cpu / cpu,
            "build_s": build,
        }
        for name, (rate, cpu, system, build) in results.items()
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--no-training", action="store_true")
    parser.add_argument("--loaders-json", help=argparse.SUPPRESS)  # child run
    add_out_argument(parser)
    args = parser.parse_args()
    provenance = Provenance("bench_loaders.py")

    directory = os.path.join(tempfile.gettempdir(), "fcn_bench", "jpegs")
    if args.loaders_json:
        results = bench_loaders(directory, count=args.images, size=args.size,
                                batch=args.batch, rounds=args.rounds)
        with open(args.loaders_json, "w") as f:
            json.dump(results, f)
        return
    make_jpegs(directory, args.images)
    print(f"{args.images} JPEGs in {directory}; S={args.size}, batch {args.batch}, "
          f"{args.rounds} interleaved epochs per loader, {os.cpu_count()} CPU cores\n")
    results = bench_loaders(directory, count=args.images, size=args.size,
                            batch=args.batch, rounds=args.rounds)
    print_table(results)
    rows = result_rows(results, "default")

    # TF's default CPU allocator gets every tensor over 32 MB (a float32
    # multicrop batch of 32 at 224 is 58 MB) from a fresh mmap, and the
    # kernel zero-fills its pages; TF's BFC allocator reuses memory.
    print("\nThe same, in a fresh process with TF_CPU_ALLOCATOR_USE_BFC=true:\n")
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [sys.executable, __file__, "--loaders-json", out.name,
             *[f"--{k}={getattr(args, k)}" for k in ("images", "rounds", "size", "batch")]],
            env={**os.environ, "TF_CPU_ALLOCATOR_USE_BFC": "true"}, check=True,
            stdout=subprocess.DEVNULL)
        bfc = json.load(open(out.name))
        print_table(bfc)
        rows += result_rows(bfc, "bfc")

    if not args.no_training:
        crop = results["fcn crop"][0]
        print("\n| Training (in-memory batches) | images/s | fcn crop loader / training |")
        print("|---|---:|---:|")
        for name, rate in bench_training(args.size, args.batch).items():
            print(f"| {name} | {rate:.1f} | {crop / rate:.1f}x |")
            rows.append({
                "part": "training",
                "model": name,
                "training_images_per_s": rate,
                "loader_over_training": crop / rate,
            })
    if args.out:
        write_results(args.out, rows, provenance)


if __name__ == "__main__":
    main()
