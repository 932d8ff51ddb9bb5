"""A file whose structure is complete but whose compressed data is damaged
passes the build's scan (which does not decode); when it then fails to
decode during an epoch, `fcn_image_dataset_from_directory` leaves it out of
its batch with one warning naming it, and delivers every other image. A
batch of no decodable file is replaced by another batch of the data, so
that `fit` gets every epoch's stated number of batches."""

import os
import shutil
import warnings

import numpy as np
import pytest

import keras
import tensorflow as tf
from keras.src.utils import fcn_image_headers

from loader_test_images import photo
from loader_test_images import write_damaged_jpeg
from loader_test_images import write_photos


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


class _StepsPerEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.steps = getattr(self, "steps", []) + [0]

    def on_train_batch_end(self, batch, logs=None):
        self.steps[-1] += 1


def _fit_two_epochs(dataset):
    """Trains a tiny model with BatchNormalization for 2 epochs; returns the
    steps of each epoch, the warnings, and whether every weight is finite."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(2, 3, strides=4, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    steps = _StepsPerEpoch()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(dataset, epochs=2, callbacks=[steps], verbose=0)
    finite = all(np.isfinite(keras.ops.convert_to_numpy(w)).all()
                 for w in model.weights)
    return steps.steps, [str(w.message) for w in caught], finite


def _assert_replaced(dataset, bad, steps, caught, finite):
    # Every epoch as long as stated, nothing empty fed to BatchNormalization.
    assert steps == [int(dataset.cardinality())] * 2
    assert finite
    ours = [m for m in caught if m.startswith(f"Skipped {bad}: ")]
    assert ours and all("replaced by another batch" in m for m in ours)
    assert dataset.undecodable_paths == [bad]


def test_a_batch_of_one_undecodable_file_is_replaced(folders):
    _, damaged, bad = folders
    dataset = keras.utils.fcn_image_dataset_from_directory(
        damaged, image_size=48, batch_size=1, shuffle=True, seed=3,
        verbose=False)
    assert int(dataset.cardinality()) == len(dataset.file_paths) == 7
    _assert_replaced(dataset, bad, *_fit_two_epochs(dataset))


def test_a_native_shape_bucket_of_one_undecodable_file_is_replaced(
        folders, tmp_path):
    clean, _, _ = folders
    directory = str(tmp_path / "bucket")
    shutil.copytree(clean, directory)
    # A 1:2 portrait: native (96, 48), the shape of no other photo.
    bad = os.path.join(directory, "b", "portrait.jpg")
    write_damaged_jpeg(bad, size=(60, 120))
    native = dict(image_size=48, resize_mode="native", shuffle=False,
                  verbose=False)
    shapes = [x.shape[1:3] for x, _ in
              keras.utils.fcn_image_dataset_from_directory(
                  clean, batch_size=1, **native)]
    undamaged = str(tmp_path / "undamaged")
    os.makedirs(os.path.join(undamaged, "b"))
    photo("astronaut", (60, 120)).save(os.path.join(undamaged, "b", "p.jpg"))
    [(x, _)] = keras.utils.fcn_image_dataset_from_directory(
        undamaged, batch_size=1, **native)
    assert x.shape[1:3] == (96, 48) and (96, 48) not in shapes
    dataset = keras.utils.fcn_image_dataset_from_directory(
        directory, batch_size=2, seed=3, horizontal_flip=True,
        **dict(native, shuffle=True))
    # The clean photos' buckets, and the bad file's alone.
    _, counts = np.unique(shapes, axis=0, return_counts=True)
    assert int(dataset.cardinality()) == np.sum(-(-counts // 2)) + 1
    _assert_replaced(dataset, bad, *_fit_two_epochs(dataset))


@pytest.mark.parametrize("resize_mode,batch_size",
                         [("crop", 1), ("multicrop", 1), ("native", 1)])
def test_replaced_batches_keep_every_other_image(folders, resize_mode,
                                                 batch_size):
    _, damaged, bad = folders
    dataset, _, epoch, images, labels = _epoch(
        damaged, resize_mode=resize_mode, batch_size=batch_size)
    assert len(images) == int(dataset.cardinality()) == 7
    assert all(len(batch) == 1 for batch in images)
    # (The fresh pass may decode the bad file again ahead of use.)
    assert epoch and {m.split(": ")[0] for m in epoch} == {f"Skipped {bad}"}
    # The 6 good images, and one of them again in place of the bad one.
    keys = [x.tobytes() for batch in images for x in batch]
    assert len(set(keys)) == 6


@pytest.mark.parametrize("batch_size", [1, None])
def test_each_subset_records_its_own_undecodable_files(folders, batch_size):
    _, damaged, bad = folders
    subsets = keras.utils.fcn_image_dataset_from_directory(
        damaged, image_size=48, batch_size=batch_size, validation_split=0.5,
        subset="both", seed=1, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for dataset in subsets:
            got = sum(1 for _ in dataset)
            has_bad = bad in dataset.file_paths
            assert dataset.undecodable_paths == ([bad] if has_bad else [])
            if batch_size:
                assert got == int(dataset.cardinality())
            else:
                assert got == len(dataset.file_paths) - has_bad
    assert sum(bad in d.file_paths for d in subsets) == 1
