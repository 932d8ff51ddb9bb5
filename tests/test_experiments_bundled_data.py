"""The bundled image-quality dataset: deterministic, balanced, no leakage,
with a score per image (log2 of its upscaling factor) for regression."""

import csv
import hashlib
import itertools
import os

import numpy as np
import pytest
from PIL import Image

from fcn_experiments import tasks
from fcn_experiments.config import make_config
from fcn_experiments.data import bundled as bundled_data
from fcn_experiments.errors import UsageError

# Small settings so that a build takes about a second.
SMALL = dict(cell_size=384, crops_per_cell=(1, 1, 1), seed=0)
# The pixels of the SMALL build by main at e99adda (DATASET_VERSION 4, no
# scores yet), hashed by `_pixel_digest`: the scores and `resample_range`
# must leave the two-class dataset's images as they were.
SMALL_PIXELS_V4 = "38fad07848855c651173c79aa1344eb78062aeb6924f2787445dffe6b01915a7"


def _digest(folder):
    digest = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                digest[os.path.relpath(path, folder)] = hashlib.sha256(
                    f.read()
                ).hexdigest()
    return digest


def _pixel_digest(folder):
    """sha256 of every image's name, shape and decoded pixels (not of the
    PNG bytes, which depend on zlib's version)."""
    digest = hashlib.sha256()
    for split in bundled_data.SPLITS:
        for label in bundled_data.CLASS_NAMES:
            directory = os.path.join(folder, split, label)
            for name in sorted(os.listdir(directory)):
                with Image.open(os.path.join(directory, name)) as f:
                    pixels = np.asarray(f)
                digest.update(f"{split}/{label}/{name}{pixels.shape}".encode())
                digest.update(pixels.tobytes())
    return digest.hexdigest()


def _read_scores(folder, split):
    with open(os.path.join(folder, split, "scores.csv"), newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, [(name, float(score)) for name, score in reader]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return bundled_data.build_bundled_dataset(
        tmp_path_factory.mktemp("a"), verbose=False, **SMALL
    )


def test_build_is_deterministic(built, tmp_path):
    again = bundled_data.build_bundled_dataset(tmp_path, verbose=False, **SMALL)
    assert _digest(built) == _digest(again)


def test_other_seed_gives_other_crops(built, tmp_path):
    other = bundled_data.build_bundled_dataset(
        tmp_path, verbose=False, **{**SMALL, "seed": 1}
    )
    boxes = [
        {row["box"] for row in bundled_data.read_manifest(folder)}
        for folder in (built, other)
    ]
    assert boxes[0] != boxes[1]


def test_second_call_uses_the_cache(built):
    manifest = os.path.join(built, "manifest.csv")
    before = os.stat(manifest).st_mtime_ns
    root = os.path.dirname(built)
    assert (
        bundled_data.build_bundled_dataset(root, verbose=False, **SMALL)
        == built
    )
    assert os.stat(manifest).st_mtime_ns == before


def test_layout_and_balance(built):
    rows = bundled_data.read_manifest(built)
    for split in bundled_data.SPLITS:
        for label in bundled_data.CLASS_NAMES:
            files = os.listdir(os.path.join(built, split, label))
            listed = [
                r for r in rows if r["split"] == split and r["label"] == label
            ]
            assert files and len(files) == len(listed)
        counts = [
            sum(r["split"] == split and r["label"] == label for r in rows)
            for label in bundled_data.CLASS_NAMES
        ]
        assert counts[0] == counts[1]


def test_no_pixel_is_shared_between_splits(built):
    rows = bundled_data.read_manifest(built)

    def overlap(a, b):
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    for row in rows:
        x0, y0, x1, y1 = row["cell"]
        bx0, by0, bx1, by1 = row["box"]
        assert x0 <= bx0 < bx1 <= x1 and y0 <= by0 < by1 <= y1
    for a, b in itertools.combinations(rows, 2):
        if a["source"] == b["source"] and a["split"] != b["split"]:
            assert not overlap(a["cell"], b["cell"])
            assert not overlap(a["box"], b["box"])


def test_images_match_the_manifest(built):
    # Ties the geometry checked above to the actual files: each pristine image
    # is exactly its box of the source photo; each degraded one differs from
    # it, subtly.
    rows = bundled_data.read_manifest(built)
    for row in rows:
        x0, y0, x1, y1 = row["box"]
        source = bundled_data.load_rgb(row["source"])[y0:y1, x0:x1]
        with Image.open(os.path.join(built, row["path"])) as f:
            pixels = np.asarray(f)
        if row["label"] == "pristine":
            np.testing.assert_array_equal(pixels, source)
        else:
            # Visible (>= 0.5 levels on average), but no more than a blur of
            # a fine texture such as grass changes (about 17 levels).
            difference = np.abs(pixels.astype(float) - source).mean()
            assert 0.5 <= difference < 25, (row["path"], difference)


def test_sizes_and_aspect_ratios_vary(built):
    rows = bundled_data.read_manifest(built)
    sizes = {
        (r["box"][2] - r["box"][0], r["box"][3] - r["box"][1]) for r in rows
    }
    ratios = [w / h for w, h in sizes]
    assert len(sizes) > 5 and min(ratios) < 0.9 and max(ratios) > 1.1


def test_test_image_is_not_a_source():
    # test_image.jpg (rocket.jpg) stays unseen: the score-map figure uses it.
    assert "rocket.jpg" not in [name for name, _ in bundled_data.SOURCES]


@pytest.mark.parametrize("kind", bundled_data.KINDS)
def test_degrade_keeps_shape_and_dtype(kind):
    pixels = bundled_data.load_rgb("coffee.png")[:50, :70]
    strength = {"blur": 1.0, "noise": 8.0, "jpeg": 20, "resample": 2.5}[kind]
    out = bundled_data.degrade(pixels, kind, strength)
    assert out.shape == pixels.shape and out.dtype == np.uint8
    assert not np.array_equal(out, pixels)


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="crops_per_cell"):
        bundled_data.plan_crops(crops_per_cell=(1, 0, 1))
    with pytest.raises(ValueError, match="kind"):
        bundled_data.degrade(np.zeros((4, 4, 3), np.uint8), "sepia", 1)


def test_default_images_are_unchanged(built):
    assert _pixel_digest(built) == SMALL_PIXELS_V4


def test_scores_list_every_image_of_its_split(built):
    rows = bundled_data.read_manifest(built)
    low, high = bundled_data.SCORE_RANGE
    for split in bundled_data.SPLITS:
        header, scores = _read_scores(built, split)
        assert header == ["filename", "score"]
        names = [name for name, _ in scores]
        assert names == sorted(names)
        on_disk = sorted(
            f"{label}/{name}"
            for label in bundled_data.CLASS_NAMES
            for name in os.listdir(os.path.join(built, split, label))
        )
        assert names == on_disk
        manifest = {
            os.path.relpath(r["path"], split).replace(os.sep, "/"): r
            for r in rows
            if r["split"] == split
        }
        assert sorted(manifest) == names
        for name, score in scores:
            row = manifest[name]
            assert low <= score <= high and row["score"] == score
            if row["label"] == "pristine":
                assert score == 0.0
            else:
                # log2 of the factor the image was made with (the manifest's
                # strength, fallback included), within the two-class factors.
                assert score == pytest.approx(np.log2(float(row["strength"])))
                assert 3.0 <= float(row["strength"]) <= 4.0


def test_scores_load_with_the_table_loader(built):
    import keras

    split = os.path.join(built, "validation")
    _, scores = _read_scores(built, "validation")
    dataset = keras.utils.fcn_image_dataset_from_table(
        os.path.join(split, "scores.csv"),
        split,
        "score",
        score_range=bundled_data.SCORE_RANGE,
        image_size=32,
        batch_size=4,
        shuffle=False,
        verbose=False,
    )
    loaded = np.concatenate([y.numpy() for _, y in dataset])
    expected = dict(scores)
    files = [
        os.path.relpath(p, split).replace(os.sep, "/") for p in dataset.file_paths
    ]
    assert sorted(files) == sorted(expected)
    np.testing.assert_allclose(loaded, [expected[f] for f in files], rtol=1e-6)


def test_regression_build_spreads_the_scores(built, tmp_path):
    folder = bundled_data.build_bundled_dataset(
        tmp_path,
        verbose=False,
        resample_range=bundled_data.REGRESSION_RESAMPLE_RANGE,
        **SMALL,
    )
    assert os.path.basename(folder) != os.path.basename(built)
    rows = bundled_data.read_manifest(folder)
    default_rows = bundled_data.read_manifest(built)
    # The same crops; only the factors differ.
    assert [(r["path"], r["box"]) for r in rows] == [
        (r["path"], r["box"]) for r in default_rows
    ]
    degraded = [r["score"] for r in rows if r["label"] == "degraded"]
    low, high = np.log2(bundled_data.REGRESSION_RESAMPLE_RANGE)
    assert all(low - 0.01 <= s <= high + 0.01 for s in degraded)
    # Log-uniform over the range: each half of it (in log2 units) holds at
    # least a quarter of the scores.
    middle = (low + high) / 2
    assert min(sum(s < middle for s in degraded),
               sum(s >= middle for s in degraded)) >= len(degraded) / 4
    assert len(set(degraded)) > len(degraded) / 2
    for split in bundled_data.SPLITS:
        _, scores = _read_scores(folder, split)
        listed = {name: score for name, score in scores}
        for r in rows:
            if r["split"] == split:
                name = os.path.relpath(r["path"], split).replace(os.sep, "/")
                assert listed[name] == r["score"]


def test_regression_build_has_no_crop_an_experiment_enlarges(built, tmp_path):
    # The quick profile's largest input: #5 at 3x its base size.
    assert make_config("quick").base_size * 3 == bundled_data.REGRESSION_MIN_SIDE
    settings = tasks.get("regression").bundled_data_settings()
    assert settings["min_side"] == bundled_data.REGRESSION_MIN_SIDE
    folder = bundled_data.build_bundled_dataset(
        tmp_path, verbose=False, cell_size=96, crops_per_cell=(1, 1, 1),
        seed=0, **settings,
    )
    rows = bundled_data.read_manifest(folder)
    assert {r["split"] for r in rows} == set(bundled_data.SPLITS)
    sides = []
    for r in rows:
        with Image.open(os.path.join(folder, r["path"])) as image:
            sides.append(min(image.size))
        x0, y0, x1, y1 = r["box"]
        assert min(image.size) == min(x1 - x0, y1 - y0)
    assert min(sides) >= bundled_data.REGRESSION_MIN_SIDE
    # Still of varied sizes and aspect ratios.
    assert len({r["box"][2] - r["box"][0] for r in rows}) > 10
    # Only cells with detail to lose: retina.jpg has none; the others' cells
    # change by at least REGRESSION_MIN_CHANGE levels at the weakest factor.
    sources = {r["source"] for r in rows}
    assert "retina.jpg" not in sources and len(sources) == len(bundled_data.SOURCES) - 1
    photos = {name: bundled_data.load_rgb(name) for name in sources}
    weakest = bundled_data.REGRESSION_RESAMPLE_RANGE[0]
    for cell, source in {(r["cell"], r["source"]) for r in rows}:
        x0, y0, x1, y1 = cell
        patch = photos[source][y0:y1, x0:x1]
        change = np.abs(
            bundled_data.degrade(patch, "resample", weakest).astype(float) - patch
        ).mean()
        assert change >= bundled_data.REGRESSION_MIN_CHANGE
    # The two-class build (no min_side) cuts smaller crops from the cells.
    two_class = bundled_data.plan_crops(96, crops_per_cell=(1, 1, 1), seed=0)
    assert min(min(c["box"][2] - c["box"][0], c["box"][3] - c["box"][1])
               for c in two_class) < 60


@pytest.mark.parametrize("min_side", [0, -5, "96", 96.0, True])
def test_bad_min_side_is_refused(min_side, tmp_path):
    with pytest.raises(ValueError, match="min_side"):
        bundled_data.build_bundled_dataset(
            tmp_path, verbose=False, min_side=min_side, **SMALL
        )
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize(
    "resample_range", [(1.0, 2.0), (3.0, 2.0), (2.0, 9.0), "wide", 2.0]
)
def test_bad_resample_range_is_refused(resample_range, tmp_path):
    with pytest.raises(ValueError, match="resample_range"):
        bundled_data.build_bundled_dataset(
            tmp_path, verbose=False, resample_range=resample_range, **SMALL
        )
    assert not os.listdir(tmp_path)


def test_without_scikit_image_one_line_names_the_data_extra(monkeypatch):
    # The runtime layer (`pip install .`) has no scikit-image.
    monkeypatch.setattr(bundled_data.importlib_util, "find_spec", lambda name: None)
    with pytest.raises(UsageError) as raised:
        bundled_data.skimage_data_dir()
    message = str(raised.value)
    assert "\n" not in message and "fcn-in-keras[data]" in message
