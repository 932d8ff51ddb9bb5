"""Two-class AVA (the seed's and the paper's dataset) as class folders.

AVA (Murray et al., CVPR 2012) rates about 255,000 photos from 1 to 10; its
`AVA.txt` has one line per photo:

    index  image_id  n1 n2 ... n10  tag1 tag2  challenge_id

where `n1..n10` count the votes for each score. Two-class AVA is commonly
defined as the 10% of photos with the highest mean score (`high`) against
the 10% with the lowest (`low`). `make_two_class_ava` writes that split as
`<out>/{train,validation,test}/{high,low}/<image_id>.jpg` symlinks to the
downloaded images (e.g. by github.com/mtobeiyf/ava_downloader), ready for
`run_experiments(train_dir=<out>/train, validation_dir=<out>/validation,
test_dir=<out>/test)`.
"""

import os

import numpy as np

from keras.utils.fcn_image_split import stratified_split


def read_vote_counts(ava_txt):
    """`{image_id: the 10 vote counts (int array)}` from AVA.txt, in its
    order; images without any vote are left out."""
    if not os.path.isfile(ava_txt):
        raise ValueError(
            f"No AVA.txt at {ava_txt!r}. It comes with the AVA dataset (e.g. "
            "github.com/mtobeiyf/ava_downloader's AVA_dataset/AVA.txt); pass "
            "its path."
        )
    votes = {}
    with open(ava_txt) as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 12:
                raise ValueError(
                    f"{ava_txt}:{number} has {len(fields)} fields; AVA.txt lines "
                    "hold an index, an image id and 10 vote counts (then tags "
                    f"and a challenge id). Received: {line.strip()!r}"
                )
            try:
                counts = np.asarray([int(v) for v in fields[2:12]])
            except ValueError:
                counts = None
            if counts is None or counts.min() < 0:
                raise ValueError(
                    f"{ava_txt}:{number}: the vote counts (fields 3 to 12) must "
                    "be whole numbers >= 0; is this AVA.txt? Received: "
                    f"{line.strip()!r}"
                )
            if counts.sum() > 0:
                votes[fields[1]] = counts
    return votes


def mean_score(counts):
    """The mean of the scores 1 to 10 voted `counts` times."""
    return float(counts @ np.arange(1, 11) / counts.sum())


def read_mean_scores(ava_txt):
    """`{image_id: mean score}` from AVA.txt."""
    return {
        image_id: mean_score(counts)
        for image_id, counts in read_vote_counts(ava_txt).items()
    }


def make_two_class_ava(
    ava_txt,
    image_dir,
    out_dir,
    *,
    fraction=0.1,
    validation_fraction=0.1,
    test_fraction=0.2,
    seed=0,
):
    """Writes two-class AVA as train, validation and test class folders of
    symlinks.

    Each class is split on its own (stratified), seeded, with no image in
    two splits and at least one image of each class in each split
    (`fcn_image_split.stratified_split`, the experiments' own split).

    Args:
        ava_txt: path of AVA.txt.
        image_dir: folder with the downloaded `<image_id>.jpg` files; ids
            without a file are left out (the downloads are never complete).
        out_dir: where `train/`, `validation/` and `test/` go (created). A
            folder holding another split is refused, not mixed.
        fraction: the top and bottom fraction by mean score.
        validation_fraction: share of each class for validation (model
            selection).
        test_fraction: share of each class held out for testing.
        seed: seeds the split.

    Returns:
        `{(split, label): count}`.
    """
    if not 0 < fraction <= 0.5:
        raise ValueError(
            f"`fraction` must be in (0, 0.5]. Received: fraction={fraction}"
        )
    for name, value in (
        ("validation_fraction", validation_fraction),
        ("test_fraction", test_fraction),
    ):
        if not 0 < value < 1:
            raise ValueError(
                f"`{name}` must be in (0, 1). Received: {name}={value}"
            )
    if validation_fraction + test_fraction >= 1:
        raise ValueError(
            "`validation_fraction + test_fraction` must leave images for "
            f"training. Received: validation_fraction={validation_fraction}, "
            f"test_fraction={test_fraction}"
        )
    scores = read_mean_scores(ava_txt)
    available = sorted(
        (score, image_id)
        for image_id, score in scores.items()
        if os.path.isfile(os.path.join(image_dir, f"{image_id}.jpg"))
    )
    if not available:
        raise ValueError(
            f"None of the {len(scores)} images of {ava_txt} is in {image_dir} "
            "as <image_id>.jpg; download them first (e.g. mtobeiyf/ava_downloader)."
        )
    count = max(1, int(len(available) * fraction))
    if count < 3:
        raise ValueError(
            f"{count} image(s) per class: train, validation and test need at "
            f"least 3. Download more images or raise `fraction`. Received: "
            f"{len(available)} downloaded images, fraction={fraction}"
        )
    classes = {"low": available[:count], "high": available[-count:]}
    ids = [image_id for label in classes for _, image_id in classes[label]]
    labels = np.repeat(np.arange(len(classes)), count)
    rest, test = stratified_split(labels, test_fraction, seed)
    train, validation = stratified_split(
        labels[rest], validation_fraction / (1 - test_fraction), seed
    )
    chosen = {"train": rest[train], "validation": rest[validation], "test": test}
    plan = {
        os.path.join(out_dir, split, label, f"{ids[i]}.jpg"): ids[i]
        for split, indices in chosen.items()
        for i in indices
        for label in [list(classes)[labels[i]]]
    }
    refuse_other_split(out_dir, plan)
    counts = {}
    for link, image_id in plan.items():
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if not os.path.lexists(link):
            os.symlink(
                os.path.abspath(os.path.join(image_dir, f"{image_id}.jpg")), link
            )
        key = tuple(os.path.relpath(link, out_dir).split(os.sep)[:2])
        counts[key] = counts.get(key, 0) + 1
    return counts


def refuse_other_split(out_dir, plan):
    """Raises if `out_dir` holds a file that `plan` does not put there (a
    split made with other settings): mixing the two would leak images."""
    for split in ("train", "validation", "test"):
        for root, _, files in os.walk(os.path.join(out_dir, split)):
            for name in files:
                path = os.path.join(root, name)
                if path not in plan:
                    raise ValueError(
                        f"{out_dir} already holds another split ({path} is not "
                        "in this one); remove the folder or choose another "
                        f"out_dir. Received: out_dir={out_dir!r}"
                    )
