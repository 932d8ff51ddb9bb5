"""A seeded, stratified split of a file list into training and validation.

`fcn_image_dataset_from_directory` splits with it, and so can any code that
must know a split before loading it (the experiments framework records its
validation files): the split is a function of the labels, the fraction and
the seed only, so every caller gets the same one.
"""

import numpy as np


def stratified_split(labels, validation_split, seed):
    """Indices `(training, validation)` of a seeded split, per label.

    The members of each label (in the given order) are permuted by a
    generator seeded with `seed`, labels taken in sorted order; the first
    `round(validation_split * count)` go to validation, clipped to
    `[1, count - 1]` so that a label with 2 or more members has at least one
    in each subset (a label with 1 member stays in training).

    Args:
        labels: one label per file (any sortable values); equal labels
            give an unstratified seeded split.
        validation_split: float in (0, 1).
        seed: int.

    Returns:
        Two sorted int arrays that partition `range(len(labels))`.
    """
    if isinstance(validation_split, bool) or not isinstance(
        validation_split, (int, float)
    ) or not 0 < validation_split < 1:
        raise ValueError(
            "`validation_split` must be a float between 0 and 1. "
            f"Received: validation_split={validation_split!r}"
        )
    if seed is None or isinstance(seed, bool) or int(seed) != seed:
        raise ValueError(
            f"`seed` must be an integer. Received: seed={seed!r}"
        )
    labels = np.asarray(labels)
    rng = np.random.default_rng(int(seed))
    validation = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = len(members)
        take = int(np.clip(round(validation_split * count), 1, count - 1))
        if count >= 2:
            validation.append(rng.permutation(members)[:take])
    validation = np.sort(np.concatenate(validation or [np.zeros(0, int)]))
    training = np.setdiff1d(np.arange(len(labels)), validation)
    return training, validation
