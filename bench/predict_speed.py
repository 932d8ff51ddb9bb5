"""Speed of `predict`: native-size buckets vs a naive loop vs squashing.

Scores one folder of mixed-size real photos (scikit-image's, cut at random
sizes and aspect ratios) three ways, side by side in one process:

  (a) naive: each image decoded and resized to its native size (shorter
      side S, longer side rounded to the stride), then one `model.predict`
      per image;
  (b) `fcn_experiments.predict.images.predict_images`: the same native sizes,
      batched by shape, one traced function;
  (c) the same, with every image squashed to S x S (one bucket).

Each way includes decoding and its own graph tracing (as a fresh process
would), and runs `--rounds` times in rotating order (a, b, c; b, c, a; ...),
so that load from other processes spreads over all three. Prints images/s
and pixels/s per way and round, by wall time and by this process's CPU time
(steadier on a shared machine), and the ratios (b)/(a) in images/s and
(b)/(c) in pixels/s, then their medians over the rounds.

    .venv/bin/python bench/predict_speed.py [--images 48] [--size 128]
                                            [--out docs/results/predict_speed.csv]
"""

import argparse
import dataclasses
import os
import sys
import tempfile
import time

import numpy as np
import skimage.data
from PIL import Image

import keras
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from keras.src.utils import fcn_image_dataset  # noqa: E402
from keras.src.utils import fcn_image_files  # noqa: E402

from bench.results_file import Provenance  # noqa: E402
from bench.results_file import add_out_argument  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from fcn_experiments.predict.images import predict_images  # noqa: E402
from fcn_experiments.predict.model_source import STRIDE  # noqa: E402
from fcn_experiments.predict.model_source import ModelSource  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "retina",
          "hubble_deep_field", "immunohistochemistry", "cat")


def write_folder(folder, count, seed=0):
    """`count` JPEGs cut from real photos, 120-480 px, aspect 1:2 to 2:1."""
    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(getattr(skimage.data, n)()).convert("RGB")
               for n in PHOTOS]
    paths = []
    for i in range(count):
        img = sources[i % len(sources)]
        aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
        long_side = int(rng.integers(120, 481))
        size = ((long_side, max(1, round(long_side / aspect))) if aspect >= 1
                else (max(1, round(long_side * aspect)), long_side))
        path = os.path.join(folder, f"photo_{i:03d}.jpg")
        img.resize(size, Image.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def naive(source, paths, size):
    """One `model.predict` per image, at its native size."""
    source.model.predict_function = None  # Traces afresh, as a new process.
    loader = fcn_image_dataset.ImageLoader(
        "native", (size, size), "rgb", "bilinear", STRIDE, paths,
        [fcn_image_files.inspect_image_file(p) for p in paths])
    pixels = 0
    for path, shape in zip(paths, loader.records["native_size"]):
        img = np.asarray(fcn_image_files.open_image(path), dtype="float32")
        x = tf.image.resize(img, shape).numpy()[None]
        source.model.predict(source.preprocess(x), verbose=0)
        pixels += int(shape[0]) * int(shape[1])
    return pixels


def bucketed(source, paths, size, batch_size):
    scores, stats = predict_images(source, paths, size=size,
                                   batch_size=batch_size, verbose=0)
    assert stats["failed"] == 0
    return stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--alpha", type=float, default=0.35)
    add_out_argument(parser)
    args = parser.parse_args()
    provenance = Provenance("predict_speed.py")
    rows = []
    keras.utils.set_random_seed(0)
    model = keras.applications.mobilenet_v2_fcn.MobileNetV2_fcn(
        weights=None, alpha=args.alpha, classes=2)
    source = ModelSource(model, "mobilenet_v2", args.size, ["a", "b"], "bench")
    squashed = dataclasses.replace(source, fixed_size=args.size)
    with tempfile.TemporaryDirectory() as folder:
        paths = write_folder(folder, args.images)
        loader = fcn_image_dataset.ImageLoader(
            "native", (args.size,) * 2, "rgb", "bilinear", STRIDE, paths,
            [fcn_image_files.inspect_image_file(p) for p in paths])
        native_pixels = int(np.prod(loader.records["native_size"], axis=1).sum())
        shapes = len(np.unique(loader.records["native_size"], axis=0))
        print(f"{args.images} photos, {shapes} native shapes at S={args.size}, "
              f"MobileNetV2_fcn alpha={args.alpha}, batch {args.batch_size}, "
              f"{os.cpu_count()} CPUs, TF {tf.__version__}")
        ways = {
            "a": lambda: naive(source, paths, args.size),
            "b": lambda: bucketed(source, paths, args.size, args.batch_size),
            "c": lambda: bucketed(squashed, paths, args.size, args.batch_size),
        }
        pixels = {"a": native_pixels, "b": native_pixels,
                  "c": args.images * args.size * args.size}
        order = ["a", "b", "c"]
        ratios = {"wall": [], "cpu": []}
        for round_ in range(args.rounds):
            seconds = {"wall": {}, "cpu": {}}
            for way in order[round_ % 3:] + order[:round_ % 3]:
                wall, cpu = time.perf_counter(), time.process_time()
                ways[way]()
                seconds["wall"][way] = time.perf_counter() - wall
                seconds["cpu"][way] = time.process_time() - cpu
            for clock in ("wall", "cpu"):
                s = seconds[clock]
                rate = {w: args.images / s[w] for w in order}
                pixel_rate = {w: pixels[w] / s[w] for w in order}
                for way in order:
                    print(f"round {round_ + 1} {clock:4} ({way}) {s[way]:7.1f} s "
                          f"{rate[way]:7.2f} images/s "
                          f"{pixel_rate[way] / 1e6:6.3f} Mpixel/s")
                ratio = (rate["b"] / rate["a"], pixel_rate["b"] / pixel_rate["c"])
                ratios[clock].append(ratio)
                rows.append({
                    "round": round_ + 1,
                    "clock": "CPU" if clock == "cpu" else clock,
                    "naive_s": s["a"],
                    "buckets_s": s["b"],
                    "squashed_s": s["c"],
                    "ratio_images_b_a": ratio[0],
                    "ratio_pixels_b_c": ratio[1],
                })
                print(f"round {round_ + 1} {clock:4}: (b)/(a) images/s = "
                      f"{ratio[0]:.2f}x, (b)/(c) pixels/s = {ratio[1]:.2f}x")
        for clock in ("wall", "cpu"):
            a, c = np.median(np.array(ratios[clock]), axis=0)
            print(f"median over {args.rounds} rounds, {clock} time: (b)/(a) "
                  f"images/s = {a:.2f}x (goal >= 3), (b)/(c) pixels/s = "
                  f"{c:.2f}x (goal >= 0.8)")
    if args.out:
        write_results(args.out, rows, provenance)


if __name__ == "__main__":
    main()
