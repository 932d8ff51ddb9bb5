"""A tf.data pipeline of images with scores read from a table.

`fcn_image_dataset_from_table` is `fcn_image_dataset_from_directory` for
image quality and aesthetics data, whose labels are scores listed in a
table rather than classes given by folders: a CSV file or a DataFrame with
a `filename` column (paths relative to `image_dir`) and

- one score column (`filename,score`: a mean opinion score, an AVA mean
  score): each label is a float32 scalar, shape `()`;
- several columns (`filename,p1,...,p10`: AVA's votes for the scores 1 to
  10, NIMA's distributions): each label is a float32 vector, shape `(K,)`.
  With `distribution="counts"` (the default; AVA gives vote counts) each
  row is divided by its sum; with `"probabilities"` each row must already
  sum to 1 (within 1e-3); with None the values are taken as they are.

The images go through the same machinery as the directory loader's
(`fcn_image_dataset.datasets_from_paths`): every `resize_mode`, the
bad-file scan (a bad file is skipped with a warning naming it, its score
leaves with it), the seeded `validation_split` / `subset` (not stratified:
scores are continuous), `cache_images`, `shuffle`. The files are taken in
sorted filename order, as the directory loader takes them, so the split
does not depend on the table's row order.

The table is checked whole before anything is built: a missing file, a
score that is not a finite number, a duplicate filename, a filename that
leaves `image_dir` (absolute, or through ".."), a score outside
`score_range`, a distribution row that is not one, fewer than two distinct
scores (nothing to regress), missing columns or an empty table raise a
one-line `ValueError` naming the row and file. A missing file is an error
rather than a skip: a table that names files that are not there was made
for other data. (Files that exist but are bad are skipped, as above.)

pandas is not needed: a DataFrame is read through its `columns` and its
column access (`table[name]`), so any object offering both will do.
"""

import csv
import math
import os

import numpy as np

from keras.src.utils import fcn_image_dataset
from keras.src.utils import io_utils

DISTRIBUTIONS = ("counts", "probabilities", None)
# How far a row of probabilities may sum from 1 (CSV files round).
PROBABILITY_SUM_TOLERANCE = 1e-3


def fcn_image_dataset_from_table(
    table,
    image_dir,
    label_columns,
    *,
    filename_column="filename",
    distribution="counts",
    score_range=None,
    color_mode="rgb",
    batch_size=32,
    image_size=224,
    resize_mode="crop",
    shuffle=True,
    seed=None,
    validation_split=None,
    subset=None,
    interpolation="bilinear",
    horizontal_flip=False,
    stride=32,
    on_bad_image="skip",
    cache_images=False,
    verbose=True,
):
    """Generates a `tf.data.Dataset` of images and their scores from a table.

    Arguments not listed are those of `fcn_image_dataset_from_directory`
    and mean the same.

    Args:
        table: Path of a CSV file (with a header row), or a DataFrame-like
            object (with `columns` and `table[column]`).
        image_dir: The folder the filenames are relative to.
        label_columns: One column name (scalar labels) or a list of names
            (vector labels, in that order).
        filename_column: The column of file names.
        distribution: For several `label_columns`: `"counts"` (each row
            divided by its sum; values must be >= 0 with a positive sum),
            `"probabilities"` (each row in [0, 1] summing to 1 within 1e-3,
            then divided by its sum to remove rounding) or None (vectors as
            they are). Not used with one column.
        score_range: Optional `(lo, hi)`: every value of the label columns
            must lie in it (before any normalisation).
        validation_split: Fraction of the files held out as the
            "validation" subset (seeded, not stratified); needs `seed`.

    Returns:
        A `tf.data.Dataset` (two for `subset="both"`) yielding `(images,
        scores)`, scores float32 of shape `(batch,)` or `(batch, K)`. It
        has `file_paths` (the files kept, in the order delivered without
        shuffling), `undecodable_paths`, `label_columns` and `class_names`
        (None).
    """
    _check_label_columns(label_columns, filename_column)
    if distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"`distribution` must be one of {DISTRIBUTIONS}. "
            f"Received: distribution={distribution!r}"
        )
    score_range = _check_score_range(score_range)
    options = fcn_image_dataset.check_arguments(
        color_mode=color_mode,
        image_size=image_size,
        resize_mode=resize_mode,
        interpolation=interpolation,
        stride=stride,
        on_bad_image=on_bad_image,
        cache_images=cache_images,
        batch_size=batch_size,
        validation_split=validation_split,
        subset=subset,
        shuffle=shuffle,
        seed=seed,
        horizontal_flip=horizontal_flip,
        verbose=verbose,
    )
    image_dir = os.fspath(image_dir)
    if not os.path.isdir(image_dir):
        raise ValueError(
            f"`image_dir` must be an existing folder. Received: image_dir={image_dir!r}"
        )

    paths, scores = read_score_table(
        table,
        image_dir,
        label_columns,
        filename_column=filename_column,
        distribution=distribution,
        score_range=score_range,
    )
    if verbose:
        io_utils.print_msg(f"Found {len(paths)} files with scores in the table.")
    if seed is None:
        seed = np.random.randint(1e6)
    # As the directory loader: without a split, the sorted list is shuffled
    # (tf.data's shuffle buffer only mixes neighbours); cached images are
    # reshuffled whole each epoch instead.
    if shuffle and not cache_images and not validation_split:
        order = np.random.default_rng(seed).permutation(len(paths))
        paths = [paths[i] for i in order]
        scores = scores[order]
    with fcn_image_dataset.gc_paused():
        datasets = fcn_image_dataset.datasets_from_paths(
            paths,
            scores,
            label_mode="float",
            class_names=None,
            # Continuous scores have no classes to stratify by.
            split_groups=None,
            source=f"the table's files in {image_dir}",
            options=options._replace(seed=seed),
        )
    for dataset in datasets if subset == "both" else [datasets]:
        dataset.label_columns = label_columns
    return datasets


def read_score_table(table, image_dir, label_columns, *, filename_column="filename",
                     distribution="counts", score_range=None):
    """The checked `(paths, scores)` of a score table, sorted by path.

    `paths` are `image_dir` joined with the filenames; `scores` a float32
    array of shape `(n,)` (one column named by a string) or `(n, K)`. Raises
    a one-line `ValueError` for the first bad row (with the count of the
    others), as `fcn_image_dataset_from_table` describes.
    """
    columns = _check_label_columns(label_columns, filename_column)
    name, rows = _read_rows(table, [filename_column] + columns)
    if not rows:
        raise ValueError(
            f"{name} has no rows: list one image file and its scores per row."
        )

    problems = []
    seen = {}  # normalised filename -> where it was first listed
    paths, scores = [], []
    for where, filename, values in rows:
        try:
            relative = _check_filename(filename, image_dir, where, seen)
            row = _check_values(values, columns, score_range, distribution)
        except _RowError as e:
            problems.append(f"{name}, {where}, file {filename!r}: {e}")
            continue
        seen[relative] = where
        paths.append(os.path.join(image_dir, relative))
        scores.append(row)
    if problems:
        more = (f" (and {len(problems) - 1} more rows with problems)"
                if len(problems) > 1 else "")
        raise ValueError(f"{problems[0]}{more}")

    scores = np.asarray(scores, dtype="float32")
    if isinstance(label_columns, str):
        scores = scores[:, 0]
    distinct = np.unique(scores, axis=0)
    if len(distinct) < 2:
        raise ValueError(
            f"{name}: all {len(rows)} rows have the same score "
            f"{distinct[0].tolist()}; a regression needs at least two "
            "distinct scores. Check the label columns."
        )
    order = sorted(range(len(paths)), key=lambda i: paths[i])
    return [paths[i] for i in order], scores[order]


class _RowError(ValueError):
    """What is wrong with one row (its place is added by the caller)."""


def _check_label_columns(label_columns, filename_column):
    """`label_columns` as a list of names."""
    columns = [label_columns] if isinstance(label_columns, str) else label_columns
    if (
        not isinstance(columns, (list, tuple))
        or not columns
        or not all(isinstance(c, str) for c in columns)
        or len(set(columns)) != len(columns)
        or filename_column in columns
    ):
        raise ValueError(
            "`label_columns` must be a column name or a non-empty list of "
            "distinct column names, other than the filename column "
            f"{filename_column!r}. Received: label_columns={label_columns!r}"
        )
    return list(columns)


def _check_score_range(score_range):
    if score_range is None:
        return None
    try:
        lo, hi = (float(v) for v in score_range)
    except (TypeError, ValueError):
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(
            "`score_range` must be None or (lo, hi) with finite lo < hi. "
            f"Received: score_range={score_range!r}"
        )
    return lo, hi


def _read_rows(table, needed):
    """`(name, rows)`: how to name the table in errors, and its rows as
    `(where, filename, [values of the label columns])`, `where` naming the
    row ("line 3" of a CSV file, "row 2" (from 0) of a DataFrame)."""
    if isinstance(table, (str, os.PathLike)):
        path = os.fspath(table)
        if not os.path.isfile(path):
            raise ValueError(
                f"`table` must be a CSV file or a DataFrame. No file {path!r}."
            )
        name = f"table {path}"
        # utf-8-sig: spreadsheet programs start their CSV with a BOM.
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            _check_columns(name, reader.fieldnames or [], needed)
            rows = [
                (f"line {reader.line_num}", row[needed[0]],
                 [row[c] for c in needed[1:]])
                for row in reader
            ]
        return name, rows
    if not hasattr(table, "columns"):
        raise ValueError(
            "`table` must be the path of a CSV file or a DataFrame (an object "
            f"with `columns`). Received: table of type {type(table).__name__}"
        )
    name = "the table"
    _check_columns(name, [str(c) for c in table.columns], needed)
    data = [list(table[c]) for c in needed]
    if len({len(column) for column in data}) > 1:
        raise ValueError(f"{name}: its columns {needed} differ in length.")
    rows = [
        (f"row {i} (from 0)", data[0][i], [column[i] for column in data[1:]])
        for i in range(len(data[0]))
    ]
    return name, rows


def _check_columns(name, columns, needed):
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ValueError(
            f"{name} has no column {missing[0]!r}"
            + (f" (nor {missing[1:]})" if len(missing) > 1 else "")
            + f"; its columns are {list(columns)}. Pass `filename_column` and "
            "`label_columns` naming its columns."
        )


def _check_filename(filename, image_dir, where, seen):
    """The filename, normalised, of a row whose file can be used."""
    if not isinstance(filename, str) or not filename.strip():
        raise _RowError("the filename is empty or not text. Fill it in.")
    relative = os.path.normpath(filename)
    if (os.path.isabs(filename) or relative == os.pardir
            or relative.startswith(os.pardir + os.sep)):
        raise _RowError(
            f"the filename leaves image_dir {image_dir}. List files relative "
            "to image_dir, inside it."
        )
    if relative in seen:
        raise _RowError(
            f"the file is listed again (first at {seen[relative]}). List each "
            "file once."
        )
    if os.path.splitext(relative)[1].lower() not in fcn_image_dataset.ALLOWLIST_FORMATS:
        raise _RowError(
            "not one of the image formats "
            f"{fcn_image_dataset.ALLOWLIST_FORMATS}. Convert it, or remove the row."
        )
    if not os.path.isfile(os.path.join(image_dir, relative)):
        raise _RowError(
            f"no such file in {image_dir}. Add the file, or remove the row."
        )
    return relative


def _check_values(values, columns, score_range, distribution):
    """The row's scores as floats, checked (and normalised for several
    columns, per `distribution`)."""
    row = []
    for column, value in zip(columns, values):
        number = _to_number(value)
        if number is None or not math.isfinite(number):
            raise _RowError(
                f"column {column!r} is {value!r}, not a finite number. Fix the "
                "score, or remove the row."
            )
        if score_range is not None and not score_range[0] <= number <= score_range[1]:
            raise _RowError(
                f"column {column!r} is {number:g}, outside score_range="
                f"{score_range}. Fix the score, or the range."
            )
        row.append(number)
    if len(columns) < 2 or distribution is None:
        return row
    total = math.fsum(row)
    if distribution == "counts":
        if min(row) < 0 or total <= 0:
            raise _RowError(
                f"the counts {row} must be >= 0 with a positive sum. Fix the "
                "row, or pass distribution=None for vectors that are not "
                "distributions."
            )
    elif min(row) < 0 or max(row) > 1 or abs(total - 1) > PROBABILITY_SUM_TOLERANCE:
        raise _RowError(
            f"the probabilities {row} sum to {total:g}, not 1 (or leave [0, 1]). "
            "Fix the row, or pass distribution='counts' to normalise counts."
        )
    return [v / total for v in row]


def _to_number(value):
    """`value` as a float, or None if it is not a number (text that does
    not parse, None, a bool)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
