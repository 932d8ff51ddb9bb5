"""The framework's one listing path: `predict`'s inputs and the run's splits
are listed as the training loader lists its folders."""

import os

import pytest

import keras

from fcn_experiments import tasks
from fcn_experiments.config import make_config
from fcn_experiments.data.listing import list_class_images
from fcn_experiments.data.listing import list_images
from fcn_experiments.errors import UsageError


def _touch(root, names):
    for name in names:
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").close()


def test_class_listing_is_the_loaders(tmp_path):
    _touch(tmp_path, ["b/2.jpg", "a/1.PNG", "a/sub/3.jpeg", "a/notes.txt", "b/x.webp"])
    files, class_names = list_class_images(str(tmp_path))
    paths, labels, keras_names = keras.src.utils.dataset_utils.index_directory(
        str(tmp_path), "inferred", formats=(".bmp", ".gif", ".jpeg", ".jpg", ".png"),
        shuffle=False,
    )
    assert class_names == list(keras_names) == ["a", "b"]
    assert files == [(p, keras_names[i]) for p, i in zip(paths, labels)]
    assert [os.path.relpath(p, tmp_path) for p, _ in files] == [
        "a/1.PNG", "a/sub/3.jpeg", "b/2.jpg"
    ]


def test_predict_inputs_skip_hidden_files_and_count_the_rest(tmp_path):
    _touch(tmp_path, ["d/1.jpg", "d/._1.jpg", "d/.cache/2.jpg", "d/sub/3.gif",
                      "d/notes.txt", "single.png"])
    folder, single = str(tmp_path / "d"), str(tmp_path / "single.png")
    paths, left_out = list_images([single, folder])
    assert [os.path.relpath(p, tmp_path) for p in paths] == [
        "single.png", "d/1.jpg", "d/sub/3.gif"
    ]
    assert left_out == 2  # notes.txt and the hidden ._1.jpg
    with pytest.raises(UsageError, match="INPUT="):
        list_images([str(tmp_path / "missing")])


def test_a_hidden_folder_is_no_class_anywhere(tmp_path):
    """The run's classes, its split and the loader skip a hidden folder
    (`.git/`, `.ipynb_checkpoints/`) alike: one class-discovery path."""
    from PIL import Image

    for name in ["a/1.png", "b/2.png", ".ipynb_checkpoints/3.png"]:
        os.makedirs(tmp_path / os.path.dirname(name), exist_ok=True)
        Image.new("RGB", (40, 40), (200, 30, 30)).save(tmp_path / name)
    config = make_config("tiny", output_dir=str(tmp_path / "out"))
    task = tasks.get("classification")
    files, groups = task.list_files(str(tmp_path), config)
    assert task.output_names(str(tmp_path), config) == groups == ["a", "b"]
    assert [os.path.relpath(p, tmp_path) for p, _ in files] == ["a/1.png", "b/2.png"]
    dataset = keras.utils.fcn_image_dataset_from_directory(
        str(tmp_path), image_size=32, verbose=False
    )
    assert dataset.class_names == ["a", "b"]
