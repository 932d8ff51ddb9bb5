"""Scored images written out: the scores CSV and a markdown table."""

import csv
import os

import numpy as np


def csv_header(class_names, heatmaps=False):
    header = ["path", "width", "height", "predicted_class"]
    header += [f"p_{name}" for name in class_names]
    header += ["scales", "error"]
    return header + (["heatmap"] if heatmaps else [])


def write_scores_csv(path, scores, class_names, scales, *, heatmaps=False):
    """The scores CSV: one row per `ImageScore`, in input order."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    scales_text = " ".join(f"{s:g}" for s in scales)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(csv_header(class_names, heatmaps))
        for row in scores:
            if row.probabilities is None:
                cells = [row.path, row.width or "", row.height or "", ""]
                cells += [""] * len(class_names) + ["", row.error]
            else:
                cells = [
                    row.path,
                    row.width,
                    row.height,
                    class_names[int(np.argmax(row.probabilities))],
                ]
                cells += [f"{p:.6f}" for p in row.probabilities]
                cells += [scales_text, ""]
            writer.writerow(cells + ([row.heatmap] if heatmaps else []))


def scores_markdown(scores, class_names):
    """A markdown table of `ImageScore`s: file, size, class, probabilities."""
    lines = [
        "| image | size | predicted | "
        + " | ".join(f"p({name})" for name in class_names)
        + " |",
        "|---" * (3 + len(class_names)) + "|",
    ]
    for row in scores:
        name = os.path.basename(row.path)
        if row.probabilities is None:
            cells = [name, "", f"error: {row.error}"] + [""] * len(class_names)
        else:
            cells = [
                name,
                f"{row.width}x{row.height}",
                class_names[int(np.argmax(row.probabilities))],
            ] + [f"{p:.3f}" for p in row.probabilities]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
