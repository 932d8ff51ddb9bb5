"""The README's table of the bundled regression demo (`./run.sh demo --task
regression`), rendered from `docs/results/regression/`: one run's
`results.csv` (its SRCC, PLCC, RMSE and threshold accuracy with bootstrap
intervals, and each experiment's SRCC against #1's by a paired bootstrap)
and `run.json` (date, machine, commit, command).

`bench/report.py` calls `regression_table` for the `regression-table`
block; `python bench/report.py --import-regression DIR` copies a finished
run's results.csv here first.
"""

import math
import os
import shutil

from bench.demo_tables import input_cell
from bench.demo_tables import reproduce

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGRESSION_DIR = os.path.join(ROOT, "docs", "results", "regression")


def read_regression_run(regression_dir=REGRESSION_DIR):
    """`(rows, info)`: the run's result rows (by experiment) and run.json."""
    import csv

    from bench.demo_tables import read_run_info

    info = read_run_info(regression_dir)
    path = os.path.join(regression_dir, "results.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or any(row.get("task") != "regression" for row in rows):
        raise ValueError(
            f"{path} must hold the rows of a finished `--task regression` "
            "run: copy its results.csv with --import-regression."
        )
    return rows, info


def _number(text, digits=3, signed=False):
    if text in ("", None) or math.isnan(float(text)):
        return "n/a"
    return f"{float(text):{'+' if signed else ''}.{digits}f}"


def regression_table(rows, info):
    """Markdown: per experiment the test SRCC and its 95% bootstrap
    interval, its difference from #1 with the paired bootstrap interval,
    PLCC, RMSE and the accuracy at the threshold."""
    threshold = float(rows[0]["score_threshold"])
    lines = [
        f"*`{info['command']}`: measured {info['date']} on {info['machine']}, "
        f"commit `{info['commit'][:10]}`{reproduce(info)}; one run, "
        f"{rows[0]['test_images']} "
        "test images; intervals: percentile bootstrap, 95%, 2000 resamples; "
        "rendered by `bench/report.py` from `docs/results/regression/`.*",
        "",
        "| # | experiment | input | test SRCC | 95% interval | SRCC - #1 "
        "(95% paired interval) | PLCC | RMSE | accuracy at "
        f"{threshold:g} |",
        "|---|---|---|---:|---|---|---:|---:|---:|",
    ]
    for row in rows:
        if int(row["experiment"]) == 1:
            difference = "-"
        elif row.get("srcc_diff_vs_1", "") == "":
            difference = "n/a"
        else:
            difference = (
                f"{_number(row['srcc_diff_vs_1'], signed=True)} "
                f"({_number(row['srcc_diff_low'], signed=True)} to "
                f"{_number(row['srcc_diff_high'], signed=True)})"
            )
        lines.append(
            "| "
            + " | ".join(
                [
                    row["experiment"],
                    row["title"],
                    input_cell(row),
                    f"**{_number(row['test_srcc'])}**",
                    f"{_number(row['test_srcc_low'])} to "
                    f"{_number(row['test_srcc_high'])}",
                    difference,
                    _number(row["test_plcc"]),
                    _number(row["test_rmse"]),
                    _number(row["test_threshold_accuracy"]),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def render(regression_dir=REGRESSION_DIR):
    return regression_table(*read_regression_run(regression_dir))


def import_run(output_dir, regression_dir=REGRESSION_DIR):
    """Copies a finished regression run's results.csv into `regression_dir`."""
    source = os.path.join(output_dir, "results.csv")
    if not os.path.isfile(source):
        raise ValueError(
            f"{source} does not exist: import a run once all its experiments "
            "have finished."
        )
    os.makedirs(regression_dir, exist_ok=True)
    shutil.copyfile(source, os.path.join(regression_dir, "results.csv"))
