"""`validation_split` / `subset` of `fcn_image_dataset_from_directory`: one
stratified, seeded split whatever `shuffle` is (issue 13); Keras' own loader
left as it is."""

import os

import numpy as np
import pytest

import keras
from keras.src.utils.fcn_image_split import stratified_split

from split_test_images import write_clean_marked

PER_CLASS = 20


@pytest.fixture(scope="module")
def two_class_dir(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("own"))
    write_clean_marked(directory, PER_CLASS, seed=3)
    return directory


def load(directory, **kwargs):
    kwargs = {"image_size": 32, "batch_size": 8, "seed": 1,
              "validation_split": 0.15, "verbose": False, **kwargs}
    return keras.utils.fcn_image_dataset_from_directory(directory, **kwargs)


def classes_of(paths):
    return [os.path.basename(os.path.dirname(p)) for p in paths]


def test_training_and_validation_calls_split_alike(two_class_dir):
    """The framework's two calls (issue 13): disjoint, complete, stratified."""
    train = load(two_class_dir, subset="training", shuffle=True)
    validation = load(two_class_dir, subset="validation", shuffle=False)
    assert not set(train.file_paths) & set(validation.file_paths)
    assert len(train.file_paths) + len(validation.file_paths) == 2 * PER_CLASS
    # round(0.15 * 20) = 3 of each class.
    assert sorted(classes_of(validation.file_paths)) == ["clean"] * 3 + ["marked"] * 3
    # The labels follow the files.
    labels = np.concatenate([y.numpy() for _, y in validation])
    assert [validation.class_names[i] for i in labels] == classes_of(
        validation.file_paths)


@pytest.mark.parametrize("subset", ["training", "validation"])
def test_subset_does_not_depend_on_shuffle(two_class_dir, subset):
    shuffled = load(two_class_dir, subset=subset, shuffle=True)
    ordered = load(two_class_dir, subset=subset, shuffle=False)
    assert sorted(shuffled.file_paths) == ordered.file_paths  # file order
    assert shuffled.file_paths != ordered.file_paths  # a seeded shuffle
    both = load(two_class_dir, subset="both", shuffle=False)
    index = 0 if subset == "training" else 1
    assert both[index].file_paths == ordered.file_paths


def test_seed_chooses_the_split(two_class_dir):
    one = load(two_class_dir, subset="validation", shuffle=False, seed=1)
    two = load(two_class_dir, subset="validation", shuffle=False, seed=2)
    assert set(one.file_paths) != set(two.file_paths)


def test_split_needs_a_seed_even_without_shuffle(two_class_dir):
    with pytest.raises(ValueError, match=r"needs a `seed`.*Received: seed=None"):
        load(two_class_dir, subset="validation", shuffle=False, seed=None)


def test_a_bad_file_moves_no_other_file(tmp_path):
    write_clean_marked(str(tmp_path), PER_CLASS, seed=3)
    before = load(str(tmp_path), subset="validation", shuffle=False)
    bad = before.file_paths[0]
    with open(bad, "wb") as f:
        f.write(b"not a jpeg")
    with pytest.warns(UserWarning, match=os.path.basename(bad)):
        after = load(str(tmp_path), subset="validation", shuffle=False)
    assert after.file_paths == before.file_paths[1:]


def test_keras_own_loader_is_left_as_is(two_class_dir):
    """Keras' function is not patched: with the framework's former arguments
    its subsets still overlap (the behaviour issue 13 found)."""
    kwargs = {"image_size": (32, 32), "seed": 1, "validation_split": 0.15,
              "verbose": False}
    train = keras.utils.image_dataset_from_directory(
        two_class_dir, subset="training", shuffle=True, **kwargs)
    validation = keras.utils.image_dataset_from_directory(
        two_class_dir, subset="validation", shuffle=False, **kwargs)
    # Unshuffled, Keras' validation subset is the last 15% of the file list.
    assert len(validation.file_paths) == int(0.15 * 2 * PER_CLASS)
    assert set(classes_of(validation.file_paths)) == {"marked"}
    assert set(train.file_paths) & set(validation.file_paths)


@pytest.mark.parametrize("counts", [(84, 84), (10, 3, 2), (1, 7), (200, 5)])
@pytest.mark.parametrize("fraction", [0.15, 0.5])
def test_stratified_split_partitions_each_class(counts, fraction):
    labels = np.random.default_rng(0).permutation(
        np.repeat(np.arange(len(counts)), counts))
    training, validation = stratified_split(labels, fraction, seed=4)
    assert np.array_equal(np.sort(np.concatenate([training, validation])),
                          np.arange(len(labels)))
    for label, count in enumerate(counts):
        taken = int(np.sum(labels[validation] == label))
        expected = 0 if count == 1 else min(max(round(fraction * count), 1), count - 1)
        assert taken == expected, (label, count)


@pytest.mark.parametrize("kwargs, message", [
    ({"validation_split": 1.0}, "Received: validation_split=1.0"),
    ({"validation_split": True}, "Received: validation_split=True"),
    ({"seed": None}, "Received: seed=None"),
    ({"seed": 1.5}, "Received: seed=1.5"),
])
def test_stratified_split_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        stratified_split([0, 1, 0, 1], **{"validation_split": 0.5, "seed": 0, **kwargs})
