"""results.csv, results.md and the summary table printed at the end."""

import csv
import json
import os

from fcn_experiments.class_report import per_class_markdown
from fcn_experiments.scored_test_set import format_p

# (field, column title in the markdown and printed tables)
COLUMNS = (
    ("experiment", "#"),
    ("name", "experiment"),
    ("model", "model"),
    ("input_size", "input size"),
    ("resize_mode", "resize mode"),
    ("epochs", "epochs"),
    ("best_epoch", "best epoch"),
    ("val_accuracy", "val acc"),
    ("test_accuracy", "test acc"),
    ("test_ci", "95% interval"),
    ("mcnemar_p_vs_1", "p vs #1"),
    ("test_loss", "test loss"),
    ("train_images_per_s", "train img/s"),
    ("wall_time_s", "wall time s"),
    ("weights", "weights"),
)
EXTRA_FIELDS = (
    "test_ci_low",
    "test_ci_high",
    "recipe",
    "title",
    "train_images",
    "validation_images",
    "test_images",
    "classes",
    "mixed_precision",
    "precision_reason",
)
# Values of fields that rows finished before the field existed lack.
FIELD_DEFAULTS = {"mixed_precision": "float32", "precision_reason": ""}
# test_ci is shown (from test_ci_low/high), not stored.
FIELDS = (
    tuple(field for field, _ in COLUMNS if field != "test_ci") + EXTRA_FIELDS
)
FLOAT_FIELDS = (
    "val_accuracy",
    "test_accuracy",
    "test_ci_low",
    "test_ci_high",
    "test_loss",
    "train_images_per_s",
    "wall_time_s",
)
INT_FIELDS = (
    "experiment",
    "input_size",
    "epochs",
    "best_epoch",
    "train_images",
    "validation_images",
    "test_images",
)


def write_json_atomic(path, data):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def _format(field, value):
    if field == "mcnemar_p_vs_1":
        return format_p(value)
    if value is None:
        return ""
    if field in ("val_accuracy", "test_accuracy", "test_loss"):
        return f"{value:.4f}"
    if field in ("train_images_per_s", "wall_time_s"):
        return f"{value:.1f}"
    return str(value)


def write_results(rows, output_dir):
    """Writes `results.csv` and `results.md`; returns their paths."""
    csv_path = os.path.join(output_dir, "results.csv")
    md_path = os.path.join(output_dir, "results.md")
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, FIELD_DEFAULTS.get(k)) for k in FIELDS})
    with open(md_path, "w") as f:
        f.write(markdown_table(rows) + "\n")
        per_class = per_class_markdown(rows)
        if per_class:
            f.write("\n" + per_class)
    return csv_path, md_path


def read_results(output_dir):
    """The rows of `output_dir/results.csv`, numbers converted."""
    with open(os.path.join(output_dir, "results.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for field in FLOAT_FIELDS:
            row[field] = float(row[field])
        if row.get("mcnemar_p_vs_1", "") != "":
            row["mcnemar_p_vs_1"] = float(row["mcnemar_p_vs_1"])
        for field in INT_FIELDS:
            row[field] = int(row[field])
    return rows


def _cells(row):
    return [_cell(row, field) for field, _ in COLUMNS]


def _cell(row, field):
    if field == "test_ci":
        return _interval(row)
    if field == "mcnemar_p_vs_1" and int(row["experiment"]) == 1:
        # #1 is the reference the others are tested against.
        return "-" if row.get(field, "") != "" else ""
    return _format(field, row.get(field))


def _interval(row):
    if "test_ci_low" not in row:
        return ""
    return f"{row['test_ci_low']:.3f}-{row['test_ci_high']:.3f}"



def markdown_table(rows):
    titles = [title for _, title in COLUMNS]
    lines = [
        "| " + " | ".join(titles) + " |",
        "|" + "|".join("---" for _ in titles) + "|",
    ]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
    return "\n".join(lines)


def text_table(rows):
    """A fixed-width table for the terminal."""
    titles = [title for _, title in COLUMNS]
    body = [_cells(row) for row in rows]
    widths = [
        max(len(r[i]) for r in [titles, *body]) for i in range(len(titles))
    ]
    lines = [titles, ["-" * w for w in widths], *body]
    return "\n".join(
        "  ".join(cell.rjust(w) for cell, w in zip(cells, widths))
        for cells in lines
    )
