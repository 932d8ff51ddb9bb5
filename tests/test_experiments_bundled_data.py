"""The bundled image-quality dataset: deterministic, balanced, no leakage."""

import hashlib
import itertools
import os

import numpy as np
import pytest
from PIL import Image

from fcn_experiments import bundled_data

# Small settings so that a build takes about a second.
SMALL = dict(cell_size=384, crops_per_cell=(1, 1, 1), seed=0)


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
