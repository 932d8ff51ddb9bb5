"""The PNG figures of a regression or distribution run: SRCC by experiment
with its intervals, and predicted against true scores per experiment."""

import math
import os

import numpy as np
from matplotlib.figure import Figure

from fcn_experiments.evaluation.predictions import PREDICTIONS_FILE
from fcn_experiments.evaluation.scores import read_scores
from fcn_experiments.models.experiments import get_experiment

SRCC_PNG = "srcc_by_experiment.png"
SCATTER_PNG = "predicted_vs_true.png"


def _label(row):
    return f"#{row['experiment']} {row['name']}"


def _errors(rows, field):
    """`yerr` of `field`'s bootstrap intervals (0 where NaN)."""
    errors = []
    for row in rows:
        value = float(row[field])
        low, high = float(row[f"{field}_low"]), float(row[f"{field}_high"])
        errors.append(
            [0, 0] if math.isnan(low) else [value - low, high - value]
        )
    return np.array(errors).T.clip(min=0)


def srcc_chart(rows, path):
    """Bars of test SRCC per experiment with their bootstrap 95% intervals,
    PLCC as dots."""
    figure = Figure(figsize=(9, 4.5), layout="constrained")
    ax = figure.add_subplot()
    x = np.arange(len(rows))
    srcc = np.array([float(row["test_srcc"]) for row in rows])
    ax.bar(
        x,
        np.nan_to_num(srcc),
        yerr=_errors(rows, "test_srcc"),
        capsize=4,
        color="tab:blue",
        label="test SRCC (best-on-validation model), 95% bootstrap interval",
    )
    ax.plot(
        x,
        [float(row["test_plcc"]) for row in rows],
        "o",
        color="tab:orange",
        label="test PLCC",
    )
    for xi, value in zip(x, srcc):
        if not math.isnan(value):
            ax.text(xi, max(value, 0) / 2, f"{value:.2f}", ha="center",
                    va="center", color="white", fontsize=8)
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.set_xticks(x, [_label(row) for row in rows], rotation=30, ha="right")
    ax.set_ylim(min(0, np.nanmin(srcc, initial=0) - 0.1), 1.08)
    ax.set_ylabel("correlation with the true scores")
    ax.set_title(
        f"SRCC by experiment ({rows[0]['model']}, weights: {rows[0]['weights']})"
    )
    ax.legend(loc="lower right", fontsize=8)
    figure.savefig(path, dpi=110)
    return path


def scatter_plots(rows, output_dir, path):
    """Predicted against true test scores, one panel per experiment."""
    columns = min(3, len(rows))
    lines = (len(rows) + columns - 1) // columns
    figure = Figure(figsize=(4 * columns, 3.6 * lines), layout="constrained")
    axes = np.atleast_1d(figure.subplots(lines, columns, squeeze=False)).ravel()
    for ax in axes[len(rows):]:
        ax.axis("off")
    for ax, row in zip(axes, rows):
        folder = os.path.join(output_dir, get_experiment(row["experiment"]).folder)
        scores = read_scores(os.path.join(folder, PREDICTIONS_FILE))
        true, predicted = np.array(list(scores.values())).T
        ax.scatter(true, predicted, s=6, alpha=0.5)
        low, high = min(true.min(), predicted.min()), max(true.max(), predicted.max())
        ax.plot([low, high], [low, high], color="gray", linestyle="--",
                linewidth=0.8)
        ax.set(xlabel="true score", ylabel="predicted score")
        ax.set_title(
            f"{_label(row)}: SRCC {float(row['test_srcc']):.3f}", fontsize=9
        )
    figure.savefig(path, dpi=90)
    return path
