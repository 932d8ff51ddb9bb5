"""results.csv, results.md and the summary table printed at the end."""

import csv
import os

from fcn_experiments import tasks
from fcn_experiments.evaluation.classification import format_p
from fcn_experiments.tasks.classification import COLUMNS
from fcn_experiments.training.timings import COLUMNS as TIMING_FIELDS

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
    "threads",
)
SCORE_FIELDS = (
    "task",
    "val_loss",
    "score_threshold",
    "test_srcc",
    "test_srcc_low",
    "test_srcc_high",
    "test_plcc",
    "test_plcc_low",
    "test_plcc_high",
    "test_krcc",
    "test_krcc_low",
    "test_krcc_high",
    "test_rmse",
    "test_rmse_low",
    "test_rmse_high",
    "test_threshold_accuracy",
    "test_threshold_accuracy_low",
    "test_threshold_accuracy_high",
    "test_emd",
    "srcc_diff_vs_1",
    "srcc_diff_low",
    "srcc_diff_high",
)
# Values of fields that rows finished before the field existed lack.
FIELD_DEFAULTS = {
    "mixed_precision": "float32",
    "precision_reason": "",
    "task": tasks.DEFAULT,
}
# test_ci is shown (from test_ci_low/high), not stored.
FIELDS = (
    tuple(field for field, _ in COLUMNS if field != "test_ci")
    + EXTRA_FIELDS
    + SCORE_FIELDS
    # Where each experiment's time went (fcn_experiments/training/timings.py).
    + TIMING_FIELDS
)
FLOAT_FIELDS = SCORE_FIELDS[1:] + TIMING_FIELDS + (
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


def _format(field, value):
    if field == "mcnemar_p_vs_1":
        return format_p(value)
    if value is None:
        return ""
    if value == "":
        return ""
    if field in ("val_accuracy", "test_accuracy", "test_loss", "val_loss") or (
        field in SCORE_FIELDS and field != "task"
    ):
        return f"{float(value):.4f}"
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
        details = details_markdown(rows)
        if details:
            f.write("\n" + details + ("" if details.endswith("\n") else "\n"))
    return csv_path, md_path


def read_results(output_dir):
    """The rows of `output_dir/results.csv`, numbers converted."""
    with open(os.path.join(output_dir, "results.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for field in FLOAT_FIELDS:
            if row.get(field, "") != "":
                row[field] = float(row[field])
        row["task"] = row.get("task") or FIELD_DEFAULTS["task"]
        if row.get("mcnemar_p_vs_1", "") != "":
            row["mcnemar_p_vs_1"] = float(row["mcnemar_p_vs_1"])
        for field in INT_FIELDS:
            row[field] = int(row[field])
    return rows


def task_of(rows):
    """The `Task` of result rows (rows finished before rows named their
    task are classification's)."""
    return tasks.get(rows[0].get("task") if rows else None)


def details_markdown(rows):
    """What goes under the results table: the classes' counts and
    accuracies, or for a score task what its intervals mean."""
    return task_of(rows).details_markdown(rows)


def columns_of(rows):
    """The table columns of these rows' task."""
    return task_of(rows).result_columns


def _cells(row, columns=COLUMNS):
    return [_cell(row, field) for field, _ in columns]


def _cell(row, field):
    if field == "test_ci":
        return _interval(row)
    if field == "srcc_diff_vs_1_ci":
        if int(row["experiment"]) == 1:
            return "-" if row.get("srcc_diff_vs_1", "") != "" else ""
        return _signed_interval(row, "srcc_diff_vs_1", "srcc_diff")
    if field.endswith("_ci"):
        return _range(row, field[: -len("_ci")])
    if field == "mcnemar_p_vs_1" and int(row["experiment"]) == 1:
        # #1 is the reference the others are tested against.
        return "-" if row.get(field, "") != "" else ""
    return _format(field, row.get(field))


def _interval(row):
    if "test_ci_low" not in row:
        return ""
    return f"{row['test_ci_low']:.3f}-{row['test_ci_high']:.3f}"



def _range(row, field):
    low, high = row.get(f"{field}_low", ""), row.get(f"{field}_high", "")
    if low == "" or high == "" or _nan(low) or _nan(high):
        return ""
    return f"{float(low):.3f} to {float(high):.3f}"


def _signed_interval(row, field, prefix):
    value = row.get(field, "")
    if value == "" or _nan(value):
        return ""
    low, high = row[f"{prefix}_low"], row[f"{prefix}_high"]
    if _nan(low) or _nan(high):
        return f"{float(value):+.3f}"
    return f"{float(value):+.3f} ({float(low):+.3f} to {float(high):+.3f})"


def _nan(value):
    return value != value  # NaN is the only value unequal to itself.


def markdown_table(rows):
    columns = columns_of(rows)
    titles = [title for _, title in columns]
    lines = [
        "| " + " | ".join(titles) + " |",
        "|" + "|".join("---" for _ in titles) + "|",
    ]
    lines += ["| " + " | ".join(_cells(row, columns)) + " |" for row in rows]
    return "\n".join(lines)


def text_table(rows):
    """A fixed-width table for the terminal."""
    columns = columns_of(rows)
    titles = [title for _, title in columns]
    body = [_cells(row, columns) for row in rows]
    widths = [
        max(len(r[i]) for r in [titles, *body]) for i in range(len(titles))
    ]
    lines = [titles, ["-" * w for w in widths], *body]
    return "\n".join(
        "  ".join(cell.rjust(w) for cell, w in zip(cells, widths))
        for cells in lines
    )
