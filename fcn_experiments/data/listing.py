"""Listing image files and classes: the one way the framework does it.

Both listings go through `keras.utils.fcn_image_index.index_directory`,
the walk that `keras.utils.fcn_image_dataset_from_directory` lists its
folders with (Keras' `index_directory`, faster): the same extensions
(`ALLOWLIST_FORMATS`), the same files, the same order, and the same class
folders (hidden ones, whose name starts with ".", skipped).
"""

import os

from keras.utils.fcn_image_dataset import ALLOWLIST_FORMATS
from keras.utils.fcn_image_index import index_directory

from fcn_experiments.errors import UsageError


def _index(directory, labels):
    return index_directory(
        directory,
        labels,
        formats=ALLOWLIST_FORMATS,
        shuffle=False,
        follow_links=False,
        verbose=False,
    )


def list_class_images(directory):
    """`([(path, class)], class_names)` of a folder-per-class directory, as
    the loader lists it (sorted)."""
    paths, labels, class_names, _ = _index(directory, "inferred")
    return [(p, class_names[i]) for p, i in zip(paths, labels)], list(class_names)


def list_images(inputs):
    """The files to score: files as given, folders searched recursively.

    In folders, files with an image extension (`ALLOWLIST_FORMATS`) are
    taken, in the loader's sorted order; other files are left out (counted).
    Hidden files and folders (a name starting with ".", e.g. macOS' `._x.jpg`
    resource forks, which are no images) are not scored.

    Returns:
        `(paths, left_out)`: the paths in input order, and how many files in
        folders were left out.

    Raises:
        UsageError: an input does not exist.
    """
    paths, left_out = [], 0
    for item in inputs:
        if os.path.isfile(item):
            paths.append(item)
            continue
        if not os.path.isdir(item):
            raise UsageError(
                f"No such file or folder. Received: INPUT={item!r}"
            )
        found, _, _, unlisted = _index(item, None)
        for path in found:
            if _in_hidden_folder(path, item):
                continue  # Not looked at, as the folder is hidden.
            if os.path.basename(path).startswith("."):
                left_out += 1
            else:
                paths.append(path)
        left_out += sum(not _in_hidden_folder(path, item) for path in unlisted)
    return paths, left_out


def _in_hidden_folder(path, folder):
    """Whether a folder between `folder` and the file starts with "."."""
    below = os.path.relpath(path, folder).split(os.sep)[:-1]
    return any(name.startswith(".") for name in below)
