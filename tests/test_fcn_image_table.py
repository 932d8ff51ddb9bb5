"""`fcn_image_dataset_from_table`: scores from a CSV file or a DataFrame,
through every resize mode, split and bad-file path of the directory loader,
with each image's score kept with its file; and one clear error per kind
of bad table."""

import csv
import os
import warnings

import numpy as np
import pytest

import keras

from loader_test_images import PHOTOS
from loader_test_images import photo
from loader_test_images import write_damaged_jpeg

S = 48
# The photos (landscape, portrait, square, wide, small) as JPEG and PNG.
NAMES = [f"{name}.{fmt}" for name in PHOTOS for fmt in ("jpg", "png")]


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("scored")
    for name in PHOTOS:
        photo(name).save(directory / f"{name}.jpg", quality=95)
        photo(name).save(directory / f"{name}.png")
    return str(directory)


def score_of(filename):
    """A score that differs for every file, unrelated to the sorted order."""
    return float(NAMES.index(os.path.basename(filename)) * 0.75 + 1.0)


def votes_of(filename):
    """10 vote counts that differ for every file (AVA's kind of row)."""
    i = NAMES.index(os.path.basename(filename))
    return [(i * 7 + 3 * k) % 11 + 1 for k in range(10)]


def write_table(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


@pytest.fixture()
def score_csv(tmp_path):
    # Rows in reverse order: the dataset must not depend on it.
    return write_table(tmp_path / "scores.csv", ["filename", "score"],
                       [[n, score_of(n)] for n in reversed(NAMES)])


@pytest.fixture()
def votes_csv(tmp_path):
    return write_table(tmp_path / "votes.csv",
                       ["filename"] + [f"p{k}" for k in range(1, 11)],
                       [[n] + votes_of(n) for n in NAMES])


def from_table(table, directory, columns="score", **kwargs):
    kwargs = {"image_size": S, "batch_size": 5, "verbose": False, **kwargs}
    return keras.utils.fcn_image_dataset_from_table(table, directory, columns, **kwargs)


def reference_images(directory, resize_mode, image_size):
    """{path: image} from the directory loader (the same decoding), one
    image at a time."""
    ds = keras.utils.fcn_image_dataset_from_directory(
        directory, labels=None, image_size=image_size, resize_mode=resize_mode,
        batch_size=None, shuffle=False, verbose=False)
    return {path: image.numpy() for path, image in zip(ds.file_paths, ds)}


def delivered(dataset):
    """The (image, score) pairs of a batched dataset, in delivery order."""
    return [(x, y) for images, scores in dataset
            for x, y in zip(images.numpy(), scores.numpy())]


def file_of(image, references):
    """The path whose reference image is `image`."""
    matches = [path for path, ref in references.items()
               if ref.shape == image.shape and np.allclose(ref, image, atol=1e-3)]
    assert len(matches) == 1, f"{len(matches)} files match a delivered image"
    return matches[0]


# ------------------------------------------------- scores stay with files


@pytest.mark.parametrize("resize_mode, image_size, shape", [
    ("stretch", (S, 64), (S, 64, 3)),
    ("crop", S, (S, S, 3)),
    ("pad", (64, S), (64, S, 3)),
    ("multicrop", S, (3, S, S, 3)),
    ("native", S, None),
])
@pytest.mark.parametrize("cache_images", [False, True])
def test_each_score_is_its_files_in_every_resize_mode(
        image_dir, score_csv, resize_mode, image_size, shape, cache_images):
    ds = from_table(score_csv, image_dir, resize_mode=resize_mode,
                    image_size=image_size, shuffle=True, seed=3,
                    cache_images=cache_images)
    assert sorted(ds.file_paths) == sorted(os.path.join(image_dir, n) for n in NAMES)
    references = reference_images(image_dir, resize_mode, image_size)
    pairs = delivered(ds)
    files = [file_of(x, references) for x, _ in pairs]
    assert sorted(files) == sorted(ds.file_paths)  # each file once
    assert files != sorted(files)  # shuffled
    for (x, y), path in zip(pairs, files):
        assert y.dtype == np.float32 and y.shape == ()
        assert y == np.float32(score_of(path))
        if shape is not None:
            assert x.shape == shape
        else:  # native: shorter side S, longer a multiple of 32
            assert min(x.shape[:2]) == S and max(x.shape[:2]) % 32 == 0
    for images, scores in ds:
        assert scores.shape == (images.shape[0],)


def test_ten_bin_vote_counts_become_distributions(image_dir, votes_csv):
    columns = [f"p{k}" for k in range(1, 11)]
    ds = from_table(votes_csv, image_dir, columns, shuffle=True, seed=5)
    references = reference_images(image_dir, "crop", S)
    pairs = delivered(ds)
    assert len(pairs) == len(NAMES)
    for x, y in pairs:
        votes = np.array(votes_of(file_of(x, references)), dtype=np.float64)
        assert y.dtype == np.float32 and y.shape == (10,)
        np.testing.assert_allclose(y, votes / votes.sum(), rtol=1e-6)
    assert ds.label_columns == columns


def test_probability_rows_and_raw_vectors(image_dir, tmp_path):
    rows = [[n, 0.25, 0.75] if i % 2 else [n, 0.5, 0.5] for i, n in enumerate(NAMES)]
    table = write_table(tmp_path / "p.csv", ["filename", "a", "b"], rows)
    ds = from_table(table, image_dir, ["a", "b"], distribution="probabilities",
                    shuffle=False)
    expected = {os.path.join(image_dir, r[0]): r[1:] for r in rows}
    scores = np.concatenate([y.numpy() for _, y in ds])
    np.testing.assert_allclose(scores, [expected[p] for p in ds.file_paths])

    rows = [[n, i, 10 * i] for i, n in enumerate(NAMES)]  # not distributions
    table = write_table(tmp_path / "raw.csv", ["filename", "a", "b"], rows)
    ds = from_table(table, image_dir, ["a", "b"], distribution=None, shuffle=False)
    expected = {os.path.join(image_dir, r[0]): r[1:] for r in rows}
    scores = np.concatenate([y.numpy() for _, y in ds])
    np.testing.assert_array_equal(scores, [expected[p] for p in ds.file_paths])


class FakeFrame:
    """What the loader needs of a pandas DataFrame: `columns`, `frame[c]`."""

    def __init__(self, data):
        self._data = {k: np.asarray(v, dtype=object) for k, v in data.items()}
        self.columns = list(data)

    def __getitem__(self, column):
        return self._data[column]


def test_a_dataframe_gives_what_its_csv_gives(image_dir, score_csv):
    frame = FakeFrame({"filename": list(reversed(NAMES)),
                       "score": [score_of(n) for n in reversed(NAMES)],
                       "unused": ["x"] * len(NAMES)})
    ours = from_table(frame, image_dir, shuffle=False)
    theirs = from_table(score_csv, image_dir, shuffle=False)
    assert ours.file_paths == theirs.file_paths
    for (x1, y1), (x2, y2) in zip(ours, theirs):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_exported_like_the_directory_loader():
    assert (keras.preprocessing.fcn_image_dataset_from_table
            is keras.utils.fcn_image_dataset_from_table)


# ---------------------------------------------------------------- splits


def test_split_both_is_seeded_disjoint_and_independent_of_row_order(
        image_dir, score_csv, tmp_path):
    train, val = from_table(score_csv, image_dir, validation_split=0.25,
                            subset="both", seed=11, shuffle=True)
    assert not set(train.file_paths) & set(val.file_paths)
    assert sorted(train.file_paths + val.file_paths) == sorted(
        os.path.join(image_dir, n) for n in NAMES)
    assert len(val.file_paths) == 3
    references = reference_images(image_dir, "crop", S)
    for ds in (train, val):
        pairs = delivered(ds)
        files = [file_of(x, references) for x, _ in pairs]
        assert sorted(files) == sorted(ds.file_paths)
        assert all(y == np.float32(score_of(f)) for (_, y), f in zip(pairs, files))

    # Same subsets from a separate, unshuffled call on the rows reordered.
    rows = list(csv.reader(open(score_csv)))[1:]
    reordered = write_table(tmp_path / "reordered.csv", ["filename", "score"],
                            rows[1::2] + rows[::2])
    again = from_table(reordered, image_dir, validation_split=0.25,
                       subset="validation", seed=11, shuffle=False)
    assert sorted(again.file_paths) == sorted(val.file_paths)
    other = from_table(score_csv, image_dir, validation_split=0.25,
                       subset="validation", seed=12, shuffle=False)
    assert sorted(other.file_paths) != sorted(val.file_paths)


# ------------------------------------------------------------- bad files


def test_a_bad_file_is_skipped_with_its_score(image_dir, tmp_path):
    directory = tmp_path / "with_bad"
    directory.mkdir()
    for name in NAMES:
        os.link(os.path.join(image_dir, name), directory / name)
    data = open(os.path.join(image_dir, "coffee.png"), "rb").read()
    (directory / "bad_truncated.png").write_bytes(data[: len(data) // 2])
    rows = [[n, score_of(n)] for n in NAMES]
    rows.insert(3, ["bad_truncated.png", 99.0])
    table = write_table(tmp_path / "t.csv", ["filename", "score"], rows)
    with pytest.warns(UserWarning, match="bad_truncated.png"):
        ds = from_table(table, str(directory), shuffle=True, seed=2)
    assert str(directory / "bad_truncated.png") not in ds.file_paths
    references = reference_images(image_dir, "crop", S)
    pairs = delivered(ds)
    assert len(pairs) == len(NAMES)
    for x, y in pairs:
        assert y == np.float32(score_of(file_of(x, references)))


def test_a_file_that_fails_to_decode_leaves_with_its_score(image_dir, tmp_path):
    """Damage inside a JPEG's data is only found during the epoch: the
    file leaves its batch, and the other scores stay with their images."""
    directory = tmp_path / "with_damaged"
    directory.mkdir()
    for name in NAMES:
        os.link(os.path.join(image_dir, name), directory / name)
    write_damaged_jpeg(str(directory / "damaged.jpg"))
    rows = [[n, score_of(n)] for n in NAMES] + [["damaged.jpg", 99.0]]
    table = write_table(tmp_path / "t.csv", ["filename", "score"], rows)
    ds = from_table(table, str(directory), shuffle=True, seed=4, batch_size=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pairs = delivered(ds)
    assert any("damaged.jpg" in str(w.message) for w in caught)
    assert ds.undecodable_paths == [str(directory / "damaged.jpg")]
    references = reference_images(image_dir, "crop", S)
    files = [file_of(x, references) for x, _ in pairs]
    assert sorted(files) == sorted(os.path.join(image_dir, n) for n in NAMES)
    assert all(y == np.float32(score_of(f)) for (_, y), f in zip(pairs, files))


# ------------------------------------------------------------- bad tables


def good_rows():
    return [[n, score_of(n)] for n in NAMES]


def replaced(row, value):
    rows = good_rows()
    rows[row] = value
    return rows


@pytest.mark.parametrize("rows, kwargs, message", [
    (replaced(2, ["missing.jpg", 3.0]), {},
     r"line 4, file 'missing.jpg': no such file in .*Add the file"),
    (replaced(1, [NAMES[1], "n/a"]), {},
     rf"line 3, file '{NAMES[1]}': column 'score' is 'n/a', not a finite number"),
    (replaced(0, [NAMES[0], "nan"]), {},
     rf"line 2, file '{NAMES[0]}': column 'score' is 'nan', not a finite number"),
    (replaced(5, [NAMES[5], "inf"]), {},
     rf"line 7, file '{NAMES[5]}': column 'score' is 'inf', not a finite number"),
    (replaced(5, [NAMES[5], ""]), {},
     rf"line 7, file '{NAMES[5]}': column 'score' is '', not a finite number"),
    (replaced(4, [f"./{NAMES[1]}", 2.0]), {},
     rf"line 6, file './{NAMES[1]}': the file is listed again \(first at line 3\)"),
    (good_rows(), {"score_range": (1.0, 5.0)},
     rf"line 8, file '{NAMES[6]}': column 'score' is 5.5, outside "
     r"score_range=\(1.0, 5.0\)\. .*\(and 5 more rows with problems\)"),
    ([[n, 4.0] for n in NAMES], {},
     r"all 12 rows have the same score 4.0; a regression needs at least two"),
    (replaced(3, ["../outside.jpg", 1.0]), {},
     r"line 5, file '../outside.jpg': the filename leaves image_dir"),
    (replaced(3, ["/etc/passwd.jpg", 1.0]), {},
     r"line 5, file '/etc/passwd.jpg': the filename leaves image_dir"),
    (replaced(3, ["notes.txt", 1.0]), {},
     r"line 5, file 'notes.txt': not one of the image formats"),
    ([], {}, r"scores.csv has no rows"),
])
def test_each_bad_table_raises_one_line_naming_the_row(image_dir, tmp_path, rows,
                                                       kwargs, message):
    table = write_table(tmp_path / "scores.csv", ["filename", "score"], rows)
    with pytest.raises(ValueError, match=message) as info:
        from_table(table, image_dir, **kwargs)
    assert "\n" not in str(info.value)


def test_missing_columns_are_named(image_dir, tmp_path):
    table = write_table(tmp_path / "t.csv", ["file", "score"], good_rows())
    with pytest.raises(ValueError, match=r"has no column 'filename'; its columns "
                                         r"are \['file', 'score'\]"):
        from_table(table, image_dir)
    assert from_table(table, image_dir, filename_column="file").file_paths
    with pytest.raises(ValueError, match=r"has no column 'p2' \(nor \['p3'\]\)"):
        from_table(table, image_dir, ["score", "p2", "p3"], filename_column="file")
    frame = FakeFrame({"filename": NAMES})
    with pytest.raises(ValueError, match=r"the table has no column 'score'"):
        from_table(frame, image_dir)
    with pytest.raises(ValueError, match=r"the table has no rows"):
        from_table(FakeFrame({"filename": [], "score": []}), image_dir)


def test_bad_distribution_rows_are_named(image_dir, tmp_path):
    header = ["filename", "a", "b"]
    rows = [[n, 0.5, 0.5] for n in NAMES]
    rows[2] = [NAMES[2], 0.5, 0.4]
    table = write_table(tmp_path / "p.csv", header, rows)
    with pytest.raises(ValueError, match=rf"line 4, file '{NAMES[2]}': the "
                                         r"probabilities \[0.5, 0.4\] sum to 0.9"):
        from_table(table, image_dir, ["a", "b"], distribution="probabilities")
    rows[2] = [NAMES[2], 0, 0]
    table = write_table(tmp_path / "c.csv", header, rows)
    with pytest.raises(ValueError, match=rf"line 4, file '{NAMES[2]}': the counts "
                                         r"\[0.0, 0.0\] must be >= 0 with a positive"):
        from_table(table, image_dir, ["a", "b"])
    # A DataFrame's rows are named by position.
    frame = FakeFrame({"filename": NAMES, "score": [1.0, None] + [2.0] * 10})
    with pytest.raises(ValueError, match=rf"the table, row 1 \(from 0\), file "
                                         rf"'{NAMES[1]}': column 'score' is None"):
        from_table(frame, image_dir)


@pytest.mark.parametrize("kwargs, message", [
    ({"label_columns": []}, r"`label_columns` must be a column name"),
    ({"label_columns": ["filename"]}, r"`label_columns` must be a column name"),
    ({"distribution": "votes"}, r"`distribution` must be one of"),
    ({"score_range": (5, 1)}, r"`score_range` must be None or \(lo, hi\)"),
    ({"image_dir": "/nonexistent/folder"}, r"`image_dir` must be an existing folder"),
    ({"table": "/nonexistent/t.csv"}, r"`table` must be a CSV file or a DataFrame"),
    ({"table": {"filename": NAMES}}, r"`table` must be the path of a CSV file or"),
    ({"validation_split": 0.2, "subset": "training", "shuffle": False},
     r"`validation_split` needs a `seed`"),
])
def test_argument_errors(image_dir, score_csv, kwargs, message):
    arguments = {"table": score_csv, "image_dir": image_dir, "label_columns": "score",
                 **kwargs}
    with pytest.raises(ValueError, match=message):
        keras.utils.fcn_image_dataset_from_table(
            arguments.pop("table"), arguments.pop("image_dir"),
            arguments.pop("label_columns"), verbose=False, **arguments)
