"""Scored images written out: the scores CSV and a markdown table.

Classification: path, size, the predicted class and each class's
probability. Score models (`tasks`): path, size, the score, and for
distributions the standard deviation and each bin's probability.
"""

import csv
import os

import numpy as np

from fcn_experiments.tasks import base as tasks


def csv_header(class_names, heatmaps=False, task="classification"):
    header = ["path", "width", "height"]
    if tasks.is_scored(task):
        header += ["score"]
        if task == "distribution":
            header += ["std"] + [f"p_{name}" for name in class_names]
    else:
        header += ["predicted_class"] + [f"p_{name}" for name in class_names]
    header += ["scales", "error"]
    return header + (["heatmap"] if heatmaps else [])


def _result_cells(row, class_names, task):
    """The cells between height and scales; empty for a failed image."""
    if not row.scored:
        return [""] * (len(csv_header(class_names, task=task)) - 5)
    if task == "classification":
        return [class_names[int(np.argmax(row.probabilities))]] + [
            f"{p:.6f}" for p in row.probabilities
        ]
    cells = [f"{row.score:.6f}"]
    if task == "distribution":
        cells += [f"{row.std:.6f}"] + [f"{p:.6f}" for p in row.probabilities]
    return cells


def write_scores_csv(
    path, scores, class_names, scales, *, heatmaps=False, task="classification"
):
    """The scores CSV: one row per `ImageScore`, in input order."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    scales_text = " ".join(f"{s:g}" for s in scales)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(csv_header(class_names, heatmaps, task))
        for row in scores:
            if not row.scored:
                cells = [row.path, row.width or "", row.height or ""]
                cells += _result_cells(row, class_names, task) + ["", row.error]
            else:
                cells = [row.path, row.width, row.height]
                cells += _result_cells(row, class_names, task)
                cells += [scales_text, ""]
            writer.writerow(cells + ([row.heatmap] if heatmaps else []))


def task_of(scores):
    """The task `predict_images` scored `scores` for, read from them: a
    score without probabilities is regression's, with them a
    distribution's; classification where no row has a score."""
    for row in scores:
        if row.score is not None:
            return "regression" if row.probabilities is None else "distribution"
    return "classification"


def scores_markdown(scores, class_names, task=None):
    """A markdown table of `ImageScore`s: file, size, class and
    probabilities (score models: score, and a distribution's std and bin
    probabilities). `task` defaults to `task_of(scores)`."""
    task = task or task_of(scores)
    if task == "regression":
        names = ["score"]
    elif task == "distribution":
        names = ["score", "std"] + [f"p({name})" for name in class_names]
    else:
        names = ["predicted"] + [f"p({name})" for name in class_names]
    lines = [
        "| image | size | " + " | ".join(names) + " |",
        "|---" * (2 + len(names)) + "|",
    ]
    for row in scores:
        name = os.path.basename(row.path)
        if not row.scored:
            cells = [name, "", f"error: {row.error}"] + [""] * (len(names) - 1)
        elif task == "classification":
            cells = [
                name,
                f"{row.width}x{row.height}",
                class_names[int(np.argmax(row.probabilities))],
            ] + [f"{p:.3f}" for p in row.probabilities]
        else:
            cells = [name, f"{row.width}x{row.height}", f"{row.score:.3f}"]
            if task == "distribution":
                cells += [f"{row.std:.3f}"]
                cells += [f"{p:.3f}" for p in row.probabilities]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
