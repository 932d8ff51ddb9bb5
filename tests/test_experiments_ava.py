"""Standard AVA as score tables (`ava_scores.make_ava_scores`): the official
or a random split, each split's mean scores and vote counts, read back by
the table loader; and one clear error per kind of bad input."""

import csv
import os

import numpy as np
import pytest
from PIL import Image

from fcn_experiments.data import ava_scores
from fcn_experiments.data import bundled as bundled_data

# Image ids as AVA's: numbers, not in numeric order in AVA.txt.
IDS = [str(i) for i in (953619, 12, 953958, 954184, 7, 20, 1000, 999, 35, 4)]
IDS += [str(100 + 3 * i) for i in range(26)]
NOT_DOWNLOADED = "999"
OFFICIAL_TEST = ["12", "1000", "35", "103", "999"]


def votes_of(index):
    """10 vote counts, different for each image (AVA's have 78 to 549)."""
    rng = np.random.default_rng(index)
    return rng.integers(0, 30, size=10).tolist()


def _expected_mean(counts):
    return sum(k * n for k, n in enumerate(counts, 1)) / sum(counts)


@pytest.fixture(scope="module")
def ava(tmp_path_factory):
    """`(ava_txt, image_dir, test_list, votes)`: a small AVA.txt and small
    JPEGs cut from a real photo, one per id (but NOT_DOWNLOADED)."""
    root = tmp_path_factory.mktemp("ava")
    votes = {image_id: votes_of(k) for k, image_id in enumerate(IDS)}
    lines = [
        " ".join(map(str, [k, image_id, *votes[image_id], 0, 0, 1396]))
        for k, image_id in enumerate(IDS, 1)
    ]
    (root / "AVA.txt").write_text("\n".join(lines) + "\n")
    (root / "generic_test.jpgl").write_text("\n".join(OFFICIAL_TEST) + "\n")
    images = root / "images"
    images.mkdir()
    photo = bundled_data.load_rgb("coffee.png")
    for k, image_id in enumerate(IDS):
        if image_id != NOT_DOWNLOADED:
            crop = photo[4 * k : 4 * k + 40, 5 * k : 5 * k + 56]
            Image.fromarray(crop).save(images / f"{image_id}.jpg", quality=90)
    return str(root / "AVA.txt"), str(images), str(root / "generic_test.jpgl"), votes


def _read(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _split_ids(out):
    return {
        split: {
            name[: -len(".jpg")]
            for name in os.listdir(os.path.join(out, split))
            if name.endswith(".jpg")
        }
        for split in ava_scores.SPLITS
    }


def test_official_split_with_scores_and_distributions(ava, tmp_path):
    ava_txt, images, test_list, votes = ava
    out = str(tmp_path / "ava")
    counts = ava_scores.make_ava_scores(ava_txt, images, out, test_ids=test_list)
    split = _split_ids(out)
    downloaded = set(IDS) - {NOT_DOWNLOADED}
    assert split["test"] == set(OFFICIAL_TEST) - {NOT_DOWNLOADED}
    assert not (split["train"] & split["validation"])
    assert split["train"] | split["validation"] | split["test"] == downloaded
    # 31 non-test images, 10% (3) for validation.
    assert counts == {"train": 28, "validation": 3, "test": 4}
    for name, ids in split.items():
        folder = os.path.join(out, name)
        header, rows = _read(os.path.join(folder, "scores.csv"))
        assert header == ["filename", "score"]
        names = [row[0] for row in rows]
        assert names == sorted(f"{i}.jpg" for i in ids)
        for filename, score in rows:
            image_id = filename[: -len(".jpg")]
            assert float(score) == pytest.approx(
                _expected_mean(votes[image_id]), abs=1e-6
            )
            link = os.path.join(folder, filename)
            assert os.path.samefile(link, os.path.join(images, filename))
        header, rows = _read(os.path.join(folder, "distributions.csv"))
        assert header == ["filename"] + [f"p{k}" for k in range(1, 11)]
        assert [row[0] for row in rows] == names
        for row in rows:
            assert [int(v) for v in row[1:]] == votes[row[0][: -len(".jpg")]]
    note = (tmp_path / "ava" / "SPLIT.md").read_text()
    assert "official test list generic_test.jpgl (4 of its 5" in note


def test_tables_load_with_the_table_loader(ava, tmp_path):
    import keras

    ava_txt, images, test_list, votes = ava
    out = tmp_path / "ava"
    ava_scores.make_ava_scores(ava_txt, images, str(out), test_ids=test_list)
    train = str(out / "train")
    options = dict(image_size=32, batch_size=8, shuffle=False, verbose=False)
    scores = keras.utils.fcn_image_dataset_from_table(
        str(out / "train" / "scores.csv"), train, "score",
        score_range=ava_scores.SCORE_RANGE, **options,
    )
    distributions = keras.utils.fcn_image_dataset_from_table(
        str(out / "train" / "distributions.csv"), train,
        list(ava_scores.BINS), distribution="counts", **options,
    )
    ids = [os.path.basename(p)[: -len(".jpg")] for p in scores.file_paths]
    assert len(ids) == 28
    loaded = np.concatenate([y.numpy() for _, y in scores])
    np.testing.assert_allclose(
        loaded, [_expected_mean(votes[i]) for i in ids], atol=1e-5
    )
    assert distributions.file_paths == scores.file_paths
    loaded = np.concatenate([y.numpy() for _, y in distributions])
    expected = np.array([votes[i] for i in ids], float)
    np.testing.assert_allclose(
        loaded, expected / expected.sum(1, keepdims=True), atol=1e-6
    )


def test_random_split_warns_and_is_kept(ava, tmp_path):
    ava_txt, images, _, _ = ava
    out = str(tmp_path / "ava")
    with pytest.warns(UserWarning, match="do not compare with published"):
        counts = ava_scores.make_ava_scores(
            ava_txt, images, out, test_fraction=0.2, seed=3
        )
    # 35 downloaded: 7 test; 28 others, 3 of them validation.
    assert counts == {"train": 25, "validation": 3, "test": 7}
    split = _split_ids(out)
    assert "NOT compare" in (tmp_path / "ava" / "SPLIT.md").read_text()
    # The same call again keeps the folder; another seed is refused.
    with pytest.warns(UserWarning):
        assert ava_scores.make_ava_scores(
            ava_txt, images, out, test_fraction=0.2, seed=3
        ) == counts
    with pytest.warns(UserWarning), pytest.raises(
        ValueError, match="already holds another split"
    ):
        ava_scores.make_ava_scores(ava_txt, images, out, test_fraction=0.2, seed=4)
    assert _split_ids(out) == split
    other = str(tmp_path / "other")
    with pytest.warns(UserWarning):
        ava_scores.make_ava_scores(ava_txt, images, other, test_fraction=0.2, seed=4)
    assert _split_ids(other)["test"] != split["test"]


def test_default_random_test_share_is_the_official_one(ava, tmp_path):
    ava_txt, images, _, _ = ava
    assert ava_scores.RANDOM_TEST_FRACTION == pytest.approx(20_000 / 255_500)
    with pytest.warns(UserWarning, match="random 3 of the 35"):
        counts = ava_scores.make_ava_scores(ava_txt, images, str(tmp_path / "a"))
    assert counts["test"] == 3  # round(35 * 0.078)


def _error(call):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_input_is_refused_in_one_line(ava, tmp_path):
    ava_txt, images, test_list, _ = ava
    out = str(tmp_path / "ava")
    make = ava_scores.make_ava_scores
    assert "No AVA.txt" in _error(
        lambda: make(str(tmp_path / "missing.txt"), images, out, test_ids=test_list)
    )
    unknown = tmp_path / "unknown.jpgl"
    unknown.write_text("12\n424242\n31337\n")
    assert "'424242' (and 1 more)" in _error(
        lambda: make(ava_txt, images, out, test_ids=str(unknown))
    )
    assert "No test list" in _error(
        lambda: make(ava_txt, images, out, test_ids=str(tmp_path / "none.jpgl"))
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "download them first" in _error(
        lambda: make(ava_txt, str(empty), out, test_ids=test_list)
    )
    assert "not both" in _error(
        lambda: make(ava_txt, images, out, test_ids=test_list, test_fraction=0.2)
    )
    assert "validation_fraction" in _error(
        lambda: make(ava_txt, images, out, validation_fraction=1.0)
    )
    bad = tmp_path / "bad.txt"
    bad.write_text("1 123 4 5 x 0 0 0 0 0 0 0 0 0 1\n")
    assert "whole numbers" in _error(lambda: make(str(bad), images, out))
    # Nothing was written by the refused calls.
    assert not os.path.exists(out)
    # A folder holding another split (another test list) is refused.
    make(ava_txt, images, out, test_ids=test_list)
    other = tmp_path / "other.jpgl"
    other.write_text("953619\n7\n")
    assert "already holds another split" in _error(
        lambda: make(ava_txt, images, out, test_ids=str(other))
    )
