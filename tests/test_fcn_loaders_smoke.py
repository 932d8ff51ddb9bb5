"""Smoke test: the FCN loaders and MultiCrop are installed and work together."""

import os

import numpy as np
import pytest
from PIL import Image

import keras

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """Two classes of real photos (test_image.jpg at several sizes)."""
    directory = tmp_path_factory.mktemp("photos")
    photo = Image.open(os.path.join(ROOT, "test_image.jpg"))
    for c, sizes in enumerate([[(160, 107), (90, 120)], [(120, 120), (200, 80)]]):
        os.makedirs(directory / f"class_{c}")
        for i, size in enumerate(sizes):
            photo.resize(size).save(directory / f"class_{c}" / f"{i}.jpg")
    return str(directory)


@pytest.mark.parametrize("resize_mode", ["stretch", "crop", "pad", "multicrop"])
def test_modes_yield_batches(photo_dir, resize_mode):
    ds = keras.utils.fcn_image_dataset_from_directory(
        photo_dir, image_size=64, resize_mode=resize_mode, batch_size=4,
        seed=0, verbose=False,
    )
    x, y = next(iter(ds))
    expected = (4, 3, 64, 64, 3) if resize_mode == "multicrop" else (4, 64, 64, 3)
    assert x.shape == expected and x.dtype == "float32"
    assert sorted(y.numpy().tolist()) == [0, 0, 1, 1]
    assert ds.class_names == ["class_0", "class_1"]


def test_multicrop_model_fits(photo_dir):
    ds = keras.utils.fcn_image_dataset_from_directory(
        photo_dir, image_size=32, resize_mode="multicrop", batch_size=2,
        seed=0, verbose=False,
    )
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(2, 3, activation="softmax", name="score")(inputs)
    fcn = keras.Model(inputs, keras.layers.GlobalMaxPooling2D(name="pool")(x))
    model = keras.applications.MultiCrop(fcn)
    model.compile("sgd", "sparse_categorical_crossentropy")
    history = model.fit(ds.map(lambda x, y: (x / 255.0, y)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
