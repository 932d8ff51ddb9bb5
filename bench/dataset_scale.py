"""Building a dataset of 1k, 10k and 100k files: the FCN loader against Keras'.

usage: .venv/bin/python bench/dataset_scale.py [--counts 1000,10000,100000]
                                               [--size 64] [--batch 32]
                                               [--rounds 1] [--keep]
                                               [--out docs/results/dataset_scale.csv]

Writes folders of small real JPEGs (crops of scikit-image's bundled photos,
48 to 96 px, two classes, 0.1% corrupt: half of them truncated, half not an
image at all) under $TMPDIR/fcn_dataset_scale/, then, for each folder, builds
`keras.utils.image_dataset_from_directory(crop_to_aspect_ratio=True)` and
`keras.utils.fcn_image_dataset_from_directory(resize_mode="crop")` (whose
build reads the header and tail of every file to leave the bad ones out),
each in a fresh
process, the two alternately, and reports:

- build seconds (index + bad-file scan + tf.data graph), and FCN / Keras,
  in wall-clock and in CPU time (the process and its scan workers);
- the build's memory: peak RSS growth over the process after its imports,
  and that per file (the scan's forked workers, gone when the build
  returns, are not counted);
- the build again in the same process (FCN: the scan's verdicts reused);
- images/s of one epoch at `--size` px. Keras' dataset fails at the first
  corrupt file, so its epoch runs with tf.data's `ignore_errors()` (which
  drops each batch that holds one); the first folder also records what a
  plain Keras epoch does.

`--keep` keeps the folders for the next run (which reuses them); otherwise
they are deleted at the end.
Goal: FCN build <= 2x Keras' at 100k, memory per file not growing with the
count.
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results_file import Provenance  # noqa: E402
from results_file import add_out_argument  # noqa: E402
from results_file import write_results  # noqa: E402

PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg",
          "motorcycle_left.png", "motorcycle_right.png", "retina.jpg",
          "rocket.jpg"]
CORRUPT_EVERY = 1000  # 0.1%
COMPLETE = ".complete.json"


def make_jpegs(directory, count, seed=0):
    """`count` small JPEGs in two class folders; every 1000th one corrupt.

    A folder holding a complete set of this `count` is reused as is.
    """
    marker = os.path.join(directory, COMPLETE)
    if os.path.isfile(marker):
        with open(marker) as f:
            if json.load(f) == {"count": count, "seed": seed}:
                return False
    import numpy as np
    import skimage.data
    from PIL import Image

    shutil.rmtree(directory, ignore_errors=True)
    rng = np.random.RandomState(seed)
    source = os.path.dirname(skimage.data.__file__)
    photos = []
    for name in PHOTOS:
        # Shrunk once, so that each file costs a small crop and resize.
        photo = Image.open(os.path.join(source, name)).convert("RGB")
        photo.thumbnail((320, 320), Image.Resampling.LANCZOS)
        photos.append(photo)
    for c in range(2):
        os.makedirs(os.path.join(directory, f"class_{c}"))
    for i in range(count):
        img = photos[i % len(photos)]
        width, height = img.size
        side = rng.randint(48, 97)
        aspect = rng.uniform(0.6, 1.8)  # width / height
        # A crop of 1 to 2 times the output size: real photo detail.
        crop_h = min(height, round(side * rng.uniform(1, 2)))
        crop_w = min(width, round(crop_h * aspect))
        left = rng.randint(0, width - crop_w + 1)
        top = rng.randint(0, height - crop_h + 1)
        img = img.crop((left, top, left + crop_w, top + crop_h))
        scale = side / max(img.size)
        img = img.resize((max(1, round(img.size[0] * scale)),
                          max(1, round(img.size[1] * scale))),
                         Image.Resampling.BILINEAR)
        path = os.path.join(directory, f"class_{i % 2}", f"img_{i:06d}.jpg")
        img.save(path, quality=90)
        if i % CORRUPT_EVERY == CORRUPT_EVERY // 2:
            if (i // CORRUPT_EVERY) % 2 == 0:
                with open(path, "rb") as f:
                    data = f.read()
                with open(path, "wb") as f:  # Truncated mid-stream.
                    f.write(data[: len(data) // 2])
            else:
                with open(path, "w") as f:  # Not an image.
                    f.write("<html>404 Not Found</html>\n")
    with open(marker, "w") as f:
        json.dump({"count": count, "seed": seed}, f)
    return True


def _rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _cpu_s():
    """CPU seconds of this process and of its finished child processes (the
    FCN scan's forked workers)."""
    usage = [resource.getrusage(who) for who in
             (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def build(loader, directory, size, batch):
    import keras

    if loader == "keras":
        return keras.utils.image_dataset_from_directory(
            directory, image_size=(size, size), batch_size=batch,
            crop_to_aspect_ratio=True, seed=0, verbose=False,
        )
    return keras.utils.fcn_image_dataset_from_directory(
        directory, image_size=size, batch_size=batch, resize_mode="crop",
        seed=0, on_bad_image="skip", verbose=False,
    )


def child(loader, directory, *, size, batch, plain_epoch):
    """Runs in a fresh process: builds one dataset, times one epoch, prints
    a JSON line."""
    import warnings

    import keras  # noqa: F401 (imported before the timing starts)
    import tensorflow as tf

    # Imports and TF's own start-up done: what follows is the build's.
    tf.constant(0)
    before = _rss_mb()
    started, cpu_started = time.perf_counter(), _cpu_s()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = build(loader, directory, size, batch)
    build_s = time.perf_counter() - started
    build_cpu_s = _cpu_s() - cpu_started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    skipped = sum("Skipped" in str(w.message) for w in caught)
    # The same folder again in this process (the framework builds train,
    # validation and test from one folder for every experiment).
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build(loader, directory, size, batch)
    rebuild_s = time.perf_counter() - started
    report = {
        "loader": loader,
        "files": len(ds.file_paths),
        "skipped": skipped,
        "build_s": build_s,
        "build_cpu_s": build_cpu_s,
        "rebuild_s": rebuild_s,
        "rss_before_mb": before,
        "build_peak_growth_mb": peak - before,
    }
    if plain_epoch:
        try:
            for _ in ds:
                pass
            report["plain_epoch"] = "ran to the end"
        except tf.errors.OpError as error:
            first_line = re.sub(r"\{\{.*?\}\}\s*", "",
                                error.message.splitlines()[0])
            report["plain_epoch"] = (
                f"stopped: {type(error).__name__}: {first_line[:160]}"
            )
    epoch_ds = ds.ignore_errors() if loader == "keras" else ds
    images = 0
    started = time.perf_counter()
    for images_batch, _ in epoch_ds:
        images += int(images_batch.shape[0])
    epoch_s = time.perf_counter() - started
    report.update(epoch_images=images, epoch_s=epoch_s,
                  images_per_s=images / epoch_s)
    print(json.dumps(report))


def run_child(loader, directory, *, size, batch, plain_epoch):
    command = [sys.executable, os.path.abspath(__file__), "--child", loader,
               directory, "--size", str(size), "--batch", str(batch)]
    if plain_epoch:
        command.append("--plain-epoch")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"{loader} on {directory} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(rows):
    head = ("| files | Keras build s | FCN build s | FCN / Keras | "
            "FCN / Keras, CPU | Keras rebuild s | FCN rebuild s | Keras peak MB (KB/file) | "
            "FCN peak MB (KB/file) | Keras img/s | FCN img/s | "
            "FCN / Keras img/s | bad files skipped |")
    print(head)
    print("|" + "---:|" * (head.count("|") - 1))
    for count, k, f in rows:
        per = 1024 / count
        print(
            f"| {count:,} | {k['build_s']:.2f} | {f['build_s']:.2f} | "
            f"{f['build_s'] / k['build_s']:.2f}x | "
            f"{f['build_cpu_s'] / k['build_cpu_s']:.2f}x | "
            f"{k['rebuild_s']:.2f} | {f['rebuild_s']:.2f} | "
            f"{k['build_peak_growth_mb']:.1f} "
            f"({k['build_peak_growth_mb'] * per:.2f}) | "
            f"{f['build_peak_growth_mb']:.1f} "
            f"({f['build_peak_growth_mb'] * per:.2f}) | "
            f"{k['images_per_s']:.0f} | {f['images_per_s']:.0f} | "
            f"{f['images_per_s'] / k['images_per_s']:.2f}x | {f['skipped']} |"
        )


def result_rows(rows):
    """The results file's rows: the figures `print_table` shows."""
    out = []
    for count, k, f in rows:
        per = 1024 / count
        out.append({
            "files": count,
            "keras_build_s": k["build_s"],
            "fcn_build_s": f["build_s"],
            "build_ratio": f["build_s"] / k["build_s"],
            "build_ratio_cpu": f["build_cpu_s"] / k["build_cpu_s"],
            "keras_rebuild_s": k["rebuild_s"],
            "fcn_rebuild_s": f["rebuild_s"],
            "keras_peak_mb": k["build_peak_growth_mb"],
            "keras_kb_per_file": k["build_peak_growth_mb"] * per,
            "fcn_peak_mb": f["build_peak_growth_mb"],
            "fcn_kb_per_file": f["build_peak_growth_mb"] * per,
            "keras_images_per_s": k["images_per_s"],
            "fcn_images_per_s": f["images_per_s"],
            "epoch_ratio": f["images_per_s"] / k["images_per_s"],
            "bad_skipped": f["skipped"],
        })
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="1000,10000,100000")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1,
                        help="builds of each loader per folder; the fastest "
                        "build and epoch are kept")
    parser.add_argument("--keep", action="store_true",
                        help="keep the folders for the next run")
    parser.add_argument("--child", nargs=2, metavar=("LOADER", "DIR"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--plain-epoch", action="store_true",
                        help=argparse.SUPPRESS)
    add_out_argument(parser)
    args = parser.parse_args()
    provenance = Provenance("dataset_scale.py")
    if args.child:
        child(*args.child, size=args.size, batch=args.batch,
              plain_epoch=args.plain_epoch)
        return
    counts = [int(c) for c in args.counts.split(",")]
    root = os.path.join(tempfile.gettempdir(), "fcn_dataset_scale")
    rows = []
    try:
        for n, count in enumerate(counts):
            directory = os.path.join(root, f"jpegs_{count}")
            started = time.perf_counter()
            made = make_jpegs(directory, count)
            print(f"{count:,} files in {directory}: "
                  f"{'written' if made else 'reused'} in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            best = {}
            for r in range(args.rounds):
                # Alternated, so that load on the machine hits both alike.
                for loader in ("keras", "fcn"):
                    result = run_child(loader, directory, size=args.size,
                                       batch=args.batch,
                                       plain_epoch=(n == 0 and r == 0
                                                    and loader == "keras"))
                    print("  " + json.dumps(result), flush=True)
                    kept = best.setdefault(loader, result)
                    for key in ("build_s", "build_cpu_s", "rebuild_s",
                                "epoch_s"):
                        kept[key] = min(kept[key], result[key])
                    kept["build_peak_growth_mb"] = max(
                        kept["build_peak_growth_mb"],
                        result["build_peak_growth_mb"])
                    kept["images_per_s"] = kept["epoch_images"] / kept["epoch_s"]
            rows.append((count, best["keras"], best["fcn"]))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print_table(rows)
    if args.out:
        write_results(args.out, result_rows(rows), provenance)


if __name__ == "__main__":
    main()
