"""`fcn_image_index.index_directory` against Keras' own `index_directory`:
the same paths (as strings), labels, class names, order and seeded
shuffle, on folder layouts that exercise its path handling."""

import os

import numpy as np
import pytest

from keras.src.utils import dataset_utils
from keras.src.utils import fcn_image_index
from keras.src.utils import image_dataset_utils

FORMATS = image_dataset_utils.ALLOWLIST_FORMATS


def _touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"x")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Classes with nested folders, mixed-case extensions, dotfiles, files
    of other formats, a symlinked folder and a folder outside the tree."""
    root = tmp_path_factory.mktemp("index")
    data = root / "data"
    for path in [
        "cat/b.jpg", "cat/a.JPG", "cat/10.png", "cat/2.png", "cat/notes.txt",
        "cat/.DS_Store", "cat/sub/z.jpeg", "cat/sub/deeper/y.bmp",
        "cat/Sub2/x.gif", "dog/a.jpg", "dog/README", "dog/x y.webp",
        "dog/.hidden/in_hidden.jpg", "bird/only.jpg", ".git/ignored.jpg",
        "top_level.jpg",
    ]:
        _touch(str(data / path))
    _touch(str(root / "elsewhere" / "linked.jpg"))
    _touch(str(root / "elsewhere" / "linked.csv"))
    os.symlink(root / "elsewhere", data / "dog" / "link")
    return str(data)


def _directories(tree):
    parent = os.path.dirname(tree)
    return [
        tree,
        tree + os.sep,
        os.path.join(tree, "."),
        os.path.join(parent, "..", os.path.basename(parent), "data"),
        "data",  # Relative to the working directory, the tree's parent.
        os.path.join(".", "data", ""),
    ]


@pytest.mark.parametrize("follow_links", [False, True])
@pytest.mark.parametrize("labels,class_names", [
    ("inferred", None), ("inferred", ["dog", "cat"]), (None, None),
])
@pytest.mark.parametrize("shuffle,seed", [(False, None), (True, 3), (True, 1234)])
def test_same_as_keras(tree, follow_links, labels, class_names, shuffle, seed,
                       monkeypatch):
    monkeypatch.chdir(os.path.dirname(tree))
    for directory in _directories(tree):
        kwargs = dict(formats=FORMATS, class_names=class_names, shuffle=shuffle,
                      seed=seed, follow_links=follow_links, verbose=False)
        want = dataset_utils.index_directory(directory, labels, **kwargs)
        *got, unlisted = fcn_image_index.index_directory(
            directory, labels, **kwargs
        )
        assert got[0] == want[0]
        assert len(got[0]) > 0
        if labels is None:
            assert got[1] is None and want[1] is None
        else:
            np.testing.assert_array_equal(got[1], want[1])
            assert got[1].dtype == want[1].dtype
        assert got[2] == want[2]
        assert unlisted == sorted(unlisted)
        names = {os.path.basename(p) for p in unlisted}
        assert "notes.txt" in names or class_names
        assert ".DS_Store" not in names
        assert ("linked.csv" in names) == follow_links


def test_labels_list_same_as_keras(tree):
    count = len(fcn_image_index.index_directory(
        tree, None, FORMATS, shuffle=False, verbose=False)[0])
    labels = [i % 3 for i in range(count)]
    want = dataset_utils.index_directory(
        tree, list(labels), FORMATS, shuffle=True, seed=7, verbose=False)
    got = fcn_image_index.index_directory(
        tree, list(labels), FORMATS, shuffle=True, seed=7, verbose=False)
    assert got[0] == want[0]
    assert list(got[1]) == list(want[1])
    assert got[2] == want[2] == ["0", "1", "2"]


def test_messages_same_as_keras(tree, capsys):
    for labels in ("inferred", None):
        dataset_utils.index_directory(tree, labels, FORMATS, verbose=True)
        want = capsys.readouterr().out
        fcn_image_index.index_directory(tree, labels, FORMATS, verbose=True)
        assert capsys.readouterr().out == want
    for labels, class_names in [("inferred", ["cat", "fish"]), (None, ["cat"]),
                                ([0, 1], ["cat"]), ([0], None)]:
        with pytest.raises(ValueError) as want:
            dataset_utils.index_directory(tree, labels, FORMATS,
                                          class_names=class_names)
        with pytest.raises(ValueError) as got:
            fcn_image_index.index_directory(tree, labels, FORMATS,
                                            class_names=class_names)
        assert str(got.value) == str(want.value)
