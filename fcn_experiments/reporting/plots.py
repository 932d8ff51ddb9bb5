"""The PNG figures of a run: accuracy by experiment, training curves and the
score map of the best FCN on test_image.jpg."""

import os

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from fcn_experiments.data.bundled import CLASS_NAMES as BUNDLED_CLASS_NAMES
from fcn_experiments.data.bundled import DEGRADATIONS
from fcn_experiments.data.bundled import STRENGTHS
from fcn_experiments.data.bundled import degrade
from fcn_experiments.models.experiments import best_fcn_row
from fcn_experiments.models.experiments import build_experiment_model
from fcn_experiments.models.experiments import get_experiment
from fcn_experiments.models.experiments import inner_fcn
from fcn_experiments.models.experiments import preprocess_function
from fcn_experiments.models.score_map import score_map_model
from fcn_experiments.models.starting_weights import starting_weights_path
from fcn_experiments.reporting import score_plots
from fcn_experiments.tasks import base as tasks
from fcn_experiments.training import loop as training

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


def training_curves(rows, output_dir, path):
    """Validation accuracy (score tasks: validation loss) and training loss
    per epoch, one line per experiment, from the experiments' CSV logs."""
    metric = "val_accuracy"
    if rows and rows[0].get("task", "classification") != "classification":
        metric = "val_loss"
    title = metric.replace("val_", "validation ")
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    acc_ax, loss_ax = figure.subplots(1, 2)
    for row in rows:
        folder = os.path.join(
            output_dir, get_experiment(row["experiment"]).folder
        )
        log = training.read_log(folder)
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


def _panels(image, class_names):
    """(title, pixels) to show; for the bundled data, also the image with its
    right half degraded as the dataset's `degraded` class (at the factors
    at both ends of its range), to show where the FCN sees it."""
    panels = [("test_image.jpg", image)]
    if tuple(sorted(class_names)) == tuple(sorted(BUNDLED_CLASS_NAMES)):
        half = image.shape[1] // 2
        for kind in DEGRADATIONS:
            for strength in STRENGTHS[kind]:
                pixels = image.copy()
                pixels[:, half:] = degrade(image[:, half:], kind, strength)
                panels.append((f"right half: {kind} {strength}", pixels))
    return panels


def score_map_figure(
    mapper, preprocess, class_names, path, *, title, image_path=TEST_IMAGE
):
    """Overlays the FCN's score map on `image_path` (at full resolution).

    `mapper` is a `score_map.score_map_model`: scores and score map.

    Shows the `degraded` class for the bundled data, else the class the FCN
    predicts for the whole image.
    """
    from keras.visualization import overlay_score_map

    with Image.open(image_path) as f:
        image = np.asarray(f.convert("RGB"))
    panels = _panels(image, class_names)
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


def make_all(rows, config, class_names, strategy):
    """Writes the three figures into `config.output_dir`; returns their paths.

    The score map uses the FCN experiment with the best validation accuracy
    (model selection on validation, never on test).
    """
    out = config.output_dir
    if tasks.is_scored(config.task):
        paths = [
            score_plots.srcc_chart(rows, os.path.join(out, score_plots.SRCC_PNG)),
            score_plots.scatter_plots(
                rows, out, os.path.join(out, score_plots.SCATTER_PNG)
            ),
        ]
        result = "test SRCC {srcc:.2f}"
    else:
        paths = [
            accuracy_chart(
                rows, os.path.join(out, ACCURACY_PNG), len(class_names)
            )
        ]
        result = "test accuracy {test_accuracy:.2f}"
    paths.append(training_curves(rows, out, os.path.join(out, CURVES_PNG)))
    row = best_fcn_row(rows)
    if row is None:
        return paths
    experiment = get_experiment(row["experiment"])
    folder = os.path.join(out, experiment.folder)
    with strategy.scope():
        model = build_experiment_model(
            experiment,
            config,
            len(class_names),
            f"{starting_weights_path(config)}.weights.h5",
        )
        model.load_weights(
            os.path.join(folder, training.read_best(folder)["file"])
        )
    preprocess = preprocess_function(config)
    title = (
        f"Score map of experiment #{experiment.number} ({experiment.title}; "
        "best FCN on validation, "
        + result.format(
            srcc=float(row.get("test_srcc", "nan") or "nan"),
            test_accuracy=float(row.get("test_accuracy", "nan") or "nan"),
        )
        + ")"
    )
    paths.append(
        score_map_figure(
            score_map_model(inner_fcn(model)),
            preprocess,
            class_names,
            os.path.join(out, SCORE_MAP_PNG),
            title=title,
        )
    )
    return paths
