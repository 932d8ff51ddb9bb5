"""The bundled two-class image-forensics dataset, built offline from real photos.

With no dataset given, the experiments train on crops of the public-domain
and CC0 photos that scikit-image ships in `skimage/data`. Each crop is saved
twice: as it is (`pristine`) and upscaled (`degraded`): shrunk by a factor
of 3 to 4 (bilinear), then enlarged back to its own size (bicubic), at the
crop's full resolution. Detecting such resampling is a classic forensic
task. Its trace is the missing fine detail, which survives only at (or
near) the image's own resolution: a network that sees the crop squashed to
a small input sees two nearly identical images, a fully convolutional
network fed a larger input can tell them apart.

No leakage between splits: every photo is cut into a grid of disjoint cells,
each cell belongs to exactly one split (train, validation or test), and every
crop lies inside one cell. So no pixel of a test crop is ever seen, in either
class, during training or model selection. Both versions of a crop stay in the
same split, which also makes the content of the two classes identical: only
the degradation tells them apart. Crops of one cell overlap, so the test
images are correlated; the test accuracy's interval assumes they are not.

Every image also has a score, for regression: the base-2 logarithm of
its upscaling factor, 0 for a pristine image, 1 for 2x, up to 3 for 8x
(`SCORE_RANGE`), listed in each split's `scores.csv` (`filename,score`, the
filename relative to the split folder, as
`keras.utils.fcn_image_dataset_from_table` reads it). The default factors
(3 to 4) suit the two-class task; a regression build draws them
log-uniformly from `REGRESSION_RESAMPLE_RANGE` instead, so that the scores
cover the range evenly, and cuts its own crops (its own cached folder):
none smaller than the largest input of the quick profile, and none from
cells without fine detail to lose (`REGRESSION_MIN_SIDE`,
`REGRESSION_MIN_CHANGE`).

The build is deterministic (one seed, fixed file list, lossless PNG output),
written to a temporary folder and renamed into place when complete, so a
killed build never leaves a half dataset behind.
"""

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
from importlib import util as importlib_util

import numpy as np
from PIL import Image
from PIL import ImageFilter

from fcn_experiments.errors import UsageError

CLASS_NAMES = ("degraded", "pristine")
SPLITS = ("train", "validation", "test")
# 6: scores are log2 of the upscaling factor, and a regression build draws
# its factors log-uniformly from 2-8 (5: factors as scores, 1.5-4 drawn
# uniformly; 4: no scores). The two-class images are those of 4.
DATASET_VERSION = 6

# Photos from skimage/data with the licence their docstring in
# skimage/data/_fetchers.py states. Photos without a clear free licence
# (motorcycle_left.png: Middlebury, none stated) are left out, and so is
# rocket.jpg: it is test_image.jpg, which the score-map figure shows, so it
# stays unseen by training.
SOURCES = (
    ("astronaut.png", "Eileen Collins, NASA; public domain"),
    ("chelsea.png", "Chelsea the cat, Stefan van der Walt; CC0"),
    ("coffee.png", "Coffee cup, Rachel Michetti; CC0"),
    ("hubble_deep_field.jpg", "Hubble eXtreme Deep Field, NASA; public domain"),
    ("retina.jpg", "Human retina, Mikael Haggstrom (Wikimedia); CC0"),
    ("camera.png", "Camera man, Lav Varshney; CC0"),
    ("brick.png", "Brick wall, CC0Textures; CC0"),
    ("grass.png", "Grass, linolafett (DeviantArt); CC0"),
    ("gravel.png", "Gravel, CC0Textures; CC0"),
)

# Cells are dealt to the splits in this order, continuing from photo to photo,
# so that even a photo with two cells feeds more than one split (60/20/20).
SPLIT_PATTERN = ("train", "validation", "train", "test", "train")

MAX_CELLS_PER_PHOTO = 24

# What `degrade` can apply, and what the dataset applies (one kind: a
# network trained from random initialisation on the 2-core CPU learned one
# strong kind in a few hundred steps, and not a mix of three subtle ones).
KINDS = ("blur", "noise", "jpeg", "resample")
DEGRADATIONS = ("resample",)
# Strength ranges. Blur: Gaussian radius in px; noise: std in 8-bit levels;
# jpeg: quality; resample: the shrink factor.
STRENGTHS = {
    "blur": (0.9, 1.5),
    "noise": (5.0, 10.0),
    "jpeg": (15, 30),
    "resample": (3.0, 4.0),
}
MIN_MEAN_CHANGE = 0.5

# The largest upscaling factor a build may apply.
MAX_FACTOR = 8.0
# The score of an image: log2 of its upscaling factor, 0 for a pristine
# image. On a log scale each doubling of the factor is one unit: the
# network's error weighs 2x against 4x as 4x against 8x.
SCORE_RANGE = (0.0, float(np.log2(MAX_FACTOR)))
PRISTINE_SCORE = 0.0
# The factors a regression build draws, log-uniformly (`resample_range`).
# From 2: a factor below 2 leaves the crops at 64 px (the quick profile's
# 2x) practically unchanged, so that a third of a 1.25-8 build looked
# pristine there. Up to 8: the crops lose most of their detail, which the
# squashed 32 px input of #1 could partly see.
REGRESSION_RESAMPLE_RANGE = (2.0, 8.0)
# A regression build's crops are at least the quick profile's largest input
# (#5: 3 x 32 px) on each side and fill at least 3/4 of their cell, so no
# experiment enlarges a crop. Enlarging blurs a pristine crop as an
# upscaling would: with the two-class build's crops (53-96 px), a hand-made
# sharpness feature ranked the test images at SRCC 0.72 at 96 px against
# 0.84 at their own size. On the regression build (with
# `REGRESSION_MIN_CHANGE`) it gives 0.70, 0.81, 0.835 and 0.87 at 32, 48,
# 64 and 96 px: rising with the input size, as the FCN argument says.
REGRESSION_MIN_SIDE = 96
REGRESSION_MIN_FRACTION = 0.75
# A regression build leaves out cells that the smallest upscaling of its
# range changes by less than this many 8-bit levels on average: they have
# no fine detail to lose, so no image of them tells its factor (all of
# retina.jpg, smooth parts of camera and chelsea).
REGRESSION_MIN_CHANGE = 1.0
SCORES_FILE = "scores.csv"


def skimage_data_dir():
    """The folder holding scikit-image's bundled photos."""
    spec = importlib_util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            "The bundled dataset is built from scikit-image's sample photos, "
            "but scikit-image is not installed. Install the package's `data` "
            "extra (pip install \"fcn-in-keras[data]\", or pip install "
            "scikit-image), or pass your own train/test folders."
        )
    return os.path.join(spec.submodule_search_locations[0], "data")


def load_rgb(filename):
    """The pixels of one of scikit-image's bundled photos, as RGB uint8."""
    path = os.path.join(skimage_data_dir(), filename)
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _grid(height, width, cell_size):
    """Disjoint cells `(x0, y0, x1, y1)` tiling an image.

    Cells are about `cell_size` pixels, larger on big photos so that no photo
    has more than `MAX_CELLS_PER_PHOTO` cells and dominates the dataset.
    """
    cell_size = max(cell_size, (height * width / MAX_CELLS_PER_PHOTO) ** 0.5)
    rows = max(1, round(height / cell_size))
    cols = max(1, round(width / cell_size))
    ys = np.linspace(0, height, rows + 1).astype(int)
    xs = np.linspace(0, width, cols + 1).astype(int)
    return [
        (int(xs[c]), int(ys[r]), int(xs[c + 1]), int(ys[r + 1]))
        for r in range(rows)
        for c in range(cols)
    ]


def _is_informative(cell_pixels):
    # Retina's black corners and empty sky carry no texture to degrade.
    gray = cell_pixels.mean(axis=-1)
    return (gray > 12).mean() > 0.4 and gray.std() > 4.0


def _has_detail(pixels, cell, strengths, min_change):
    """Whether the weakest resampling changes `cell` by `min_change` levels
    on average (True for None)."""
    if min_change is None:
        return True
    x0, y0, x1, y1 = cell
    patch = pixels[y0:y1, x0:x1]
    weakest = degrade(patch, "resample", min(strengths["resample"]))
    return np.abs(weakest.astype(float) - patch).mean() >= min_change


def degrade(pixels, kind, strength, rng=None):
    """Applies one degradation to a uint8 RGB array at its own resolution.

    Args:
        pixels: uint8 array of shape `(height, width, 3)`.
        kind: one of `"blur"`, `"noise"`, `"jpeg"`, `"resample"`.
        strength: blur radius in pixels, noise std in 8-bit levels, JPEG
            quality, or the resampling's shrink factor (> 1).
        rng: a `numpy.random.Generator`, used by `"noise"`.

    Returns:
        A uint8 array of the same shape.
    """
    if kind == "blur":
        image = Image.fromarray(pixels).filter(
            ImageFilter.GaussianBlur(strength)
        )
        return np.asarray(image)
    if kind == "noise":
        rng = rng if rng is not None else np.random.default_rng(0)
        noise = rng.normal(0.0, strength, size=pixels.shape)
        return np.clip(pixels + noise, 0, 255).round().astype(np.uint8)
    if kind == "jpeg":
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(
            buffer, format="JPEG", quality=int(strength)
        )
        buffer.seek(0)
        with Image.open(buffer) as image:
            return np.asarray(image.convert("RGB"))
    if kind == "resample":
        height, width = pixels.shape[:2]
        small = (
            max(1, round(width / strength)),
            max(1, round(height / strength)),
        )
        image = Image.fromarray(pixels).resize(small, Image.BILINEAR)
        return np.asarray(image.resize((width, height), Image.BICUBIC))
    raise ValueError(
        f"Unknown degradation; expected one of {KINDS}. Received: kind={kind}"
    )


def _strengths(resample_range):
    """STRENGTHS, with the resampling factors of `resample_range` (None:
    the default ones), checked."""
    if resample_range is None:
        return dict(STRENGTHS)
    try:
        low, high = (float(v) for v in resample_range)
    except (TypeError, ValueError):
        low = high = float("nan")
    if not 1.0 < low <= high <= MAX_FACTOR:
        raise ValueError(
            "`resample_range` must be None or (low, high) with "
            f"1 < low <= high <= {MAX_FACTOR:g} (the upscaling factors). "
            f"Received: resample_range={resample_range!r}"
        )
    return {**STRENGTHS, "resample": (low, high)}


def _random_degradation(rng, strengths, log_uniform=False):
    kind = DEGRADATIONS[rng.integers(len(DEGRADATIONS))]
    low, high = strengths[kind]
    if kind == "jpeg":
        return kind, int(rng.integers(low, high + 1))
    if log_uniform:  # One draw either way: the crops stay the same.
        return kind, round(float(np.exp(rng.uniform(np.log(low), np.log(high)))), 2)
    return kind, round(float(rng.uniform(low, high)), 2)


def score_of(factor):
    """The score of an image upscaled by `factor` (1: pristine)."""
    return float(np.log2(factor))


def _random_box(cell, rng, min_fraction, min_side=0):
    """A crop inside `cell` with independent random width and height, each
    at least `min_side` where the cell allows."""
    x0, y0, x1, y1 = cell
    cell_w, cell_h = x1 - x0, y1 - y0
    w = int(round(cell_w * rng.uniform(min_fraction, 1.0)))
    h = int(round(cell_h * rng.uniform(min_fraction, 1.0)))
    w, h = min(cell_w, max(w, min_side)), min(cell_h, max(h, min_side))
    left = x0 + int(rng.integers(0, cell_w - w + 1))
    top = y0 + int(rng.integers(0, cell_h - h + 1))
    return (left, top, left + w, top + h)


def _check_crop_settings(crops_per_cell, min_fraction, min_side):
    if len(crops_per_cell) != len(SPLITS) or min(crops_per_cell) < 1:
        raise ValueError(
            "`crops_per_cell` needs one count >= 1 for each of train, "
            f"validation and test. Received: crops_per_cell={crops_per_cell}"
        )
    if not 0.1 <= min_fraction <= 1.0:
        raise ValueError(
            f"`min_fraction` must be in [0.1, 1]. Received: min_fraction={min_fraction}"
        )
    if min_side is not None and (
        isinstance(min_side, bool) or not isinstance(min_side, int) or min_side < 1
    ):
        raise ValueError(
            "`min_side` must be None or a number of pixels >= 1. "
            f"Received: min_side={min_side!r}"
        )


def plan_crops(
    cell_size=256,
    *,
    crops_per_cell=(3, 3, 3),
    min_fraction=0.55,
    seed=0,
    resample_range=None,
    min_side=None,
    min_change=None,
):
    """Decides every crop of the dataset without writing anything.

    Args:
        cell_size: approximate side of the grid cells, in pixels. Crops are at
            most one cell, so this also bounds the crop size.
        crops_per_cell: crops per cell for train, validation and test.
        min_fraction: smallest crop side as a fraction of its cell's side;
            width and height are drawn independently, so the aspect ratio
            varies too.
        seed: seeds every random choice.
        resample_range: `(low, high)`, the range the resampling factors are
            drawn from, log-uniformly; None: `STRENGTHS["resample"]`,
            uniformly. The crops do not depend on it (one draw per factor
            whatever the range).
        min_side: None, or the shortest crop side in pixels where the
            photo allows: cells smaller than `min_side / min_fraction` are
            enlarged to it. A regression build passes `REGRESSION_MIN_SIDE`.
        min_change: None, or the least mean change, in 8-bit levels, that
            the weakest resampling of the range must make to a cell for its
            crops to be used. A regression build passes
            `REGRESSION_MIN_CHANGE`.

    Returns:
        A list of dicts, one per crop: `split`, `source`, `cell` and `box`
        (`(x0, y0, x1, y1)` in the source photo), `degradation`, `strength`,
        `name`.
    """
    strengths = _strengths(resample_range)
    _check_crop_settings(crops_per_cell, min_fraction, min_side)
    if min_side is not None:
        cell_size = max(cell_size, int(np.ceil(min_side / min_fraction)))
    rng = np.random.default_rng(seed)
    counts = dict(zip(SPLITS, crops_per_cell))
    crops = []
    deal = 0
    for filename, _ in SOURCES:
        pixels = load_rgb(filename)
        cells = [
            cell
            for cell in _grid(*pixels.shape[:2], cell_size)
            if _is_informative(pixels[cell[1] : cell[3], cell[0] : cell[2]])
            and _has_detail(pixels, cell, strengths, min_change)
        ]
        for index in rng.permutation(len(cells)):
            split = SPLIT_PATTERN[deal % len(SPLIT_PATTERN)]
            deal += 1
            for k in range(counts[split]):
                kind, strength = _random_degradation(
                    rng, strengths, log_uniform=resample_range is not None
                )
                stem = os.path.splitext(filename)[0]
                crops.append(
                    {
                        "split": split,
                        "source": filename,
                        "cell": cells[index],
                        "box": _random_box(
                            cells[index], rng, min_fraction, min_side or 0
                        ),
                        "degradation": kind,
                        "strength": strength,
                        "name": f"{stem}_cell{int(index):02d}_crop{k}.png",
                        "noise_seed": int(rng.integers(2**31)),
                    }
                )
    return crops


def _settings_key(settings):
    text = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def build_bundled_dataset(
    root,
    *,
    cell_size=256,
    crops_per_cell=(3, 3, 3),
    min_fraction=0.55,
    seed=0,
    resample_range=None,
    min_side=None,
    min_change=None,
    verbose=True,
):
    """Builds (once) the bundled image-quality dataset and returns its folder.

    The dataset is cached in `root/image_quality_v<version>_<key>/`, where
    `key` hashes the arguments; a later call with the same arguments returns
    the cached folder at once.

    Layout: `<folder>/{train,validation,test}/{degraded,pristine}/*.png`;
    in each split `scores.csv` (`filename,score`: every image of the split,
    `degraded/x.png` or `pristine/x.png`, sorted, with its score: log2
    of its upscaling factor, 0 for pristine); `manifest.csv` (one row per image: split,
    label, source photo, cell, crop box, degradation, score) and
    `SOURCES.md` (photo credits and licences).

    Args:
        root: folder for the cache (created if missing).
        cell_size, crops_per_cell, min_fraction, seed, resample_range,
            min_side, min_change: see `plan_crops`. A regression run
            passes the `REGRESSION_*` settings; the defaults keep the
            two-class dataset's crops, factors and images.
        verbose: print one line when building.

    Returns:
        The dataset folder.
    """
    strengths = _strengths(resample_range)
    settings = {
        "version": DATASET_VERSION,
        "cell_size": int(cell_size),
        "crops_per_cell": [int(c) for c in crops_per_cell],
        "min_fraction": float(min_fraction),
        "seed": int(seed),
        "degradations": {kind: list(strengths[kind]) for kind in DEGRADATIONS},
    }
    # Keys as before for the two-class builds.
    if min_side is not None:
        settings["min_side"] = int(min_side)
    if min_change is not None:
        settings["min_change"] = float(min_change)
    folder = os.path.join(
        root, f"image_quality_v{DATASET_VERSION}_{_settings_key(settings)}"
    )
    if os.path.isfile(os.path.join(folder, "manifest.csv")):
        return folder

    crops = plan_crops(
        cell_size, crops_per_cell=crops_per_cell, min_fraction=min_fraction,
        seed=seed, resample_range=resample_range, min_side=min_side,
        min_change=min_change,
    )
    if verbose:
        print(
            f"Building the bundled image-quality dataset ({2 * len(crops)} "
            f"images from {len({c['source'] for c in crops})} photos in "
            f"skimage/data) in {folder}"
        )
    os.makedirs(root, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".building_", dir=root)
    try:
        rows = _write_images(staging, crops, strengths)
        _write_scores(staging, rows)
        _write_manifest(staging, rows, settings)
        try:
            os.replace(staging, folder)
        except OSError:
            # Another process finished the same build first: keep theirs.
            if not os.path.isfile(os.path.join(folder, "manifest.csv")):
                raise
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _visible_degradation(pixels, crop, strengths):
    """The planned degradation, or, if it leaves the crop practically
    unchanged (a smooth retina crop), the strongest of its kind: a
    `degraded` image must differ from its `pristine` twin."""
    kind = crop["degradation"]
    strongest = min(strengths[kind]) if kind == "jpeg" else max(strengths[kind])
    for strength in (crop["strength"], strongest):
        rng = np.random.default_rng(crop["noise_seed"])
        degraded = degrade(pixels, kind, strength, rng)
        if np.abs(degraded.astype(float) - pixels).mean() >= MIN_MEAN_CHANGE:
            break
    return kind, strength, degraded


def _write_images(folder, crops, strengths):
    photos = {}
    rows = []
    for crop in crops:
        if crop["source"] not in photos:
            photos[crop["source"]] = load_rgb(crop["source"])
        x0, y0, x1, y1 = crop["box"]
        pristine = photos[crop["source"]][y0:y1, x0:x1]
        kind, strength, degraded = _visible_degradation(
            pristine, crop, strengths
        )
        for label, pixels in (("pristine", pristine), ("degraded", degraded)):
            relative = os.path.join(crop["split"], label, crop["name"])
            path = os.path.join(folder, relative)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(pixels).save(path, format="PNG")
            rows.append(
                {
                    "split": crop["split"],
                    "label": label,
                    "path": relative,
                    "source": crop["source"],
                    "cell": " ".join(map(str, crop["cell"])),
                    "box": " ".join(map(str, crop["box"])),
                    "degradation": kind if label == "degraded" else "",
                    "strength": strength if label == "degraded" else "",
                    # The factor as applied (after any fallback above).
                    "score": score_of(strength)
                    if label == "degraded"
                    else PRISTINE_SCORE,
                }
            )
    return rows


def _write_scores(folder, rows):
    """Each split's `scores.csv`: `filename,score`, the filename relative to
    the split folder with '/' separators, sorted."""
    for split in SPLITS:
        listed = sorted(
            (os.path.relpath(row["path"], split).replace(os.sep, "/"), row["score"])
            for row in rows
            if row["split"] == split
        )
        with open(
            os.path.join(folder, split, SCORES_FILE), "w", newline=""
        ) as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["filename", "score"])
            writer.writerows(listed)


def _write_manifest(folder, rows, settings):
    with open(os.path.join(folder, "SOURCES.md"), "w") as f:
        f.write(
            "# Bundled image-forensics dataset\n\n"
            "Crops of these photos from scikit-image's `skimage/data`, with the\n"
            "licences stated in `skimage/data/_fetchers.py`:\n\n"
        )
        for filename, credit in SOURCES:
            f.write(f"- `{filename}`: {credit}\n")
        f.write(
            "\nEach crop is saved as it is (`pristine`) and upscaled\n"
            "(`degraded`): shrunk by a factor drawn from "
            f"{tuple(settings['degradations']['resample'])} (bilinear)\n"
            "and enlarged back to its own size (bicubic), at the crop's full\n"
            "resolution. `manifest.csv` gives every image's source photo, grid\n"
            "cell, crop box, factor and score. Each grid cell belongs to one\n"
            "split, so no test pixel is in the training or validation images.\n"
            "\nEach split's `scores.csv` (`filename,score`) gives every image's\n"
            "score for regression: log2 of its upscaling factor as applied, 0\n"
            f"for a pristine image, in {SCORE_RANGE}.\n"
        )
        f.write(f"\nBuild settings: `{json.dumps(settings, sort_keys=True)}`\n")
    # Written last: its presence marks a complete dataset.
    with open(os.path.join(folder, "manifest.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_manifest(folder):
    """The rows of a built dataset's `manifest.csv`, boxes as int tuples,
    scores as floats."""
    with open(os.path.join(folder, "manifest.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["cell"] = tuple(int(v) for v in row["cell"].split())
        row["box"] = tuple(int(v) for v in row["box"].split())
        row["score"] = float(row["score"])
    return rows


def example_panels(image, class_names):
    """More panels of the score map figure for the bundled data: the image
    with its right half degraded as the dataset's `degraded` class (at the
    factors at both ends of its range), to show where the FCN sees it;
    none for other outputs (a score task's)."""
    if tuple(sorted(class_names)) != tuple(sorted(CLASS_NAMES)):
        return []
    panels = []
    half = image.shape[1] // 2
    for kind in DEGRADATIONS:
        for strength in STRENGTHS[kind]:
            pixels = image.copy()
            pixels[:, half:] = degrade(image[:, half:], kind, strength)
            panels.append((f"right half: {kind} {strength}", pixels))
    return panels
