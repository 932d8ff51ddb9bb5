"""Per-image test scores of a regression or distribution experiment
(`test_predictions.csv`) and the statistics built on them: SRCC, PLCC,
KRCC, RMSE and the binary accuracy at a threshold, each with a bootstrap
95% interval, and each experiment's SRCC against #1's by a paired
bootstrap on the same test images (in place of McNemar's test, which is
for right/wrong outcomes).

The intervals come from `score_statistics` (2000 resamples, seed 0: the
same images drawn for every metric and, in the paired test, for both
experiments). The test images of the bundled dataset are crops of a few
photos, so they are correlated; the intervals assume they are not.
"""

import csv
import math
import os
import warnings

import numpy as np

import keras

from fcn_experiments.evaluation import score_statistics
from fcn_experiments.evaluation.predictions import PREDICTIONS_FILE
from fcn_experiments.evaluation.predictions import predict_with_labels
from fcn_experiments.evaluation.predictions import read_each
from fcn_experiments.evaluation.predictions import scored_paths

METRICS = ("srcc", "plcc", "krcc", "rmse", "accuracy")
RESAMPLES = 2000
SEED = 0


def metric_fields(metric):
    """The result fields of one metric: estimate, interval low and high."""
    name = "threshold_accuracy" if metric == "accuracy" else metric
    return f"test_{name}", f"test_{name}_low", f"test_{name}_high"


def score_and_write(model, split, *, batch_size, folder, task, threshold, loss):
    """Predicts the test split, writes `folder/test_predictions.csv` and
    returns the test metrics computed from those very predictions.

    Rows: path, true and predicted score (a distribution's mean over bins
    1..K), and for distributions the true and predicted standard deviation,
    the image's EMD (r=2) and the predicted probability of each bin. A file
    that failed to decode is left out, with a warning naming it.

    Args:
        model: the model with its best-on-validation weights.
        split: the test `Split` (unbatched, in `file_paths` order).
        batch_size: images per forward pass.
        folder: the experiment's folder.
        task: the run's score `Task` (`mean_scores`, `extra_predictions`).
        threshold: the binary accuracy's boundary (`Task.threshold`).
        loss: the Keras loss it trained with (the test loss is the same).

    Returns:
        `{"loss", "images", "threshold", <metric fields>, "emd"}`.
    """
    outputs, labels = predict_with_labels(model, split.dataset, batch_size)
    paths = scored_paths(split, len(labels))
    true = task.mean_scores(labels)
    predicted = task.mean_scores(outputs)
    columns = {"path": paths, "true_score": true, "predicted_score": predicted}
    extra, measured = task.extra_predictions(labels, outputs, split.class_names)
    columns.update(extra)
    _write_predictions(os.path.join(folder, PREDICTIONS_FILE), columns)
    test_loss = keras.ops.convert_to_numpy(
        loss(
            keras.ops.convert_to_tensor(labels.astype("float32")),
            keras.ops.convert_to_tensor(outputs.astype("float32")),
        )
    )
    measured.update(
        loss=float(test_loss),
        images=len(paths),
        threshold=float(threshold),
        **metrics_with_intervals(true, predicted, threshold),
    )
    return measured


def metrics_with_intervals(true, predicted, threshold):
    """`{field: value}` of every metric and its bootstrap interval.

    A model that gives every test image the same score has no rank or
    linear correlation: those fields are NaN, with a warning, and RMSE and
    the accuracy are still measured.
    """
    metrics = METRICS
    if np.unique(predicted).size < 2 or np.unique(true).size < 2:
        warnings.warn(
            "The model predicts the same score for every test image (or "
            "the test scores are all equal): SRCC, PLCC and KRCC are "
            "undefined and reported as NaN. The training log shows whether "
            "it learned; try more epochs or another learning rate.",
            stacklevel=3,
        )
        metrics = ("rmse", "accuracy")
    intervals = score_statistics.bootstrap_intervals(
        true,
        predicted,
        metrics=metrics,
        threshold=threshold,
        n_resamples=RESAMPLES,
        seed=SEED,
    )
    fields = {}
    for metric in METRICS:
        estimate, low, high = metric_fields(metric)
        interval = intervals.get(metric)
        fields[estimate] = interval.estimate if interval else math.nan
        fields[low] = interval.low if interval else math.nan
        fields[high] = interval.high if interval else math.nan
    return fields


def _write_predictions(path, columns):
    names = list(columns)
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for i in range(len(columns["path"])):
            writer.writerow(
                [columns["path"][i]]
                + [f"{float(columns[name][i]):.6f}" for name in names[1:]]
            )
    os.replace(tmp, path)


def read_scores(path):
    """`{path: (true score, predicted score)}` of a `test_predictions.csv`."""
    with open(path, newline="") as f:
        return {
            row["path"]: (float(row["true_score"]), float(row["predicted_score"]))
            for row in csv.DictReader(f)
        }


def add_statistics(rows, output_dir, experiment_folder):
    """Adds to each row the paired bootstrap interval of its SRCC minus
    #1's on the same test images (`srcc_diff_vs_1`, `_low`, `_high`; empty
    when #1 is not among the rows, the images differ, or a model's scores
    are constant).

    Returns:
        `rows`, updated in place.
    """
    scores = read_each(rows, output_dir, experiment_folder, read_scores)
    reference = scores.get(1)
    for row in rows:
        row["srcc_diff_vs_1"] = row["srcc_diff_low"] = row["srcc_diff_high"] = ""
        mine = scores.get(row["experiment"])
        if reference is None or mine is None or set(mine) != set(reference):
            continue
        if row["experiment"] == 1:
            row["srcc_diff_vs_1"] = row["srcc_diff_low"] = row["srcc_diff_high"] = 0.0
            continue
        order = sorted(reference)
        true = [reference[k][0] for k in order]
        try:
            difference = score_statistics.paired_bootstrap_difference(
                true,
                [mine[k][1] for k in order],
                [reference[k][1] for k in order],
                metric="srcc",
                n_resamples=RESAMPLES,
                seed=SEED,
            )
        except ValueError:  # A constant model: no SRCC to compare.
            continue
        row["srcc_diff_vs_1"] = difference.estimate
        row["srcc_diff_low"] = difference.low
        row["srcc_diff_high"] = difference.high
    return rows
