"""Heatmap PNGs of scored images: an image's score map of one class over it."""

import os

from fcn_experiments import tasks

HEATMAP_MIN_SIDE = 256


def heatmap_name(path, used):
    """A PNG name for the image at `path`, not yet in `used` (added to it):
    its stem, numbered when two images share one."""
    stem = os.path.splitext(os.path.basename(path))[0]
    name, k = f"{stem}.png", 1
    while name in used:
        name, k = f"{stem}_{k}.png", k + 1
    used.add(name)
    return name


def heatmap_of(task, score_map, outputs, class_names):
    """What to draw for one image: `(score_map, class_index, title)`, as
    its task says (`Task.heatmap_of`): the map of the predicted class,
    titled with its name and probability; a regression's one output (the
    score at each position), titled `score <value>`; a distribution's
    per-position mean score, titled `score <mean> ± <std>`.

    Args:
        task: a name of `tasks.TASKS`.
        score_map: `(rows, cols, outputs)`, from `score_map.score_map_model`.
        outputs: the image's outputs averaged over the scales (probabilities
            for classes and distributions, the raw score for regression).
        class_names: the names of the outputs.
    """
    return tasks.get(task).heatmap_of(score_map, outputs, class_names)


def save_heatmap(path, *, image, score_map, class_index, title):
    """Writes `image` with `score_map`'s class `class_index` over it, and
    `title` above, as a PNG at least `HEATMAP_MIN_SIDE` pixels on a side."""
    from matplotlib.figure import Figure

    import keras

    rows, cols = image.shape[:2]
    # Small model inputs are drawn larger (the overlay interpolates).
    zoom = max(1.0, HEATMAP_MIN_SIDE / min(rows, cols))
    width, height = cols * zoom, rows * zoom
    figure = Figure(figsize=(width / 100, (height + 30) / 100), dpi=100)
    ax = figure.add_axes((0, 0, 1, height / (height + 30)))
    keras.visualization.overlay_score_map(
        image.astype("uint8"), score_map, int(class_index), ax=ax
    )
    figure.text(0.5, 1, title, ha="center", va="top", fontsize=8)
    figure.savefig(path)
