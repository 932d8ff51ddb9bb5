"""Heatmap PNGs of scored images: an image's score map of one class over it."""

import os

import numpy as np

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
    """What to draw for one image: `(score_map, class_index, title)`.

    - classification: the map of the predicted class, titled with its name
      and probability;
    - regression: the map of the one output (the score at each position),
      titled `score <value>`;
    - distribution: the per-position mean score (each position's
      distribution over the bins, normalized, its mean over the bin values
      1..K), titled `score <mean> ± <std>`. Its average over positions is
      not exactly the image's score: the FCN averages logits before the
      softmax.

    Args:
        task: `tasks.TASKS`.
        score_map: `(rows, cols, outputs)`, from `score_map.score_map_model`.
        outputs: the image's outputs averaged over the scales (probabilities
            for classes and distributions, the raw score for regression).
        class_names: the names of the outputs.
    """
    from fcn_experiments.evaluation import score_statistics

    if task == "regression":
        return score_map, 0, f"score {float(outputs[0]):.3f}"
    if task == "distribution":
        p = np.asarray(score_map, dtype="float64")
        p = p / np.maximum(p.sum(axis=-1, keepdims=True), 1e-12)
        means = score_statistics.distribution_mean(p)[..., None]
        mean = score_statistics.distribution_mean(outputs)
        std = score_statistics.distribution_std(outputs)
        return means, 0, f"score {mean:.2f} ± {std:.2f}"
    predicted = int(np.argmax(outputs))
    return (
        score_map,
        predicted,
        f"{class_names[predicted]} {outputs[predicted]:.2f}",
    )


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
