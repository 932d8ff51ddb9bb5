"""The original FCN `load_img` API: mode switch, the four loaders, Keras'
behaviour in mode 0, and the legacy `flow_from_directory` hook."""

import inspect
import io
import pathlib
import re

import numpy as np
import pytest
from PIL import Image

import keras
import tensorflow as tf
from keras.src.api_export import get_symbol_from_name
from keras.src.legacy.preprocessing import image as legacy_image
from keras.src.utils import fcn_image_files
from keras.src.utils import image_utils

from loader_test_images import photo
from loader_test_images import save_with_orientation
from loader_test_images import write_photos

# Keras registers its own function under its public name at import time.
KERAS_LOAD_IMG = get_symbol_from_name("keras.utils.load_img")
KERAS_BATCHES = legacy_image.BatchFromFilesMixin._get_batches_of_transformed_samples
PHOTO_NAMES = ["rocket", "coffee", "chelsea_portrait", "astronaut", "motorcycle_wide",
               "hubble_small"]


@pytest.fixture(autouse=True)
def keras_mode():
    """Every test starts and ends in mode 0, with Keras as shipped."""
    keras.utils.set_load_img_type(0)
    yield
    keras.utils.set_load_img_type(0)


@pytest.fixture(scope="module")
def photo_paths(tmp_path_factory):
    directory = tmp_path_factory.mktemp("photos")
    return (write_photos(str(directory / "jpg"), PHOTO_NAMES, "jpg")
            + write_photos(str(directory / "png"), PHOTO_NAMES, "png"))


def as_array(img):
    return np.asarray(img, dtype=np.float32)


# ------------------------------------------------------------ mode switch


def test_set_load_img_type_changes_the_mode():
    for mode in [3, 1, 4, 2, 0]:
        keras.utils.set_load_img_type(mode)
        assert keras.utils.get_load_img_type() == mode
        assert keras.preprocessing.image.get_load_img_type() == mode


@pytest.mark.parametrize("bad", [5, -1, 1.0, True, "3", None])
def test_set_load_img_type_rejects_invalid_modes(bad):
    keras.utils.set_load_img_type(3)
    with pytest.raises(ValueError) as e:
        keras.utils.set_load_img_type(bad)
    message = str(e.value)
    assert "0 = keras, 1 = pad, 2 = pad+mask, 3 = crop, 4 = multicrop" in message
    assert f"Received: load_img_type={bad!r}" in message
    assert keras.utils.get_load_img_type() == 3  # unchanged


def test_public_names_are_the_dispatcher():
    assert keras.utils.load_img is keras.preprocessing.image.load_img
    assert tf.keras.utils.load_img is keras.utils.load_img
    assert tf.keras.preprocessing.image.load_img is keras.utils.load_img
    assert keras.utils.load_img is not KERAS_LOAD_IMG


# ------------------------------------------------------ mode 0 is Keras


def test_mode_0_has_keras_signature_plus_min_dimension():
    ours = list(inspect.signature(keras.utils.load_img).parameters.values())
    theirs = list(inspect.signature(KERAS_LOAD_IMG).parameters.values())
    assert ours[:len(theirs)] == theirs
    assert [(p.name, p.default) for p in ours[len(theirs):]] == [("min_dimension", 224)]
    assert keras.utils.load_img.__name__ == "load_img"


MODE_0_CASES = [
    {},
    {"target_size": (50, 80)},
    {"target_size": [50, 80]},
    {"target_size": (150, 100)},  # some photos' own size: no resize
    {"target_size": (64, 64), "keep_aspect_ratio": True, "interpolation": "bilinear"},
    {"target_size": (30, 90), "keep_aspect_ratio": True},
    {"target_size": (90, 30), "keep_aspect_ratio": True, "interpolation": "lanczos"},
    {"color_mode": "grayscale", "target_size": (30, 40)},
    {"color_mode": "grayscale", "target_size": (30, 40), "keep_aspect_ratio": True},
    {"color_mode": "rgba"},
    {"color_mode": "rgba", "target_size": (33, 47), "interpolation": "hamming"},
] + [{"target_size": (41, 67), "interpolation": name}
     for name in image_utils.PIL_INTERPOLATION_METHODS]


@pytest.mark.parametrize("kwargs", MODE_0_CASES)
def test_mode_0_results_equal_keras(photo_paths, kwargs):
    for path in photo_paths:
        ours = keras.utils.load_img(path, **kwargs)
        theirs = KERAS_LOAD_IMG(path, **kwargs)
        assert ours.mode == theirs.mode and ours.size == theirs.size
        np.testing.assert_array_equal(as_array(ours), as_array(theirs))
    # Path objects and BytesIO, as Keras accepts them.
    path = photo_paths[0]
    np.testing.assert_array_equal(as_array(keras.utils.load_img(pathlib.Path(path))),
                                  as_array(KERAS_LOAD_IMG(pathlib.Path(path))))
    data = open(path, "rb").read()
    np.testing.assert_array_equal(as_array(keras.utils.load_img(io.BytesIO(data))),
                                  as_array(KERAS_LOAD_IMG(io.BytesIO(data))))


@pytest.mark.parametrize("args, kwargs", [
    (("{photo}",), {"color_mode": "cmyk"}),
    (("{photo}",), {"target_size": (10, 10), "interpolation": "cubic-ish"}),
    ((123,), {}),
    (("{missing}",), {}),
    (("{photo}",), {"target_size": 5}),
    (("{photo}",), {"target_size": (10,)}),
    (("{photo}",), {"target_size": (10, 0)}),
    (("{empty}",), {}),
])
def test_mode_0_errors_equal_keras(photo_paths, tmp_path, args, kwargs):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    names = {"photo": photo_paths[0], "missing": str(tmp_path / "no.jpg"),
             "empty": str(empty)}
    args = tuple(a.format(**names) if isinstance(a, str) else a for a in args)
    with pytest.raises(Exception) as theirs:
        KERAS_LOAD_IMG(*args, **kwargs)
    with pytest.raises(Exception) as ours:
        keras.utils.load_img(*args, **kwargs)
    assert type(ours.value) is type(theirs.value)
    # PIL names the BytesIO it read from by its address.
    def without_addresses(e):
        return re.sub(r"0x[0-9a-f]+", "0x...", str(e))

    assert without_addresses(ours.value) == without_addresses(theirs.value)


def test_keras_own_load_img_tests_pass_on_mode_0(monkeypatch):
    """Keras' shipped image_utils_test, its `load_img` swapped for ours."""
    import unittest

    from keras.src.utils import image_utils_test

    monkeypatch.setattr(image_utils_test, "load_img", keras.utils.load_img)
    suite = unittest.defaultTestLoader.loadTestsFromModule(image_utils_test)
    result = unittest.TextTestRunner(stream=io.StringIO()).run(suite)
    assert result.testsRun >= 4
    assert result.wasSuccessful(), result.failures + result.errors


@pytest.mark.parametrize("target_size", [(None, 500), (500, None), (None, 100),
                                         (100, None), (None, None)])
def test_mode_0_keeps_the_aspect_for_none_like_the_original(target_size):
    """The original notebook's cell: `load_img(test_image.jpg, (None, 500))`."""
    path = str(pathlib.Path(__file__).resolve().parents[1] / "test_image.jpg")
    full = KERAS_LOAD_IMG(path)
    width, height = full.size
    img = keras.utils.load_img(path, target_size=target_size)
    assert img.mode == "RGB"
    if target_size == (None, None):
        assert img.size == full.size
        np.testing.assert_array_equal(as_array(img), as_array(full))
        return
    new_width, new_height = img.size
    given = target_size[0] if target_size[1] is None else target_size[1]
    if given >= 224 * max(width, height) / min(width, height):
        # Shorter side stays above min_dimension: the given side is exact.
        assert (new_height if target_size[1] is None else new_width) == given
    assert min(img.size) >= 224
    # The documented steps: the given side, the other rounded, then scaled up.
    if target_size[1] is None:
        size = (round(width * given / height), given)
    else:
        size = (given, round(height * given / width))
    if min(size) < 224:
        size = tuple(round(side * 224 / min(size)) for side in size)
    assert img.size == size
    assert abs(new_width / new_height - width / height) < 0.01 * width / height
    np.testing.assert_array_equal(as_array(img), as_array(full.resize(img.size, Image.NEAREST)))
    # Same through every public name, and the same as load_img_keras.
    assert keras.preprocessing.image.load_img(path, target_size=target_size).size == img.size
    assert keras.utils.load_img_keras(path, target_size=target_size).size == img.size


def test_mode_0_min_dimension_scales_the_shorter_side(photo_paths):
    path = photo_paths[0]  # rocket: 150 x 100
    assert keras.utils.load_img(path, target_size=(None, 300), min_dimension=50).size == (300, 200)
    assert keras.utils.load_img(path, target_size=(60, None), min_dimension=50).size == (90, 60)
    assert keras.utils.load_img(path, target_size=(60, None), min_dimension=80).size == (120, 80)
    assert keras.utils.load_img(path, target_size=(None, 30), min_dimension=1).size == (30, 20)
    gray = keras.utils.load_img(path, color_mode="grayscale", target_size=(None, 30),
                                min_dimension=1, interpolation="bilinear")
    expected = KERAS_LOAD_IMG(path, color_mode="grayscale").resize((30, 20), Image.BILINEAR)
    np.testing.assert_array_equal(as_array(gray), as_array(expected))


@pytest.mark.parametrize("kwargs, message", [
    ({"target_size": (None, 0)}, "Received: target_size=(None, 0)"),
    ({"target_size": (None, 50, 3)}, "Received: target_size=(None, 50, 3)"),
    ({"target_size": (None, 50), "min_dimension": 0}, "Received: min_dimension=0"),
    ({"target_size": (None, 50), "interpolation": "cubic-ish"},
     "Invalid interpolation method cubic-ish"),
])
def test_mode_0_checks_none_sizes(photo_paths, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        keras.utils.load_img(photo_paths[0], **kwargs)


def test_mode_0_leaves_keras_as_shipped():
    """Keras' own functions are back in place after any mode."""
    for mode in range(5):
        keras.utils.set_load_img_type(mode)
        keras.utils.set_load_img_type(0)
        assert image_utils.load_img is KERAS_LOAD_IMG
        assert (legacy_image.BatchFromFilesMixin._get_batches_of_transformed_samples
                is KERAS_BATCHES)


def test_hooks_are_set_only_in_modes_that_need_them():
    keras.utils.set_load_img_type(3)
    assert image_utils.load_img is keras.utils.load_img
    batches = legacy_image.BatchFromFilesMixin._get_batches_of_transformed_samples
    assert batches is KERAS_BATCHES
    for mode in (2, 4):
        keras.utils.set_load_img_type(mode)
        assert (legacy_image.BatchFromFilesMixin._get_batches_of_transformed_samples
                is not KERAS_BATCHES)


# ------------------------------------------------------- the four loaders


@pytest.mark.parametrize("target_size", [(64, 64), (48, 80), (90, 40)])
def test_crop_equals_keras_keep_aspect_ratio(photo_paths, target_size):
    for path in photo_paths:
        ours = keras.utils.load_img_crop(path, target_size=target_size,
                                         interpolation="bilinear")
        theirs = KERAS_LOAD_IMG(path, target_size=target_size, interpolation="bilinear",
                                keep_aspect_ratio=True)
        np.testing.assert_array_equal(as_array(ours), as_array(theirs))


def cover_resize(img, target_size):
    """Independent reference: the image resized so that its shorter side
    (relative to the target's aspect) equals the target."""
    (th, tw), (w, h) = target_size, img.size
    scale = max(th / h, tw / w)
    size = (max(tw, int(w * scale + 0.5)), max(th, int(h * scale + 0.5)))
    return np.asarray(img.resize(size, Image.BILINEAR), dtype=np.float32)


@pytest.mark.parametrize("target_size", [(64, 64), (48, 80)])
def test_multicrop_takes_start_centre_end(photo_paths, target_size):
    th, tw = target_size
    for path in photo_paths:
        crops = keras.utils.load_img_multicrop(path, target_size=target_size,
                                               interpolation="bilinear")
        assert len(crops) == 3 and all(c.size == (tw, th) for c in crops)
        full = cover_resize(Image.open(path).convert("RGB"), target_size)
        h, w = full.shape[:2]
        assert h == th or w == tw
        top, left = h - th, w - tw
        for crop, (t, l) in zip(crops, [(0, 0), (top // 2, left // 2), (top, left)]):
            np.testing.assert_array_equal(as_array(crop), full[t:t + th, l:l + tw])
        # The centre crop shows the crop mode's image (resampled from
        # another grid, so up to a sub-pixel shift).
        centre = as_array(keras.utils.load_img_crop(path, target_size=target_size,
                                                    interpolation="bilinear"))
        assert np.abs(as_array(crops[1]) - centre).mean() < 8


def test_multicrop_covers_a_wide_image():
    img = photo("motorcycle_wide")  # 180 x 60: 3:1
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    crops = keras.utils.load_img_multicrop(buffer, target_size=(60, 60))
    np.testing.assert_array_equal(np.concatenate([np.asarray(c) for c in crops], axis=1),
                                  np.asarray(img))


@pytest.mark.parametrize("target_size", [(64, 64), (48, 80), (100, 100)])
def test_pad_fits_centres_and_masks(photo_paths, target_size):
    th, tw = target_size
    for path in photo_paths:
        img, mask = keras.utils.load_img_pad(path, target_size=target_size,
                                             interpolation="bilinear")
        assert img.size == mask.size == (tw, th) and mask.mode == "L"
        source = Image.open(path).convert("RGB")
        w, h = source.size
        # Longer side (relative to the target) fills it exactly; the offset
        # centres the unrounded size, as TF's resize_with_pad does.
        scale = min(th / h, tw / w)
        nw, nh = min(tw, int(w * scale + 1e-9)), min(th, int(h * scale + 1e-9))
        top, left = int((th - h * scale) / 2 + 1e-9), int((tw - w * scale) / 2 + 1e-9)
        mask = np.asarray(mask)
        assert set(np.unique(mask)) <= {0, 255}
        assert (mask[top:top + nh, left:left + nw] == 255).all()
        assert (mask == 255).sum() == nh * nw
        pixels = np.asarray(img, dtype=np.float32)
        assert (pixels[mask == 0] == 0).all()
        np.testing.assert_array_equal(pixels[top:top + nh, left:left + nw],
                                      np.asarray(source.resize((nw, nh), Image.BILINEAR)))


def test_pad_keeps_the_color_mode(photo_paths):
    gray, _ = keras.utils.load_img_pad(photo_paths[0], color_mode="grayscale",
                                       target_size=(50, 50))
    rgba, mask = keras.utils.load_img_pad(photo_paths[0], color_mode="rgba",
                                          target_size=(50, 50))
    assert gray.mode == "L" and rgba.mode == "RGBA"
    alpha = np.asarray(rgba)[..., 3]
    np.testing.assert_array_equal(alpha, np.asarray(mask))  # padding is transparent


@pytest.mark.parametrize("target_size", [None, (None, 100), (80, None), (None, None)])
def test_missing_target_size_means_min_dimension(photo_paths, target_size):
    path = photo_paths[0]
    assert keras.utils.load_img_crop(path, target_size=target_size,
                                     min_dimension=72).size == (72, 72)
    assert keras.utils.load_img_pad(path, target_size=target_size)[0].size == (224, 224)
    assert [c.size for c in keras.utils.load_img_multicrop(
        path, target_size=target_size, min_dimension=40)] == [(40, 40)] * 3


def test_load_img_keras_keeps_aspect_for_none_sizes(photo_paths):
    path = photo_paths[0]  # rocket: 150 x 100
    assert keras.utils.load_img_keras(path, target_size=(None, 300),
                                      min_dimension=50).size == (300, 200)
    assert keras.utils.load_img_keras(path, target_size=(60, None),
                                      min_dimension=50).size == (90, 60)
    # Shorter side below min_dimension: scaled up until it equals it.
    assert keras.utils.load_img_keras(path, target_size=(60, None),
                                      min_dimension=80).size == (120, 80)
    assert keras.utils.load_img_keras(path, target_size=(None, None)).size == (150, 100)
    for kwargs in [{}, {"target_size": (40, 70), "interpolation": "bilinear"}]:
        np.testing.assert_array_equal(as_array(keras.utils.load_img_keras(path, **kwargs)),
                                      as_array(KERAS_LOAD_IMG(path, **kwargs)))


def test_modes_dispatch_to_the_loaders(photo_paths):
    path, size = photo_paths[2], (40, 40)
    keras.utils.set_load_img_type(1)
    np.testing.assert_array_equal(
        as_array(keras.utils.load_img(path, target_size=size)),
        as_array(keras.utils.load_img_pad(path, target_size=size)[0]))
    keras.utils.set_load_img_type(2)
    img, mask = keras.utils.load_img(path, target_size=size)
    assert mask.mode == "L"
    keras.utils.set_load_img_type(3)
    np.testing.assert_array_equal(
        as_array(keras.preprocessing.image.load_img(path, target_size=size)),
        as_array(keras.utils.load_img_crop(path, target_size=size)))
    keras.utils.set_load_img_type(4)
    assert len(keras.utils.load_img(path, target_size=size)) == 3


@pytest.mark.parametrize("loader", ["load_img_crop", "load_img_pad", "load_img_multicrop"])
def test_loaders_show_exif_rotated_photos_upright(tmp_path, loader):
    upright = photo("coffee")  # 120 x 80 landscape
    path = str(tmp_path / "rotated.png")
    save_with_orientation(upright, path, 6)
    assert Image.open(path).size == (80, 120)  # stored as portrait
    result = getattr(keras.utils, loader)(path, target_size=(80, 120))
    img = result if loader == "load_img_crop" else result[0]  # pad: (image, mask)
    np.testing.assert_array_equal(np.asarray(img), np.asarray(upright))


def test_loaders_scale_16_bit_images(tmp_path):
    gray = np.asarray(photo("coffee").convert("L"))
    path = str(tmp_path / "sixteen.png")
    Image.fromarray((gray.astype(np.uint16) << 8) | 0x80).save(path)
    img = keras.utils.load_img_crop(path, color_mode="grayscale", target_size=(80, 120))
    np.testing.assert_array_equal(np.asarray(img), gray)


def test_loaders_refuse_bad_files_naming_them(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(fcn_image_files.BadImageError,
                       match="empty.jpg is not a readable image"):
        keras.utils.load_img_crop(str(empty), target_size=(10, 10))
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10000, 10000)).save(bomb)
    with pytest.warns(Image.DecompressionBombWarning):
        with pytest.raises(fcn_image_files.BadImageError,
                           match="bomb.png .*decompression bomb"):
            keras.utils.load_img_pad(str(bomb), target_size=(10, 10))


def test_loaders_check_their_arguments(photo_paths):
    with pytest.raises(ValueError, match="Received: target_size=\\(0, 10\\)"):
        keras.utils.load_img_crop(photo_paths[0], target_size=(0, 10))
    with pytest.raises(ValueError, match="Received: min_dimension=0"):
        keras.utils.load_img_crop(photo_paths[0], min_dimension=0)
    with pytest.raises(ValueError, match="Invalid interpolation method"):
        keras.utils.load_img_pad(photo_paths[0], target_size=(9, 9), interpolation="x")
    with pytest.raises(ValueError, match="Received: color_mode=cmyk"):
        keras.utils.load_img_multicrop(photo_paths[0], color_mode="cmyk")


# ------------------------------------------------- legacy flow_from_directory


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("legacy"))
    write_photos(directory, PHOTO_NAMES, "jpg")
    return directory


def flow(directory, generator=None, class_mode="sparse", **kwargs):
    generator = generator or tf.keras.preprocessing.image.ImageDataGenerator()
    return generator.flow_from_directory(
        directory, target_size=(48, 48), batch_size=6, shuffle=False,
        class_mode=class_mode, **kwargs)


def reference(iterator, loader):
    return [loader(path, target_size=(48, 48)) for path in iterator.filepaths]


@pytest.mark.parametrize("mode, loader", [
    (1, lambda path, **kwargs: keras.utils.load_img_pad(path, **kwargs)[0]),
    (3, keras.utils.load_img_crop),
])
def test_flow_from_directory_pad_and_crop(photo_dir, mode, loader):
    keras.utils.set_load_img_type(mode)
    iterator = flow(photo_dir)
    x, y = iterator[0]
    assert x.shape == (6, 48, 48, 3)
    expected = np.stack([as_array(img) for img in reference(iterator, loader)])
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(y, iterator.classes)


def test_flow_from_directory_multicrop_batches(photo_dir):
    keras.utils.set_load_img_type(4)
    iterator = flow(photo_dir)
    x, y = iterator[0]
    assert x.shape == (6, 3, 48, 48, 3)
    expected = np.stack([np.stack([as_array(c) for c in crops])
                         for crops in reference(iterator, keras.utils.load_img_multicrop)])
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(y, iterator.classes)
    # Other label modes come out as Keras makes them.
    assert flow(photo_dir, class_mode=None)[0].shape == (6, 3, 48, 48, 3)
    assert flow(photo_dir, class_mode="categorical")[0][1].shape == (6, 2)


def test_flow_from_directory_multicrop_flips_the_three_crops_alike(photo_dir):
    keras.utils.set_load_img_type(4)
    plain = flow(photo_dir)[0][0]
    generator = tf.keras.preprocessing.image.ImageDataGenerator(horizontal_flip=True)
    flipped_any = set()
    for seed in range(3):
        x = flow(photo_dir, generator, seed=seed)[0][0]
        for image, reference_crops in zip(x, plain):
            same = [np.array_equal(c, r) for c, r in zip(image, reference_crops)]
            mirrored = [np.array_equal(c, r[:, ::-1]) for c, r in zip(image, reference_crops)]
            assert all(same) or all(mirrored)
            flipped_any.add(all(mirrored))
    assert flipped_any == {True, False}


def test_flow_from_directory_pad_with_mask(photo_dir):
    keras.utils.set_load_img_type(2)
    iterator = flow(photo_dir)
    (images, masks), y = iterator[0]
    assert images.shape == (6, 48, 48, 3) and masks.shape == (6, 48, 48, 1)
    for image, mask, path in zip(images, masks, iterator.filepaths):
        ref_image, ref_mask = keras.utils.load_img_pad(path, target_size=(48, 48))
        np.testing.assert_array_equal(image, as_array(ref_image))
        np.testing.assert_array_equal(mask[..., 0], np.asarray(ref_mask) / 255)


def test_flow_from_directory_mode_0_is_keras(photo_dir):
    keras.utils.set_load_img_type(4)
    keras.utils.set_load_img_type(0)
    iterator = flow(photo_dir)
    x, _ = iterator[0]
    expected = np.stack([as_array(img) for img in reference(iterator, KERAS_LOAD_IMG)])
    np.testing.assert_array_equal(x, expected)
