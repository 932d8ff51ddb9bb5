"""What the experiments learn: classes, a score, or a score distribution.

- `"classification"`: folder-per-class data, a softmax over the classes,
  categorical crossentropy; the best epoch has the highest validation
  accuracy.
- `"regression"`: each split folder holds `scores.csv` (`filename,score`,
  filenames relative to the folder): one linear output, MSE or Huber.
- `"distribution"`: each split folder holds `distributions.csv`
  (`filename,p1,...,pK`: vote counts or probabilities over K ordered
  bins): a softmax over the K bins, the earth mover's distance as loss;
  the score is the distribution's mean over the bin values 1..K (AVA's
  1-10).

For both score tasks the FCN pools its per-position outputs as
`fcn_pooling` says (a distribution only by averaging, so that it stays a
distribution), `MultiCrop` pools the crops the same way, and the best
epoch has the lowest validation loss.
"""

import csv
import os

import numpy as np

from fcn_experiments.evaluation import score_statistics

TASKS = ("classification", "regression", "distribution")
TABLES = {"regression": "scores.csv", "distribution": "distributions.csv"}
REGRESSION_LOSSES = ("mse", "huber")
FILENAME_COLUMN = "filename"


def is_scored(task):
    """Whether `task` learns scores from tables (not classes from folders)."""
    return task in TABLES


def table_path(task, folder):
    return os.path.join(folder, TABLES[task])


def label_columns(task, folder):
    """The label columns of `folder`'s table: its header less `filename`.

    Raises:
        ValueError: no table, or the wrong number of columns for `task`.
    """
    path = table_path(task, folder)
    if not os.path.isfile(path):
        layout = (
            "filename,score" if task == "regression" else "filename,p1,...,pK"
        )
        raise ValueError(
            f"task={task!r} reads each split folder's {TABLES[task]} "
            f"({layout}, filenames relative to the folder), but {path} does "
            "not exist. Write it, or use task='classification' for "
            "folder-per-class data."
        )
    with open(path, newline="") as f:
        header = next(csv.reader(f), [])
    columns = [name.strip() for name in header if name.strip() != FILENAME_COLUMN]
    if FILENAME_COLUMN not in [name.strip() for name in header]:
        raise ValueError(
            f"{path} has no {FILENAME_COLUMN!r} column. Received: header={header}"
        )
    if task == "regression" and len(columns) != 1:
        raise ValueError(
            f"{path} must have one score column besides {FILENAME_COLUMN!r} "
            f"for task='regression' (use task='distribution' for several). "
            f"Received: header={header}"
        )
    if task == "distribution" and len(columns) < 2:
        raise ValueError(
            f"{path} must have two or more bin columns (p1,...,pK) besides "
            f"{FILENAME_COLUMN!r} for task='distribution'. Received: "
            f"header={header}"
        )
    return columns


def output_activation(task):
    return "linear" if task == "regression" else "softmax"


def loss(config):
    """The Keras loss `config.task` trains with."""
    if config.task == "classification":
        return "categorical_crossentropy"
    from fcn_experiments.tasks import losses as score_losses

    if config.task == "regression":
        return score_losses.regression_loss(config.regression_loss)
    return score_losses.EarthMoversDistance()


def metrics(task):
    if task == "classification":
        return ["accuracy"]
    if task == "regression":
        return ["mae"]
    return []


def selection(task):
    """`(validation log key, "max" or "min")` the best epoch is chosen by."""
    if task == "classification":
        return "val_accuracy", "max"
    return "val_loss", "min"


def plateau_monitor(task):
    """What ReduceLROnPlateau watches (training, as the original did)."""
    if task == "classification":
        return "accuracy", "max"
    return "loss", "min"


def multicrop_pooling(config):
    """How `MultiCrop` pools the crops: as the FCN pools positions (the
    max over crops for classes, as the original)."""
    if config.task == "classification":
        return "max"
    if config.task == "distribution":
        return "avg"
    return config.fcn_pooling


def mean_scores(task, values):
    """The score of each row of labels or predictions: the value itself
    (regression) or the distribution's mean over bins 1..K."""
    values = np.asarray(values, dtype="float64")
    if task == "regression":
        return values.reshape(len(values))
    return score_statistics.distribution_mean(normalised(values))


def normalised(values):
    """Rows divided by their sums (float32 softmax rows miss 1 slightly)."""
    values = np.asarray(values, dtype="float64")
    return values / values.sum(axis=1, keepdims=True)


def threshold(config, train_scores=None):
    """The score that splits "high" from "low" for the binary accuracy:
    `config.score_threshold`, else the middle of `config.score_range`, else
    the median training score."""
    if config.score_threshold is not None:
        return float(config.score_threshold)
    if config.score_range is not None:
        low, high = config.score_range
        return (float(low) + float(high)) / 2
    return float(np.median(train_scores))
