"""`fcn_image_dataset_from_directory`: agreement with Keras' own loader,
the five resize modes, flips, EXIF orientation and its arguments."""

import os

import numpy as np
import pytest
from PIL import Image

import keras
import tensorflow as tf

from loader_test_images import PHOTOS
from loader_test_images import photo
from loader_test_images import save_with_orientation
from loader_test_images import write_photos

S = 64


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """Real photos of several sizes and aspect ratios, JPEG and PNG, in
    three class folders."""
    directory = str(tmp_path_factory.mktemp("photos"))
    write_photos(directory, list(PHOTOS), "jpg", classes=("a", "b", "c"))
    write_photos(directory, list(PHOTOS), "png", classes=("c", "b", "a"))
    return directory


def fcn_dataset(directory, **kwargs):
    kwargs = {"image_size": S, "batch_size": 4, "shuffle": False, "verbose": False,
              **kwargs}
    return keras.utils.fcn_image_dataset_from_directory(directory, **kwargs)


def keras_dataset(directory, **kwargs):
    kwargs = {"image_size": (S, S), "batch_size": 4, "shuffle": False, "verbose": False,
              **kwargs}
    return keras.utils.image_dataset_from_directory(directory, **kwargs)


def decode(path):
    """The pixels TF decodes (its JPEG decoder differs from PIL's)."""
    return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def images_of(dataset):
    return np.concatenate([x.numpy() for x, *_ in dataset])


# ------------------------------------------------- agreement with Keras


@pytest.mark.parametrize("resize_mode, keras_kwargs", [
    ("stretch", {}),
    ("crop", {"crop_to_aspect_ratio": True}),
])
@pytest.mark.parametrize("image_size", [S, (48, 80)])
def test_stretch_and_crop_equal_keras(photo_dir, resize_mode, keras_kwargs, image_size):
    """Same pixels as Keras."""
    ours = fcn_dataset(photo_dir, resize_mode=resize_mode, image_size=image_size)
    theirs = keras_dataset(photo_dir, image_size=(image_size, image_size)
                           if isinstance(image_size, int) else image_size, **keras_kwargs)
    assert ours.file_paths == theirs.file_paths
    np.testing.assert_allclose(images_of(ours), images_of(theirs), atol=1e-3)


def test_pad_equals_keras_where_its_float32_placement_is_exact(photo_dir):
    ours = fcn_dataset(photo_dir, resize_mode="pad")
    theirs = keras_dataset(photo_dir, pad_to_aspect_ratio=True)
    np.testing.assert_allclose(images_of(ours), images_of(theirs), atol=1e-3)


def test_pad_fills_the_target_where_keras_leaves_a_black_strip(tmp_path):
    """TF's `resize_with_pad` (Keras' pad) computes sizes in float32: a
    32 x 32 photo padded to 224 comes out 223 x 223 with a black border."""
    os.makedirs(tmp_path / "a")
    photo("astronaut", (32, 32)).save(tmp_path / "a" / "square.png")
    ours = images_of(fcn_dataset(str(tmp_path), resize_mode="pad", image_size=224))[0]
    theirs = images_of(keras_dataset(str(tmp_path), pad_to_aspect_ratio=True,
                                     image_size=(224, 224)))[0]
    assert (theirs[-1] == 0).all() and (theirs[:, -1] == 0).all()
    assert (ours[-1] != 0).any() and (ours[:, -1] != 0).any()
    np.testing.assert_allclose(
        ours, tf.image.resize(np.asarray(Image.open(tmp_path / "a" / "square.png")),
                              (224, 224)).numpy(), atol=1e-3)


@pytest.mark.parametrize("kwargs", [
    {"label_mode": "int"},
    {"label_mode": "categorical"},
    {"label_mode": "binary", "class_names": ["c", "a"]},
    {"class_names": ["c", "a", "b"]},
    {"labels": None},
    {"label_mode": None},
    {"shuffle": True, "seed": 7},
])
def test_files_labels_and_order_equal_keras(photo_dir, kwargs):
    ours = fcn_dataset(photo_dir, resize_mode="crop", **kwargs)
    theirs = keras_dataset(photo_dir, crop_to_aspect_ratio=True, **kwargs)
    assert ours.file_paths == theirs.file_paths
    assert ours.class_names == theirs.class_names
    assert ours.element_spec[1:] == theirs.element_spec[1:] if isinstance(
        ours.element_spec, tuple) else not isinstance(theirs.element_spec, tuple)
    for (x, *y), (x_keras, *y_keras) in zip(ours, theirs):
        np.testing.assert_allclose(x, x_keras, atol=1e-3)  # same shuffled order
        for label, label_keras in zip(y, y_keras):
            np.testing.assert_array_equal(label, label_keras)


def test_explicit_labels_equal_keras_and_split_by_them(photo_dir):
    """A list of labels: as Keras without a split (and not shuffled in
    place); with `subset="both"`, a split stratified by those labels (ours
    differs from Keras' there: see test_fcn_image_split.py)."""
    count = 2 * len(PHOTOS)
    labels = [i % 3 for i in range(count)]
    ours = fcn_dataset(photo_dir, labels=labels, shuffle=True, seed=3)
    theirs = keras_dataset(photo_dir, crop_to_aspect_ratio=True, labels=list(labels),
                           shuffle=True, seed=3)
    assert ours.file_paths == theirs.file_paths
    np.testing.assert_array_equal(np.concatenate([y for _, y in ours]),
                                  np.concatenate([y for _, y in theirs]))
    both = fcn_dataset(photo_dir, labels=labels, shuffle=False, seed=3,
                       validation_split=0.5, subset="both")
    assert labels == [i % 3 for i in range(count)]
    assert len(both) == 2
    label_of = dict(zip(sorted(ours.file_paths), labels))
    for subset in both:
        assert subset.class_names == ["0", "1", "2"]
        # Each label's 4 files split 2 + 2; the labels follow the files.
        subset_labels = np.concatenate([y for _, y in subset])
        assert sorted(subset_labels.tolist()) == [0, 0, 1, 1, 2, 2]
        assert subset_labels.tolist() == [label_of[p] for p in subset.file_paths]
    assert not set(both[0].file_paths) & set(both[1].file_paths)


# ------------------------------------------------------------- multicrop


def test_multicrop_yields_start_centre_end(photo_dir):
    dataset = fcn_dataset(photo_dir, resize_mode="multicrop", image_size=(48, 80))
    crops = images_of(dataset)
    assert crops.shape == (len(dataset.file_paths), 3, 48, 80, 3)
    for path, image_crops in zip(dataset.file_paths, crops):
        img = decode(path)
        h, w = img.shape[:2]
        scale = max(48 / h, 80 / w)
        size = (max(48, int(h * scale + 0.5)), max(80, int(w * scale + 0.5)))
        full = tf.image.resize(img, size).numpy()
        top, left = size[0] - 48, size[1] - 80
        for crop, (t, l) in zip(image_crops, [(0, 0), (top // 2, left // 2), (top, left)]):
            np.testing.assert_allclose(crop, full[t:t + 48, l:l + 80], atol=1e-3)
    # The centre crop shows the crop mode's image (resampled from another
    # grid: crop-then-resize there, resize-then-crop here).
    centre = images_of(fcn_dataset(photo_dir, resize_mode="crop", image_size=(48, 80)))
    assert np.abs(crops[:, 1] - centre).mean() < 8


# ---------------------------------------------------------------- native


def test_native_keeps_aspect_and_batches_by_shape(photo_dir):
    dataset = fcn_dataset(photo_dir, resize_mode="native", stride=16, batch_size=3)
    expected = []
    for path in dataset.file_paths:
        w, h = Image.open(path).size
        long = max(S, 16 * int(max(w, h) * S / min(w, h) / 16 + 0.5))
        expected.append((long, S) if h > w else (S, long))
    shapes, labels, batches = [], [], 0
    for x, y in dataset:
        batches += 1
        assert x.shape[0] <= 3
        shapes += [tuple(x.shape[1:3])] * x.shape[0]
        labels += list(y.numpy())
    assert sorted(shapes) == sorted(expected)
    assert int(dataset.cardinality()) == batches  # Keras' progress bar needs it
    assert max(shapes.count(s) for s in set(shapes)) > 1  # batches of more than 1
    assert sorted(labels) == sorted(np.concatenate([y for _, y in fcn_dataset(photo_dir)]))
    for h, w in shapes:
        assert min(h, w) == S and max(h, w) % 16 == 0


def test_native_images_are_the_resized_photos(photo_dir):
    dataset = fcn_dataset(photo_dir, resize_mode="native", batch_size=None, stride=8)
    for path, (x, _) in zip(dataset.file_paths, dataset):
        img = decode(path)
        np.testing.assert_allclose(x, tf.image.resize(img, x.shape[:2]), atol=1e-3)


# ------------------------------------------------------------------ flips


@pytest.mark.parametrize("resize_mode", ["crop", "multicrop", "native"])
def test_horizontal_flip_per_image_and_epoch(photo_dir, resize_mode):
    plain = list(fcn_dataset(photo_dir, resize_mode=resize_mode, batch_size=None))
    flipping = fcn_dataset(photo_dir, resize_mode=resize_mode, batch_size=None,
                           horizontal_flip=True, seed=1)
    epochs = []
    for _ in range(2):
        flips = []
        for (x, _), (reference, _) in zip(flipping, plain):
            x, reference = x.numpy(), reference.numpy()
            mirrored = reference[..., ::-1, :]  # the width axis, for every crop
            assert np.array_equal(x, reference) or np.array_equal(x, mirrored)
            flips.append(np.array_equal(x, mirrored))
        assert 0 < sum(flips) < len(flips)  # per image, not per dataset
        epochs.append(flips)
    assert epochs[0] != epochs[1]  # anew every epoch
    again = fcn_dataset(photo_dir, resize_mode=resize_mode, batch_size=None,
                        horizontal_flip=True, seed=1)
    first = [np.array_equal(x, r[..., ::-1, :]) for (x, _), (r, _) in zip(again, plain)]
    assert first == epochs[0]  # reproducible from the seed


def test_validation_subset_is_not_flipped(photo_dir):
    kwargs = {"seed": 5, "validation_split": 0.5, "batch_size": None}
    plain = fcn_dataset(photo_dir, subset="validation", **kwargs)
    flipped = fcn_dataset(photo_dir, subset="validation", horizontal_flip=True, **kwargs)
    np.testing.assert_array_equal(images_of(flipped.batch(100)), images_of(plain.batch(100)))


# -------------------------------------------------------- EXIF orientation


@pytest.mark.parametrize("resize_mode", ["crop", "stretch"])
def test_every_exif_orientation_is_shown_upright(tmp_path, resize_mode):
    upright = photo("coffee", (48, 32))
    os.makedirs(tmp_path / "a")
    for orientation in range(1, 9):
        save_with_orientation(upright, str(tmp_path / "a" / f"o{orientation}.png"),
                              orientation)
    dataset = fcn_dataset(str(tmp_path), resize_mode=resize_mode, image_size=(32, 48),
                          batch_size=None)
    assert len(dataset.file_paths) == 8
    for x, _ in dataset:
        np.testing.assert_allclose(x, np.asarray(upright), atol=1e-3)


def test_exif_rotated_jpeg_is_upright_in_every_mode(tmp_path):
    upright = photo("rocket", (120, 80))
    os.makedirs(tmp_path / "a")
    save_with_orientation(upright, str(tmp_path / "a" / "phone.jpg"), 6, quality=98)
    for mode, shape in [("crop", (80, 80)), ("pad", (80, 80)), ("multicrop", (3, 80, 80)),
                        ("native", (80, 128)), ("stretch", (80, 80))]:
        x = images_of(fcn_dataset(str(tmp_path), resize_mode=mode, image_size=80))[0]
        assert x.shape[:-1] == shape
    x = images_of(fcn_dataset(str(tmp_path), resize_mode="native", image_size=80,
                              stride=8))[0]
    assert np.abs(x - np.asarray(upright, dtype=np.float32)).mean() < 3


# ----------------------------------------------------- color modes, args


@pytest.mark.parametrize("color_mode, channels", [("grayscale", 1), ("rgba", 4)])
@pytest.mark.parametrize("resize_mode", ["crop", "pad", "multicrop"])
def test_color_modes(photo_dir, color_mode, channels, resize_mode):
    x = images_of(fcn_dataset(photo_dir, color_mode=color_mode, resize_mode=resize_mode))
    assert x.shape[-1] == channels and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 255


@pytest.mark.parametrize("kwargs, message", [
    ({"resize_mode": "squash"}, "Received: resize_mode='squash'"),
    ({"on_bad_image": "ignore"}, "Received: on_bad_image='ignore'"),
    ({"resize_mode": "native", "image_size": (64, 96)}, "Received: image_size=(64, 96)"),
    ({"image_size": 0}, "Received: image_size=(0, 0)"),
    ({"stride": 0, "resize_mode": "native"}, "Received: stride=0"),
    ({"label_mode": "sparse"}, "Received: label_mode=sparse"),
    ({"color_mode": "cmyk"}, "Received: color_mode=cmyk"),
    ({"interpolation": "cubic"}, "Received: interpolation=cubic"),
    ({"batch_size": 0}, "Received: batch_size=0"),
    ({"label_mode": "binary"}, "needs exactly 2 classes"),
    ({"validation_split": 0.2}, "`validation_split` must be set"),
])
def test_arguments_are_checked(photo_dir, kwargs, message):
    with pytest.raises(ValueError) as e:
        fcn_dataset(photo_dir, **kwargs)
    assert message in str(e.value)


def test_empty_directory_is_an_error(tmp_path):
    os.makedirs(tmp_path / "a")
    with pytest.raises(ValueError, match="No images found in directory"):
        fcn_dataset(str(tmp_path))


# ------------------------------------------------------ feeding `fit`


@pytest.mark.backend_suite
@pytest.mark.parametrize("resize_mode", ["stretch", "crop", "pad", "native", "multicrop"])
def test_every_resize_mode_feeds_fit(photo_dir, resize_mode):
    """The tf.data pipeline trains a model with plain `fit` (under JAX and
    torch too: Keras reads tf.data datasets on every backend)."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=4, activation="relu", name="conv")(x)
    x = keras.layers.Conv2D(3, 1, activation="softmax", name="score")(x)
    model = keras.Model(inputs, keras.layers.GlobalMaxPooling2D()(x))
    if resize_mode == "multicrop":
        model = keras.applications.MultiCrop(model)
    model.compile("adam", "sparse_categorical_crossentropy")
    before = [np.copy(w) for w in model.get_weights()]
    dataset = fcn_dataset(
        photo_dir, resize_mode=resize_mode, stride=16, shuffle=True, seed=0,
        horizontal_flip=True)
    history = model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
