"""A file whose structure is complete but whose compressed data is damaged
passes the build's scan (which does not decode); when it then fails to
decode during an epoch, `fcn_image_dataset_from_directory` leaves it out of
its batch with one warning naming it, and delivers every other image."""

import os
import shutil
import warnings

import numpy as np
import pytest
import tensorflow as tf

import keras
from keras.src.utils import fcn_image_headers

from loader_test_images import photo
from loader_test_images import write_photos


def write_damaged_jpeg(path):
    """A real photo's JPEG with an invalid marker inside its entropy-coded
    data: header and EOI intact, fatal for libjpeg ("Unsupported marker")."""
    photo("astronaut").save(path, quality=90)
    data = bytearray(open(path, "rb").read())
    scan = data.index(b"\xff\xda")
    middle = scan + (len(data) - scan) // 2
    data[middle: middle + 2] = b"\xff\x50"
    with open(path, "wb") as f:
        f.write(bytes(data))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    clean = str(tmp_path_factory.mktemp("clean"))
    write_photos(clean)
    damaged = str(tmp_path_factory.mktemp("damaged"))
    shutil.rmtree(damaged)
    shutil.copytree(clean, damaged)
    bad = os.path.join(damaged, "a", "damaged.jpg")
    write_damaged_jpeg(bad)
    return clean, damaged, bad


def _epoch(directory, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = keras.utils.fcn_image_dataset_from_directory(
            directory, image_size=48, shuffle=False, verbose=False, **kwargs
        )
        built = [str(w.message) for w in caught]
        images, labels = [], []
        for x, y in dataset:
            images.append(x.numpy() if kwargs.get("batch_size", 32) else x.numpy()[None])
            labels.append(np.reshape(y.numpy(), (-1,)))
    epoch = [str(w.message) for w in caught][len(built):]
    return dataset, built, epoch, images, np.concatenate(labels)


def test_the_damaged_file_passes_the_scan_but_fails_to_decode(folders):
    _, _, bad = folders
    assert fcn_image_headers.read_image_header(bad) is not None
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.io.decode_jpeg(tf.io.read_file(bad))


@pytest.mark.parametrize("resize_mode,batch_size",
                         [("crop", 2), ("crop", None), ("native", 2),
                          ("native", None), ("multicrop", 3)])
def test_it_leaves_its_batch_with_a_warning(folders, resize_mode, batch_size):
    clean, damaged, bad = folders
    dataset, built, epoch, images, labels = _epoch(
        damaged, resize_mode=resize_mode, batch_size=batch_size)
    assert built == [] and bad in dataset.file_paths
    assert len(epoch) == 1 and epoch[0].startswith(f"Skipped {bad}: ")
    _, _, clean_epoch, clean_images, clean_labels = _epoch(
        clean, resize_mode=resize_mode, batch_size=batch_size)
    assert clean_epoch == []
    # Every other image, with the same pixels and label ("native" groups
    # by shape, so the order of its batches may differ).
    assert len(dataset.file_paths) - 1 == len(clean_labels) == len(labels)
    ours = sorted((int(y), x.tobytes()) for y, x in
                  zip(labels, (x for batch in images for x in batch)))
    theirs = sorted((int(y), x.tobytes()) for y, x in
                    zip(clean_labels, (x for batch in clean_images for x in batch)))
    assert ours == theirs
    if batch_size:
        # As many batches as the dataset says it has (Keras counts on it).
        assert int(dataset.cardinality()) == len(images)
