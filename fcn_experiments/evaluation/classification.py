"""A classification experiment's test: per-image class probabilities
(`test_predictions.csv`) and the statistics built on them: each accuracy's
Wilson interval, and McNemar's test of each experiment against #1 on the
same test images."""

import csv
import math
import os

import numpy as np

from fcn_experiments.evaluation.accuracy_statistics import mcnemar_exact
from fcn_experiments.evaluation.accuracy_statistics import wilson_interval
from fcn_experiments.evaluation.per_class import per_class_accuracy
from fcn_experiments.evaluation.predictions import PREDICTIONS_FILE
from fcn_experiments.evaluation.predictions import predict_in_file_order
from fcn_experiments.evaluation.predictions import read_each
from fcn_experiments.evaluation.predictions import scored_paths

# Keras' crossentropy clips probabilities to [eps, 1 - eps].
EPSILON = 1e-7


def score_and_write(model, split, batch_size, folder):
    """Predicts the test split, writes `folder/test_predictions.csv` (one
    row per image: path, true class, predicted class, and the model's score
    per class; the scores of a max-pooled head need not sum to 1), and
    returns `{"accuracy", "loss", "correct", "images", "per_class"}`
    computed from those very predictions (loss as Keras' categorical
    crossentropy; `per_class` as `per_class.per_class_accuracy`).

    A file that failed to decode (`split.undecodable_paths`) has no
    prediction: it is left out of the file and the metrics, with a warning
    naming it; `images` is the number scored.

    Args:
        model: the model with its selected (best-on-validation) weights.
        split: the test `Split`; its dataset unbatched, in `file_paths`
            order.
        batch_size: images per forward pass.
        folder: the experiment's folder.
    """
    probabilities, labels = predict_in_file_order(
        model, split.dataset, batch_size
    )
    paths = scored_paths(split, len(labels))
    predicted = probabilities.argmax(axis=1)
    write_predictions(
        os.path.join(folder, PREDICTIONS_FILE),
        paths=paths,
        class_names=split.class_names,
        labels=labels,
        predicted=predicted,
        probabilities=probabilities,
    )
    # As Keras' crossentropy: scores renormalised to sum to 1 (a max-pooled
    # head's class scores, maxima over positions or crops, sum to >= 1).
    normalised = probabilities / probabilities.sum(axis=1, keepdims=True)
    picked = np.clip(normalised[np.arange(len(labels)), labels], EPSILON, 1)
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "loss": float(-np.mean(np.log(picked))),
        "correct": int(np.sum(predicted == labels)),
        "images": len(labels),
        "per_class": per_class_accuracy(labels, predicted, split.class_names),
    }


def write_predictions(
    path, *, paths, class_names, labels, predicted, probabilities
):
    """Writes `test_predictions.csv`: one row per test image, in order."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["path", "true_class", "predicted_class"]
            + [f"p_{name}" for name in class_names]
        )
        for path_, label, guess, probs in zip(
            paths, labels, predicted, probabilities
        ):
            writer.writerow(
                [path_, class_names[label], class_names[guess]]
                + [f"{p:.6f}" for p in probs]
            )
    os.replace(tmp, path)


def read_predictions(path):
    """`{path: correct}` of a `test_predictions.csv`."""
    with open(path, newline="") as f:
        return {
            row["path"]: row["true_class"] == row["predicted_class"]
            for row in csv.DictReader(f)
        }


def add_statistics(rows, output_dir, experiment_folder):
    """Adds to each result row the 95% Wilson interval of its test accuracy
    (`test_ci_low`, `test_ci_high`) and the exact McNemar p-value against
    experiment #1 on the same images (`mcnemar_p_vs_1`; empty when #1 is
    not among the rows, or the test images differ).

    Args:
        rows: result dicts with `experiment`, `test_accuracy`, `test_images`.
        output_dir: the run's output folder.
        experiment_folder: function of an experiment number giving its
            folder name.

    Returns:
        `rows`, updated in place.
    """
    outcomes = read_each(rows, output_dir, experiment_folder, read_predictions)
    reference = outcomes.get(1)
    for row in rows:
        n = int(row["test_images"])
        correct = int(round(float(row["test_accuracy"]) * n))
        row["test_ci_low"], row["test_ci_high"] = wilson_interval(correct, n)
        row["mcnemar_p_vs_1"] = ""
        mine = outcomes.get(row["experiment"])
        if reference is None or mine is None or set(mine) != set(reference):
            continue
        if row["experiment"] == 1:
            row["mcnemar_p_vs_1"] = 1.0
            continue
        order = sorted(reference)
        p, _, _ = mcnemar_exact(
            [reference[k] for k in order], [mine[k] for k in order]
        )
        row["mcnemar_p_vs_1"] = p
    return rows


def format_p(value):
    """A p-value for tables: 3 significant digits, '' when missing."""
    if value == "" or value is None:
        return ""
    value = float(value)
    if math.isnan(value):
        return ""
    return f"{value:.3g}" if value >= 1e-4 else f"{value:.1e}"
