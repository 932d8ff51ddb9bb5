"""Per-class numbers: image counts of each split and test accuracy by class."""

import math

import numpy as np


def per_class_accuracy(y_true, y_pred, class_names):
    """`{class: {"correct": k, "count": n, "accuracy": k / n}}` (accuracy
    NaN for a class with no images).

    Args:
        y_true: true class indices.
        y_pred: predicted class indices, same length.
        class_names: names of the indices 0, 1, ...
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            "`y_true` and `y_pred` must be 1-D and of one length. Received: "
            f"y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
        )
    if y_true.size and not 0 <= y_true.min() <= y_true.max() < len(class_names):
        raise ValueError(
            f"`y_true` holds indices outside the {len(class_names)} classes. "
            f"Received: class_names={list(class_names)}"
        )
    report = {}
    for index, name in enumerate(class_names):
        mine = y_true == index
        count, correct = int(mine.sum()), int((y_pred[mine] == index).sum())
        report[name] = {
            "correct": correct,
            "count": count,
            "accuracy": correct / count if count else math.nan,
        }
    return report


def counts_markdown(counts):
    """A markdown table of `{split: {class: count}}`: a row per class."""
    splits = list(counts)
    names = list(next(iter(counts.values())))
    lines = [
        "| class | " + " | ".join(splits) + " |",
        "|" + "|".join("---" for _ in range(len(splits) + 1)) + "|",
    ]
    for name in names:
        lines.append(
            f"| {name} | " + " | ".join(str(counts[s][name]) for s in splits) + " |"
        )
    lines.append(
        "| all | " + " | ".join(str(sum(counts[s].values())) for s in splits) + " |"
    )
    return "\n".join(lines)


def accuracy_markdown(rows):
    """A markdown table of the rows' test accuracy, overall and per class
    (`row["per_class_test"]` from `per_class_accuracy`); rows without
    per-class numbers are left out."""
    rows = [row for row in rows if row.get("per_class_test")]
    if not rows:
        return ""
    names = list(rows[0]["per_class_test"])
    lines = [
        "| # | experiment | test acc | " + " | ".join(names) + " |",
        "|" + "|".join("---" for _ in range(len(names) + 3)) + "|",
    ]
    for row in rows:
        cells = [
            "{accuracy:.4f} ({correct}/{count})".format(**row["per_class_test"][n])
            for n in names
        ]
        lines.append(
            f"| {row['experiment']} | {row['name']} | {row['test_accuracy']:.4f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def per_class_markdown(rows):
    """The per-class section of results.md: the split's counts and the test
    accuracy by class; empty when the rows carry neither."""
    counts = next((row["class_counts"] for row in rows if row.get("class_counts")), None)
    parts = []
    if counts:
        parts += ["## Images per class", "", counts_markdown(counts), ""]
    table = accuracy_markdown(rows)
    if table:
        parts += ["## Test accuracy per class (correct/images)", "", table, ""]
    return "\n".join(parts)
