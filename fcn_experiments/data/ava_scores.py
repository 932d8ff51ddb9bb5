"""Standard AVA as score tables: mean scores and 10-bin vote distributions.

AVA (Murray et al., CVPR 2012) is used under two protocols whose numbers
do not compare:

- AVA2 (`ava_two_class.py`): the 10% of photos with the highest mean score
  against the 10% with the lowest, two classes, reported as accuracy. The
  middle 80%, the hard cases, are left out.
- Standard AVA (this module): all photos, the official split (about
  230,000 train, 20,000 test), reported as the mean score's SRCC and PLCC
  and as the binary accuracy at the threshold 5 (NIMA, Talebi and Milanfar
  2018), for a regression of the mean score or a prediction of the 10-bin
  score distribution (NIMA's EMD loss).

The official test split is a list of image ids,
`AVA_dataset/aesthetics_image_lists/generic_test.jpgl` in the AVA package
(e.g. github.com/mtobeiyf/ava_downloader), one id per line: pass its path
as `test_ids`. Without it the test split is a seeded random draw of the
same share, and the results do not compare with published ones.

`make_ava_scores` writes `<out>/{train,validation,test}/<image_id>.jpg`
symlinks to the downloaded images, and in each split folder `scores.csv`
(`filename,score`: the mean score, 1 to 10) and `distributions.csv`
(`filename,p1,...,p10`: the vote counts for the scores 1 to 10), sorted by
filename, as `keras.utils.fcn_image_dataset_from_table` reads them; and
`<out>/SPLIT.md`, saying which split it is.
"""

import csv
import os
import tempfile
import warnings

import numpy as np

from fcn_experiments.data.ava_two_class import mean_score
from fcn_experiments.data.ava_two_class import read_vote_counts
from fcn_experiments.data.ava_two_class import refuse_other_split
from fcn_experiments.errors import UsageError

SPLITS = ("train", "validation", "test")
SCORE_RANGE = (1.0, 10.0)
# AVA's binary protocol: a photo is "good" with a mean score above 5.
SCORE_THRESHOLD = 5.0
SCORES_FILE = "scores.csv"
DISTRIBUTIONS_FILE = "distributions.csv"
BINS = tuple(f"p{k}" for k in range(1, 11))
# The official test split holds about 20,000 of AVA's about 255,500 photos;
# a random split without the list takes the same share.
RANDOM_TEST_FRACTION = 20_000 / 255_500


def read_test_ids(path):
    """The image ids of a test list (`generic_test.jpgl`: one id per line;
    a `.jpg` ending is dropped), in order, without repeats."""
    if not os.path.isfile(path):
        raise ValueError(
            f"No test list at {path!r}. The official one is "
            "AVA_dataset/aesthetics_image_lists/generic_test.jpgl in the AVA "
            "package (e.g. github.com/mtobeiyf/ava_downloader); pass its path, "
            "or test_ids=None for a random split."
        )
    ids = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if fields:
                image_id = fields[0]
                if image_id.lower().endswith(".jpg"):
                    image_id = image_id[: -len(".jpg")]
                ids.setdefault(image_id, None)
    if not ids:
        raise ValueError(
            f"The test list {path} holds no image id; it should list one id "
            "per line (as generic_test.jpgl does)."
        )
    return list(ids)


def _id_order(image_id):
    # AVA's ids are numbers: sort them as numbers, whatever AVA.txt's order.
    return (len(image_id), image_id)


def make_ava_scores(
    ava_txt,
    image_dir,
    out_dir,
    *,
    test_ids=None,
    test_fraction=None,
    validation_fraction=0.1,
    seed=0,
):
    """Writes standard AVA as train, validation and test folders of symlinks
    with their mean scores and vote distributions.

    Args:
        ava_txt: path of AVA.txt.
        image_dir: folder with the downloaded `<image_id>.jpg` files; ids
            without a file are left out (the downloads are never complete).
        out_dir: where `train/`, `validation/` and `test/` go (created). A
            folder holding another split is refused, not mixed.
        test_ids: path of the official test list (`generic_test.jpgl`, one
            id per line); every id must be in AVA.txt. None: a seeded random
            test split, with a warning that its results do not compare with
            published ones.
        test_fraction: without `test_ids`, the share of the downloaded
            images held out for testing; None: `RANDOM_TEST_FRACTION`
            (about 20,000 of the full set, as the official split).
        validation_fraction: share of the non-test images held out for
            model selection (seeded; the official split has no validation
            part, it comes out of the training images).
        seed: seeds the random choices.

    Returns:
        `{split: image count}`.
    """
    _check_fractions(validation_fraction, test_ids, test_fraction)
    votes = read_vote_counts(ava_txt)
    official = None
    if test_ids is not None:
        official = read_test_ids(test_ids)
        unknown = [image_id for image_id in official if image_id not in votes]
        if unknown:
            raise UsageError(
                f"The test list {test_ids} names image {unknown[0]!r}"
                + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
                + f", which {ava_txt} does not rate; the list and AVA.txt must "
                "come from the same AVA package."
            )
    available = sorted(
        (
            image_id
            for image_id in votes
            if os.path.isfile(os.path.join(image_dir, f"{image_id}.jpg"))
        ),
        key=_id_order,
    )
    if not available:
        raise UsageError(
            f"None of the {len(votes)} images of {ava_txt} is in {image_dir} "
            "as <image_id>.jpg; download them first (e.g. mtobeiyf/ava_downloader)."
        )
    rng = np.random.default_rng(seed)
    test, rest = _test_split(
        available, rng, official=official, test_ids=test_ids,
        test_fraction=test_fraction, image_dir=image_dir, seed=seed,
    )
    count = max(1, round(len(rest) * validation_fraction))
    if len(rest) - count < 1:
        raise UsageError(
            f"{len(rest)} downloaded image(s) outside the test split: training "
            "and validation need at least 2. Download more images."
        )
    chosen = set(rng.permutation(len(rest))[:count].tolist())
    splits = {
        "train": [i for k, i in enumerate(rest) if k not in chosen],
        "validation": [i for k, i in enumerate(rest) if k in chosen],
        "test": test,
    }
    plan = {
        os.path.join(out_dir, split, name)
        for split, ids in splits.items()
        for name in [f"{i}.jpg" for i in ids] + [SCORES_FILE, DISTRIBUTIONS_FILE]
    }
    refuse_other_split(out_dir, plan)
    for split, ids in splits.items():
        _write_split(out_dir, split, ids, votes=votes, image_dir=image_dir)
    _write_note(out_dir, splits, official=official, test_ids=test_ids, seed=seed)
    return {split: len(ids) for split, ids in splits.items()}


def _check_fractions(validation_fraction, test_ids, test_fraction):
    if not 0 < validation_fraction < 1:
        raise UsageError(
            "`validation_fraction` must be in (0, 1). Received: "
            f"validation_fraction={validation_fraction}"
        )
    if test_ids is not None and test_fraction is not None:
        raise UsageError(
            "Pass `test_ids` (the official split) or `test_fraction` (a random "
            f"one), not both. Received: test_ids={test_ids!r}, "
            f"test_fraction={test_fraction}"
        )
    if test_fraction is not None and not 0 < test_fraction < 1:
        raise UsageError(
            f"`test_fraction` must be in (0, 1). Received: test_fraction={test_fraction}"
        )


def _test_split(available, rng, *, official, test_ids, test_fraction,
                image_dir, seed):
    """`(test, rest)` of the downloaded ids: the official test list's, or a
    seeded random share (with a warning)."""
    if official is not None:
        held_out = set(official)
        test = [i for i in available if i in held_out]
        rest = [i for i in available if i not in held_out]
        if not test:
            raise UsageError(
                f"None of the {len(official)} images of the test list {test_ids} "
                f"is in {image_dir}; download them (or check the folder)."
            )
        return test, rest
    fraction = RANDOM_TEST_FRACTION if test_fraction is None else test_fraction
    count = max(1, round(len(available) * fraction))
    chosen = set(rng.permutation(len(available))[:count].tolist())
    test = [i for k, i in enumerate(available) if k in chosen]
    rest = [i for k, i in enumerate(available) if k not in chosen]
    warnings.warn(
        f"AVA: no official test list given, so the test split is a random "
        f"{len(test)} of the {len(available)} downloaded images (seed "
        f"{seed}): its results do not compare with published AVA results. "
        "Pass test_ids= the path of AVA_dataset/aesthetics_image_lists/"
        "generic_test.jpgl for the official split.",
        stacklevel=3,
    )
    return test, rest


def _write_split(out_dir, split, ids, *, votes, image_dir):
    """One split's folder: links to the images, scores.csv and
    distributions.csv."""
    folder = os.path.join(out_dir, split)
    os.makedirs(folder, exist_ok=True)
    for image_id in ids:
        link = os.path.join(folder, f"{image_id}.jpg")
        if not os.path.lexists(link):
            _link(os.path.abspath(os.path.join(image_dir, f"{image_id}.jpg")), link)
    listed = sorted((f"{i}.jpg", votes[i]) for i in ids)
    _write_table(
        out_dir, os.path.join(folder, SCORES_FILE), ["filename", "score"],
        [[name, f"{mean_score(counts):.6f}"] for name, counts in listed],
    )
    _write_table(
        out_dir, os.path.join(folder, DISTRIBUTIONS_FILE),
        ["filename", *BINS],
        [[name, *counts.tolist()] for name, counts in listed],
    )


def _link(source, link):
    try:
        os.symlink(source, link)
    except OSError:
        # Windows without the symlink privilege: a hard link (same volume).
        os.link(source, link)


def _write_table(out_dir, path, header, rows):
    """Writes a CSV file whole or not at all (a temporary file in `out_dir`,
    outside the split folders, renamed into place)."""
    handle, temporary = tempfile.mkstemp(prefix=".table_", dir=out_dir)
    try:
        with os.fdopen(handle, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _write_note(out_dir, splits, *, official, test_ids, seed):
    counts = ", ".join(f"{len(ids)} {split}" for split, ids in splits.items())
    if official is not None:
        test = (
            f"the official test list {os.path.basename(test_ids)} "
            f"({len(splits['test'])} of its {len(official)} images downloaded): "
            "results compare with published standard-AVA results on the same "
            "images."
        )
    else:
        test = (
            f"a random draw (seed {seed}), not the official list: results do "
            "NOT compare with published AVA results."
        )
    with open(os.path.join(out_dir, "SPLIT.md"), "w") as f:
        f.write(
            "# Standard AVA (scores)\n\n"
            f"{counts} images. Test split: {test} Validation: a seeded share "
            f"(seed {seed}) of the other images.\n\n"
            "Each split folder holds `scores.csv` (`filename,score`: the mean "
            "score, 1 to 10) and `distributions.csv` (`filename,p1,...,p10`: "
            "the vote counts). Protocol: all images, mean-score SRCC and PLCC "
            f"and binary accuracy at {SCORE_THRESHOLD:g}; not comparable with "
            "two-class AVA (top/bottom 10%) accuracies.\n"
        )
