"""Scored images written out: the scores CSV and a markdown table.

Classification: path, size, the predicted class and each class's
probability. Score models: path, size, the score, and for distributions the
standard deviation and each bin's probability (the task's cells:
`Task.csv_cells`, `Task.markdown_cells`).
"""

import csv
import os

from fcn_experiments import tasks


def csv_header(class_names, heatmaps=False, task=None):
    header = ["path", "width", "height"]
    header += tasks.get(task).csv_columns(class_names)
    header += ["scales", "error"]
    return header + (["heatmap"] if heatmaps else [])


def _result_cells(row, class_names, task):
    """The cells between height and scales; empty for a failed image."""
    if not row.scored:
        return [""] * (len(csv_header(class_names, task=task)) - 5)
    return tasks.get(task).csv_cells(row, class_names)


def write_scores_csv(
    path, scores, class_names, scales, *, heatmaps=False, task=None
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
    """The task `predict_images` scored `scores` for (each `ImageScore`
    names it); the default where there are none."""
    return scores[0].task if scores else tasks.DEFAULT


def scores_markdown(scores, class_names, task=None):
    """A markdown table of `ImageScore`s: file, size, class and
    probabilities (score models: score, and a distribution's std and bin
    probabilities). `task` defaults to `task_of(scores)`."""
    task = tasks.get(task or task_of(scores))
    names = task.markdown_columns(class_names)
    lines = [
        "| image | size | " + " | ".join(names) + " |",
        "|---" * (2 + len(names)) + "|",
    ]
    for row in scores:
        name = os.path.basename(row.path)
        if not row.scored:
            cells = [name, "", f"error: {row.error}"] + [""] * (len(names) - 1)
        else:
            cells = [name, f"{row.width}x{row.height}"]
            cells += task.markdown_cells(row, class_names)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
