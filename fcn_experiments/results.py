"""results.csv, results.md and the summary table printed at the end."""

import csv
import json
import os

from fcn_experiments.class_report import per_class_markdown
from fcn_experiments.scored_test_set import format_p
from fcn_experiments.timings import COLUMNS as TIMING_FIELDS

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
# The tables of a regression or distribution run: (field, title); a
# `*_ci` field is shown from its `_low`/`_high` fields.
SCORE_COLUMNS = COLUMNS[:7] + (
    ("val_loss", "val loss"),
    ("test_srcc", "test SRCC"),
    ("test_srcc_ci", "95% interval"),
    ("srcc_diff_vs_1_ci", "SRCC - #1 (95%)"),
    ("test_plcc", "PLCC"),
    ("test_plcc_ci", "95% interval"),
    ("test_krcc", "KRCC"),
    ("test_rmse", "RMSE"),
    ("test_threshold_accuracy", "acc @ threshold"),
    ("test_loss", "test loss"),
    ("wall_time_s", "wall time s"),
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
    "task": "classification",
}
# test_ci is shown (from test_ci_low/high), not stored.
FIELDS = (
    tuple(field for field, _ in COLUMNS if field != "test_ci")
    + EXTRA_FIELDS
    + SCORE_FIELDS
    # Where each experiment's time went (fcn_experiments/timings.py).
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
            f.write("\n" + details + ("\n" if is_scored(rows) else ""))
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


def score_notes(rows):
    """What a score task's table means, under it in results.md."""
    threshold = rows[0].get("score_threshold", "")
    at = f" {float(threshold):g}" if threshold != "" else ""
    return (
        "Test metrics on each experiment's best epoch on validation (lowest "
        "validation loss). Intervals: percentile bootstrap, 95%, 2000 "
        "resamples of the test images. \"SRCC - #1\": the difference from "
        "experiment #1 on the same images, by a paired bootstrap; it is "
        "significant where its interval excludes 0. \"acc @ threshold\": "
        f"how often predicted and true scores fall on the same side of{at}."
    )


def details_markdown(rows):
    """What goes under the results table: the classes' counts and
    accuracies, or for a score task what its intervals mean."""
    if is_scored(rows):
        return score_notes(rows)
    return per_class_markdown(rows)


def is_scored(rows):
    return bool(rows) and rows[0].get("task", "classification") != "classification"


def columns_of(rows):
    """The table columns of these rows' task."""
    if not is_scored(rows):
        return COLUMNS
    if rows[0].get("task") == "distribution":
        return SCORE_COLUMNS[:-2] + (("test_emd", "EMD"),) + SCORE_COLUMNS[-2:]
    return SCORE_COLUMNS


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
