"""Bad and unusual image files in `fcn_image_dataset_from_directory`: each is
converted correctly, or skipped with one warning naming it (or raises with
`on_bad_image="raise"`), and a whole epoch runs in every resize mode."""

import os
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

import keras
import tensorflow as tf
from keras.src.utils import fcn_image_files

from loader_test_images import ROOT
from loader_test_images import photo
from loader_test_images import write_bad_files
from loader_test_images import write_convertible_files
from loader_test_images import write_photos

S = 48


@pytest.fixture(scope="module")
def dirty_dir(tmp_path_factory):
    """Good photos, bad files, convertible files and non-image files."""
    directory = str(tmp_path_factory.mktemp("dirty"))
    write_photos(directory, ["rocket", "coffee", "astronaut", "chelsea_portrait"])
    bad = write_bad_files(os.path.join(directory, "a"))
    convertible = write_convertible_files(os.path.join(directory, "c"))
    with open(os.path.join(directory, "a", "notes.txt"), "w") as f:
        f.write("labelling notes")
    with open(os.path.join(directory, "c", ".DS_Store"), "wb") as f:
        f.write(b"\0\0\0\1Bud1")
    return directory, bad, convertible


def load(directory, **kwargs):
    kwargs = {"image_size": S, "batch_size": 4, "shuffle": False, "verbose": False,
              **kwargs}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = keras.utils.fcn_image_dataset_from_directory(directory, **kwargs)
    return dataset, [str(w.message) for w in caught]


def test_each_bad_file_is_skipped_with_one_warning_naming_it(dirty_dir):
    directory, bad, convertible = dirty_dir
    dataset, messages = load(directory)
    for kind, path in bad.items():
        naming = [m for m in messages if path in m]
        assert len(naming) == 1, (kind, messages)
        assert naming[0].startswith("Skipped")
        assert path not in dataset.file_paths
    bomb = [m for m in messages if bad["bomb.png"] in m][0]
    assert "decompression bomb" in bomb and "MAX_IMAGE_PIXELS" in bomb
    notes = os.path.join(directory, "a", "notes.txt")
    assert [m for m in messages if notes in m] == [
        f"Skipped {notes}: not one of the image formats "
        "('.bmp', '.gif', '.jpeg', '.jpg', '.png'). Convert it, or move it out of "
        f"{directory} to silence this warning."]
    # One warning per skipped file, nothing about the good or convertible ones.
    assert len(messages) == len(bad) + 1
    assert sorted(dataset.file_paths) == sorted(
        [p for p, _ in convertible.values()]
        + [os.path.join(directory, c, f"{n}.jpg") for c, n in
           [("a", "rocket"), ("b", "coffee"), ("a", "astronaut"), ("b", "chelsea_portrait")]])


def test_raise_instead_of_skipping(dirty_dir):
    directory, bad, _ = dirty_dir
    with pytest.raises(fcn_image_files.BadImageError) as e:
        load(directory, on_bad_image="raise")
    message = str(e.value)
    assert any(path in message for path in bad.values())
    assert f"(and {len(bad) - 1} more bad files)" in message
    assert "on_bad_image='skip'" in message


@pytest.mark.parametrize("resize_mode", ["stretch", "crop", "pad", "multicrop", "native"])
def test_a_whole_epoch_runs_in_every_mode(dirty_dir, resize_mode):
    dataset, _ = load(dirty_dir[0], resize_mode=resize_mode, horizontal_flip=True, seed=0)
    count = sum(x.shape[0] for x, _ in dataset)
    assert count == len(dataset.file_paths) == 11


def test_unusual_files_are_converted_correctly(dirty_dir):
    _, _, convertible = dirty_dir
    directory = os.path.dirname(next(iter(convertible.values()))[0])
    height, width = next(iter(convertible.values()))[1].shape[:2]
    dataset, _ = load(directory, labels=None, image_size=(height, width),
                      resize_mode="stretch", batch_size=None)
    results = dict(zip(dataset.file_paths, dataset))
    for kind, (path, expected) in convertible.items():
        np.testing.assert_allclose(results[path], expected, atol=1e-3, err_msg=kind)


@pytest.mark.parametrize("color_mode", ["grayscale", "rgba"])
def test_unusual_files_in_other_color_modes(dirty_dir, color_mode):
    """Combinations TF cannot decode (GIF or BMP in grayscale, JPEG in RGBA,
    1-bit BMP) go through PIL."""
    _, _, convertible = dirty_dir
    directory = os.path.dirname(next(iter(convertible.values()))[0])
    dataset, messages = load(directory, labels=None, color_mode=color_mode,
                             resize_mode="pad")
    assert messages == []
    x = np.concatenate(list(dataset))
    assert x.shape == (len(convertible), S, S, 1 if color_mode == "grayscale" else 4)


def test_gif_and_bmp_variants(tmp_path):
    rgb = photo("rocket", (60, 40))
    os.makedirs(tmp_path / "a")
    rgb.save(tmp_path / "a" / "rgb.bmp")
    rgb.convert("1").save(tmp_path / "a" / "one_bit.bmp")
    rgb.convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "a" / "anim.gif")
    expected = {
        "rgb.bmp": np.asarray(rgb),
        "one_bit.bmp": np.asarray(rgb.convert("1").convert("RGB")),
        "anim.gif": np.asarray(Image.open(tmp_path / "a" / "anim.gif").convert("RGB")),
    }
    for color_mode in ["rgb", "grayscale"]:
        dataset, messages = load(str(tmp_path), image_size=(40, 60), resize_mode="stretch",
                                 batch_size=None, color_mode=color_mode)
        assert messages == []
        for path, (x, _) in zip(dataset.file_paths, dataset):
            reference = expected[os.path.basename(path)]
            if color_mode == "grayscale":
                reference = np.asarray(Image.fromarray(reference).convert("L"))[..., None]
            np.testing.assert_allclose(x, reference, atol=1.001, err_msg=path)


def test_small_images_are_upscaled(tmp_path):
    os.makedirs(tmp_path / "a")
    small = photo("hubble_small", (12, 9))
    small.save(tmp_path / "a" / "small.png")
    for mode in ["crop", "pad", "multicrop", "native", "stretch"]:
        dataset, messages = load(str(tmp_path), resize_mode=mode, image_size=S)
        x = np.concatenate([x for x, _ in dataset])
        assert messages == [] and x.shape[-3:-1] in [(S, S), (S, 64)]
    x = np.concatenate([x for x, _ in load(str(tmp_path), resize_mode="crop")[0]])[0]
    crop = np.asarray(small)[:, 1:10]  # the central 9 x 9
    np.testing.assert_allclose(x, tf.image.resize(crop, (S, S)), atol=1e-3)


def test_the_pixel_limit_is_pils(tmp_path, monkeypatch):
    """The limit is PIL's own: raising it lets a big image through."""
    os.makedirs(tmp_path / "a")
    shutil.copy(os.path.join(ROOT, "test_image.jpg"), tmp_path / "a" / "rocket.jpg")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 640 * 427 - 1)
    with pytest.raises(fcn_image_files.BadImageError, match="decompression bomb"):
        load(str(tmp_path), on_bad_image="raise")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 640 * 427)
    dataset, messages = load(str(tmp_path), on_bad_image="raise")
    assert messages == [] and len(dataset.file_paths) == 1
