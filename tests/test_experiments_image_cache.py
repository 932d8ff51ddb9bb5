"""`cache_images`: the splits decoded once and kept in memory give the same
images as the uncached loader; training batches are reshuffled and randomly
flipped each epoch, reproducibly from the seed."""

import os

import numpy as np
import pytest
import skimage.data
from PIL import Image

import keras

from fcn_experiments.config import make_config
from fcn_experiments.data.pipelines import load_splits
from fcn_experiments.data.pipelines import resolve_folders

SKIMAGE_DATA = os.path.dirname(skimage.data.__file__)
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "brick.png")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Train / validation / test folders of real photo crops with varied
    sizes and aspect ratios (several native-mode shapes)."""
    root = tmp_path_factory.mktemp("cache")
    rng = np.random.default_rng(0)
    photos = [Image.open(os.path.join(SKIMAGE_DATA, n)).convert("RGB")
              for n in PHOTOS]
    for split, count in (("train", 12), ("validation", 4), ("test", 4)):
        for label in ("a", "b"):
            os.makedirs(root / split / label)
            for i in range(count):
                photo = photos[int(rng.integers(len(photos)))]
                w, h = int(rng.integers(40, 120)), int(rng.integers(40, 120))
                x, y = int(rng.integers(0, 300)), int(rng.integers(0, 300))
                photo.crop((x, y, x + w, y + h)).save(
                    root / split / label / f"{i}.png")
    return root


def _splits(root, mode, cache, seed=1):
    config = make_config(
        "tiny", train_dir=str(root / "train"),
        validation_dir=str(root / "validation"), test_dir=str(root / "test"),
        output_dir=str(root / "unused"), cache_images=cache, seed=seed)
    return load_splits(resolve_folders(config), config, size=32, mode=mode, batch_size=4)


def _images(dataset):
    images, labels = [], []
    for x, y in dataset.as_numpy_iterator():
        images.extend(x)
        labels.extend(y.argmax(axis=-1))
    return images, labels


def _key(image):
    return image.tobytes()


def _mirror(image):
    # The width axis of (h, w, c) and of (crops, h, w, c) alike: the
    # loader's flip (the crops of a multicrop image share it).
    return image[..., ::-1, :]


@pytest.mark.parametrize("mode", ["stretch", "native", "multicrop"])
def test_cached_splits_equal_the_loader(folders, mode):
    plain = _splits(folders, mode, cache=False)
    cached = _splits(folders, mode, cache=True)
    # Validation: neither shuffled nor flipped, so the same images in the
    # same order; native batches are grouped by shape in both.
    a_images, a_labels = _images(plain[1].dataset)
    b_images, b_labels = _images(cached[1].dataset)
    assert a_labels == b_labels
    assert all(np.array_equal(a, b) for a, b in zip(a_images, b_images))
    assert len(b_images) == cached[1].num_images == 8
    if mode == "native":
        assert len({image.shape for image in b_images}) > 1

    # Training: every epoch holds each image once, as it is or mirrored.
    loader = keras.utils.fcn_image_dataset_from_directory(
        str(folders / "train"), label_mode="categorical", batch_size=None,
        image_size=(32, 32), resize_mode=mode, shuffle=False,
        horizontal_flip=False, verbose=False)
    preprocess = keras.applications.mobilenet_v2.preprocess_input
    reference = {_key(keras.ops.convert_to_numpy(preprocess(
                 keras.ops.convert_to_tensor(x)))): int(y.argmax())
                 for x, y in loader.as_numpy_iterator()}
    epochs = []
    for _ in range(2):
        images, labels = _images(cached[0].dataset)
        assert len(images) == 24 == cached[0].num_images
        order, flips = [], []
        for image, label in zip(images, labels):
            key = _key(image)
            flips.append(key not in reference)
            if flips[-1]:
                key = _key(_mirror(image))
            assert reference[key] == label
            order.append(key)
        assert len(set(order)) == 24
        assert 0 < sum(flips) < 24
        epochs.append((order, flips))
    assert epochs[0][0] != epochs[1][0]  # Reshuffled...
    assert epochs[0][1] != epochs[1][1]  # ...and re-flipped.
    batches = sum(1 for _ in cached[0].dataset)
    assert batches == int(cached[0].dataset.cardinality())


def test_cached_training_order_is_reproducible(folders):
    first = _images(_splits(folders, "native", cache=True)[0].dataset)[0]
    again = _images(_splits(folders, "native", cache=True)[0].dataset)[0]
    other = _images(_splits(folders, "native", cache=True, seed=2)[0].dataset)[0]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(a.shape == b.shape and np.array_equal(a, b)
                   for a, b in zip(first, other))


def test_cache_images_is_in_the_fingerprint_only_when_on():
    off, on = make_config("tiny"), make_config("tiny", cache_images=True)
    assert "cache_images" not in off.fingerprint()
    assert on.fingerprint()["cache_images"] is True
    assert make_config("quick").cache_images


def test_a_split_too_large_for_memory_is_not_cached(folders, monkeypatch):
    from fcn_experiments.data import pipelines as datasets

    # 24 training images of 32 x 32 x 3 float32 at "stretch": 295 KB.
    monkeypatch.setattr(datasets, "CACHE_LIMIT_BYTES", 24 * 32 * 32 * 12 - 1)
    with pytest.warns(UserWarning, match="decoded every epoch instead"):
        train = _splits(folders, "stretch", cache=True)[0]
    plain = _splits(folders, "stretch", cache=False)[0]
    # Uncached: the loader's own shuffle and flips, as without the option.
    assert all(np.array_equal(a, b) for a, b in
               zip(_images(train.dataset)[0], _images(plain.dataset)[0]))
