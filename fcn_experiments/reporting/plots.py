"""The PNG figures of a run: its task's figures (`Task.figures`: accuracy
by experiment, or SRCC by experiment and predicted against true scores),
training curves, and the score map of the best FCN on test_image.jpg."""

import os

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from fcn_experiments.models.experiments import get_experiment
from fcn_experiments.models.score_map import score_map_model
from fcn_experiments.reporting import score_plots
from fcn_experiments.training import records

ACCURACY_PNG = "accuracy_by_experiment.png"
CURVES_PNG = "training_curves.png"
SCORE_MAP_PNG = "score_map.png"
TEST_IMAGE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "test_image.jpg"
)


def _label(row):
    return f"#{row['experiment']} {row['name']}"


def _interval_errors(rows):
    """Matplotlib's `yerr` of the test accuracies' Wilson intervals, or None
    when the rows do not have them."""
    if not all("test_ci_low" in row for row in rows):
        return None
    return np.array(
        [
            [row["test_accuracy"] - row["test_ci_low"] for row in rows],
            [row["test_ci_high"] - row["test_accuracy"] for row in rows],
        ]
    ).clip(min=0)


def accuracy_chart(rows, path, num_classes):
    """Bars of test accuracy per experiment with their 95% Wilson
    intervals, validation accuracy as dots."""
    figure = Figure(figsize=(9, 4.5), layout="constrained")
    ax = figure.add_subplot()
    x = np.arange(len(rows))
    test = [row["test_accuracy"] for row in rows]
    ax.bar(
        x,
        test,
        yerr=_interval_errors(rows),
        capsize=4,
        color="tab:blue",
        label="test accuracy (best-on-validation model), 95% interval",
    )
    ax.plot(
        x,
        [row["val_accuracy"] for row in rows],
        "o",
        color="tab:orange",
        label="best validation accuracy",
    )
    ax.axhline(1.0 / num_classes, color="gray", linestyle="--", label="chance")
    for xi, value in zip(x, test):
        ax.text(
            xi,
            value / 2,
            f"{value:.2f}",
            ha="center",
            va="center",
            color="white",
            fontsize=8,
        )
    ax.set_xticks(x, [_label(row) for row in rows], rotation=30, ha="right")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("accuracy")
    ax.set_title(
        f"Accuracy by experiment ({rows[0]['model']}, weights: {rows[0]['weights']})"
    )
    ax.legend(loc="lower right", fontsize=8)
    figure.savefig(path, dpi=110)
    return path


def training_curves(rows, output_dir, path, task):
    """Validation accuracy (score tasks: validation loss) and training loss
    per epoch, one line per experiment, from the experiments' CSV logs."""
    metric = task.selection[0]
    title = metric.replace("val_", "validation ")
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    acc_ax, loss_ax = figure.subplots(1, 2)
    for row in rows:
        folder = os.path.join(
            output_dir, get_experiment(row["experiment"]).folder
        )
        log = records.read_log(folder)
        epochs = [int(r["epoch"]) + 1 for r in log]
        acc_ax.plot(
            epochs,
            [float(r[metric]) for r in log],
            marker=".",
            label=_label(row),
        )
        loss_ax.plot(
            epochs,
            [float(r["loss"]) for r in log],
            marker=".",
            label=_label(row),
        )
    acc_ax.set(xlabel="epoch", ylabel=title, title=title.capitalize())
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="Training loss")
    loss_ax.legend(fontsize=7, loc="upper right")
    figure.savefig(path, dpi=110)
    return path


def score_map_figure(
    mapper, preprocess, class_names, path, *, title, image_path=TEST_IMAGE,
    panels=None,
):
    """Overlays the FCN's score map on `image_path` (at full resolution).

    `mapper` is a `score_map.score_map_model`: scores and score map.
    `panels`, if given, is `f(image, class_names)` giving more `(title,
    pixels)` to show (the bundled data: the image with its right half
    degraded).

    Shows a class named `degraded` where there is one, else the class the
    FCN predicts for the whole image.
    """
    from keras.visualization import overlay_score_map

    with Image.open(image_path) as f:
        image = np.asarray(f.convert("RGB"))
    panels = [("test_image.jpg", image)] + (
        panels(image, class_names) if panels else []
    )
    columns = min(2, len(panels))
    rows = (len(panels) + columns - 1) // columns
    figure = Figure(figsize=(6 * columns, 4.2 * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for ax in axes[len(panels) :]:
        ax.axis("off")
    for ax, (name, pixels) in zip(axes, panels):
        batch = preprocess(pixels[None].astype("float32"))
        score_map = np.asarray(mapper.predict(batch, verbose=0)[1])[0]
        if "degraded" in class_names:
            index = class_names.index("degraded")
        else:
            index = int(np.argmax(score_map.mean(axis=(0, 1))))
        overlay_score_map(pixels, score_map, index, ax=ax)
        ax.set_title(f"{name}: score map of '{class_names[index]}'", fontsize=9)
        ax.axis("off")
    figure.suptitle(title, fontsize=10)
    figure.savefig(path, dpi=80)
    return path


FIGURES = {
    "accuracy_chart": lambda rows, out, class_names: accuracy_chart(
        rows, os.path.join(out, ACCURACY_PNG), len(class_names)
    ),
    "srcc_chart": lambda rows, out, class_names: score_plots.srcc_chart(
        rows, os.path.join(out, score_plots.SRCC_PNG)
    ),
    "scatter_plots": lambda rows, out, class_names: score_plots.scatter_plots(
        rows, out, os.path.join(out, score_plots.SCATTER_PNG)
    ),
}


def make_all(rows, config, class_names, *, best_model=None, panels=None):
    """Writes the run's figures into `config.output_dir`; returns their paths.

    Args:
        rows: the run's result rows.
        config: the run's `Config` (its task names the figures).
        class_names: the model's output names.
        best_model: `(ModelSource, row)` of the FCN experiment best on
            validation (model selection on validation, never on test),
            loaded from its `best.keras`; None: no score map.
        panels: more panels of the score map figure (`score_map_figure`).
    """
    out = config.output_dir
    task = config.task_spec
    paths = [FIGURES[name](rows, out, class_names) for name in task.figures]
    paths.append(training_curves(rows, out, os.path.join(out, CURVES_PNG), task))
    if best_model is None:
        return paths
    source, row = best_model
    experiment = get_experiment(row["experiment"])
    value = float(row.get(task.summary_field, "nan") or "nan")
    title = (
        f"Score map of experiment #{experiment.number} ({experiment.title}; "
        f"best FCN on validation, {task.summary_title} {value:.2f})"
    )
    paths.append(
        score_map_figure(
            score_map_model(source.model),
            source.preprocess,
            class_names,
            os.path.join(out, SCORE_MAP_PNG),
            title=title,
            panels=panels,
        )
    )
    return paths
