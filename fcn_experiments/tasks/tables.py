"""Score tables (`scores.csv`, `distributions.csv`): each read and checked once.

A run reads a split folder's table once, through `read_table`, with Keras'
own `read_score_table` (every row checked, the first bad one named with its
line), before anything else uses it: the threshold, the split and every
experiment's loader take the same `ScoreTable`. The loaders get its checked
rows in memory (`ScoreTable` is DataFrame-like: `columns`, `table[name]`),
distributions already normalised, so no loader reads the file again.
"""

import csv
import os

from keras.utils.fcn_image_table import read_score_table

from fcn_experiments.errors import UsageError

FILENAME_COLUMN = "filename"


class ScoreTable:
    """A checked table: `paths` and `labels` sorted by path (float32,
    `(n,)` for one `label_columns` name, `(n, K)` for a list), and its rows
    as a DataFrame-like object for `fcn_image_dataset_from_table`."""

    def __init__(self, path, folder, *, label_columns, paths, labels):
        self.path = path
        self.label_columns = label_columns
        self.paths = paths
        self.labels = labels
        names = [label_columns] if isinstance(label_columns, str) else label_columns
        values = labels.reshape(len(paths), len(names))
        self._cells = {
            FILENAME_COLUMN: [os.path.relpath(p, folder) for p in paths],
            **{name: list(values[:, k]) for k, name in enumerate(names)},
        }
        self.columns = list(self._cells)

    def __getitem__(self, column):
        return self._cells[column]


# (path, mtime, size, label columns, score range) -> ScoreTable.
_READ = {}


def header_of(path):
    """The header of a table, stripped (the filename column included)."""
    # utf-8-sig: spreadsheet programs start their CSV with a BOM.
    with open(path, newline="", encoding="utf-8-sig") as f:
        return [name.strip() for name in next(csv.reader(f), [])]


def read_table(path, folder, label_columns, *, score_range=None):
    """The `ScoreTable` of `path`, filenames relative to `folder`.

    Args:
        label_columns: one column name (a scalar label) or a list (a vector).
        score_range: `(low, high)` every label must lie in, or None.

    Raises:
        UsageError: a bad row (the first one named, with the count of the
            others).
    """
    stat = os.stat(path)
    key = (
        os.path.abspath(path),
        stat.st_mtime_ns,
        stat.st_size,
        str(label_columns),
        None if score_range is None else tuple(score_range),
    )
    if key not in _READ:
        try:
            paths, labels = read_score_table(
                path, folder, label_columns, score_range=score_range
            )
        except ValueError as error:
            raise UsageError(str(error)) from None
        _READ[key] = ScoreTable(
            path, folder, label_columns=label_columns, paths=paths, labels=labels
        )
    return _READ[key]
