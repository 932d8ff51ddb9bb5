"""Two-class AVA (the seed's and the paper's dataset) as class folders.

AVA (Murray et al., CVPR 2012) rates about 255,000 photos from 1 to 10; its
`AVA.txt` has one line per photo:

    index  image_id  n1 n2 ... n10  tag1 tag2  challenge_id

where `n1..n10` count the votes for each score. Two-class AVA is commonly
defined as the 10% of photos with the highest mean score (`high`) against
the 10% with the lowest (`low`). `make_two_class_ava` writes that split as
`<out>/{train,test}/{high,low}/<image_id>.jpg` symlinks to the downloaded
images (e.g. by github.com/mtobeiyf/ava_downloader), ready for
`run_experiments(train_dir=<out>/train, test_dir=<out>/test)`.
"""

import os

import numpy as np


def read_mean_scores(ava_txt):
    """`{image_id: mean score}` from AVA.txt."""
    scores = {}
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
            votes = np.asarray(fields[2:12], dtype=float)
            if votes.sum() > 0:
                scores[fields[1]] = float(
                    votes @ np.arange(1, 11) / votes.sum()
                )
    return scores


def make_two_class_ava(
    ava_txt, image_dir, out_dir, fraction=0.1, test_fraction=0.2, seed=0
):
    """Writes two-class AVA as class folders of symlinks.

    Args:
        ava_txt: path of AVA.txt.
        image_dir: folder with the downloaded `<image_id>.jpg` files; ids
            without a file are left out (the downloads are never complete).
        out_dir: where `train/` and `test/` go (created).
        fraction: the top and bottom fraction by mean score.
        test_fraction: share of each class held out for testing (validation
            is then split off train by the experiments).
        seed: seeds the train/test split.

    Returns:
        `{(split, label): count}`.
    """
    if not 0 < fraction <= 0.5:
        raise ValueError(
            f"`fraction` must be in (0, 0.5]. Received: fraction={fraction}"
        )
    if not 0 < test_fraction < 1:
        raise ValueError(
            f"`test_fraction` must be in (0, 1). Received: test_fraction={test_fraction}"
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
    classes = {"low": available[:count], "high": available[-count:]}
    rng = np.random.default_rng(seed)
    counts = {}
    for label, members in classes.items():
        ids = [image_id for _, image_id in members]
        ids = [ids[i] for i in rng.permutation(len(ids))]
        n_test = max(1, int(round(len(ids) * test_fraction)))
        for split, chosen in (("test", ids[:n_test]), ("train", ids[n_test:])):
            folder = os.path.join(out_dir, split, label)
            os.makedirs(folder, exist_ok=True)
            for image_id in chosen:
                link = os.path.join(folder, f"{image_id}.jpg")
                if not os.path.lexists(link):
                    os.symlink(
                        os.path.abspath(
                            os.path.join(image_dir, f"{image_id}.jpg")
                        ),
                        link,
                    )
            counts[(split, label)] = len(chosen)
    return counts
