"""`fcn_image_dataset_from_directory(cache_images=True)`: every image is
decoded once, during the first epoch, and kept in memory; each epoch then
reshuffles and flips the kept images, batched as without the cache and
with as many batches as the dataset states."""

import os
import warnings

import numpy as np
import pytest

import keras

from loader_test_images import photo
from loader_test_images import write_damaged_jpeg
from loader_test_images import write_photos


@pytest.fixture()
def photo_dir(tmp_path):
    write_photos(str(tmp_path / "photos"))
    return str(tmp_path / "photos")


def _dataset(directory, **kwargs):
    return keras.utils.fcn_image_dataset_from_directory(
        directory, image_size=48, verbose=False, **kwargs)


def _epoch(dataset):
    """The epoch's images (one array each) and labels, and its warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images, labels, batches = [], [], 0
        for x, y in dataset.as_numpy_iterator():
            batches += 1
            images.extend(x)
            labels.extend(y)
    return images, labels, batches, [str(w.message) for w in caught]


def _replace_pixels(directory):
    """Overwrites every photo with another one, same name and size."""
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            size = photo("coffee").size
            photo("coffee").resize(size).transpose(0).save(path, quality=95)


@pytest.mark.parametrize("resize_mode", ["crop", "native", "multicrop"])
def test_unshuffled_cache_equals_the_loader_and_is_read_once(photo_dir,
                                                             resize_mode):
    # Batches of 2 over 6 photos: the pass ends on a full batch, and the
    # cache must still be kept.
    kwargs = dict(batch_size=2 if resize_mode != "native" else 1,
                  resize_mode=resize_mode, shuffle=False)
    plain = _epoch(_dataset(photo_dir, **kwargs))
    cached = _dataset(photo_dir, cache_images=True, **kwargs)
    first = _epoch(cached)
    assert first[2] == plain[2] == int(cached.cardinality())
    assert first[1] == plain[1]
    assert all(np.array_equal(a, b) for a, b in zip(first[0], plain[0]))
    # Files changed after the first epoch: the kept images are delivered.
    _replace_pixels(photo_dir)
    second = _epoch(cached)
    assert all(np.array_equal(a, b) for a, b in zip(second[0], first[0]))
    changed = _epoch(_dataset(photo_dir, **kwargs))
    assert not all(np.array_equal(a, b) for a, b in zip(changed[0], first[0]))


def test_cached_epochs_are_reshuffled_and_reflipped_from_the_seed(photo_dir):
    def epochs(seed):
        dataset = _dataset(photo_dir, batch_size=2, resize_mode="crop",
                           shuffle=True, horizontal_flip=True, seed=seed,
                           cache_images=True)
        return [_epoch(dataset)[0] for _ in range(3)]

    reference = {x.tobytes(): i for i, x in enumerate(
        _epoch(_dataset(photo_dir, batch_size=1, shuffle=False))[0])}
    runs = epochs(1)
    outcomes = []
    for images in runs:
        # Each photo once a epoch, as it is or mirrored.
        found = [(reference.get(x.tobytes()), x.tobytes() not in reference)
                 for x in images]
        found = [(reference[x[:, ::-1].tobytes()], True) if i is None
                 else (i, False) for (i, _), x in zip(found, images)]
        assert sorted(i for i, _ in found) == list(range(6))
        outcomes.append(found)
    assert len({tuple(o) for o in outcomes}) == 3
    assert any(flip for o in outcomes for _, flip in o)
    again = epochs(1)
    assert all(np.array_equal(a, b) for run, rerun in zip(runs, again)
               for a, b in zip(run, rerun))


def test_an_undecodable_file_is_reported_once_and_the_epochs_keep_length(
        photo_dir):
    bad = os.path.join(photo_dir, "a", "damaged.jpg")
    write_damaged_jpeg(bad)
    dataset = _dataset(photo_dir, batch_size=1, shuffle=True, seed=2,
                       horizontal_flip=True, cache_images=True)
    # Built without decoding: nothing is known wrong yet.
    assert int(dataset.cardinality()) == 7 and dataset.undecodable_paths == []
    first, second = _epoch(dataset), _epoch(dataset)
    assert first[2] == second[2] == 7
    assert [m.split(": ")[0] for m in first[3]] == [f"Skipped {bad}"]
    assert "kept in memory" in first[3][0]
    assert second[3] == []  # Not decoded again.
    assert dataset.undecodable_paths == [bad]


def test_cache_images_must_be_a_bool(photo_dir):
    with pytest.raises(ValueError, match="Received: cache_images='yes'"):
        _dataset(photo_dir, cache_images="yes")
