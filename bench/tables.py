"""Reading the committed results and rendering markdown tables from them.

One reader per kind of file under `docs/results/`:

- `read_results_file`: a bench's results file (its `--out`, written by
  `bench/results_file.py`): figures with the date, machine, load, command
  and source of each row;
- `read_run_results`: a framework run's `results.csv`, by experiment;
- `read_run_info`: the `run.json` beside copied runs (date, machine,
  commit, command);
- `read_predictions`: one experiment's `test_predictions.csv`, as
  `{path: correct}`.

A `Table` names the results file(s) under `docs/results/` a bench script
wrote with `--out` (see `bench/results_file.py`), which rows it shows
(`where`), and its columns. A column's cell is a template over the row's
fields, `str.format` style with three additions:

- `{field:.3g/1e9}` divides the value by 1e9 before formatting (a bench
  writes raw counts; the table shows GMAC);
- `{field:auto}` keeps about three figures (0.40, 24.5, 482);
- a `<<...>>` segment is left out when a field in it is empty (a figure
  one run measured and another did not).

Every table opens with a caption saying when, on what machine, at what
load and with what command its rows were measured, and where they come
from; rows of different runs get a `run` column (a, b, ...).
"""

import collections
import csv
import json
import math
import os
import re
import string

from bench.results_file import PROVENANCE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "docs", "results")

Column = collections.namedtuple("Column", "header template align")
Table = collections.namedtuple(
    "Table", "name files columns where footer", defaults=(None, None)
)


def col(header, template, align="r"):
    return Column(header, template, align)


# ------------------------------------------------------------------ readers


def read_results_file(path):
    """The rows of a bench's results file, as dicts of strings."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(
            f"{path} has no rows: write it with the bench's --out "
            "(see docs/results/README.md)."
        )
    missing = [k for k in PROVENANCE if k not in rows[0]]
    if missing:
        raise ValueError(
            f"{path} lacks the columns {missing}: every results file says "
            "when, where and how it was measured (see docs/results/README.md)."
        )
    return rows


def read_run_results(path):
    """The rows of a framework run's `results.csv`, by experiment number."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} has no rows: copy a finished run's file.")
    return {int(row["experiment"]): row for row in rows}


def read_run_info(folder):
    """The `run.json` of copied runs: date, machine, commit, command."""
    path = os.path.join(folder, "run.json")
    with open(path) as f:
        info = json.load(f)
    missing = {"date", "machine", "commit", "command"} - set(info)
    if missing:
        raise ValueError(
            f"{path} lacks {sorted(missing)}: add them (see "
            "docs/results/README.md)."
        )
    return info


def read_predictions(run_dir, row):
    """`{path: correct}` of one experiment's `test_predictions.csv`, or
    `None` when it was not committed."""
    path = os.path.join(
        run_dir, f"exp{row['experiment']}_{row['name']}", "test_predictions.csv"
    )
    if not os.path.isfile(path):
        return None
    with open(path, newline="") as f:
        return {
            r["path"]: r["true_class"] == r["predicted_class"]
            for r in csv.DictReader(f)
        }


# ------------------------------------------------------------------ cells


def input_cell(row):
    """The "input" cell of a run's row: size (x 3 for multi-crop) and
    resize mode."""
    size = f"{row['input_size']} px"
    if row["resize_mode"] == "multicrop":
        size = f"3 x {size}"
    return f"{size}, {row['resize_mode']}"


def number(text, digits=3, signed=False):
    """A run's figure rounded, or "n/a" when it is missing or NaN."""
    if text in ("", None) or math.isnan(float(text)):
        return "n/a"
    return f"{float(text):{'+' if signed else ''}.{digits}f}"


def _value(text):
    """A CSV cell as int, float or (when not a number) the string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class _CellFormatter(string.Formatter):
    def format_field(self, value, spec):
        spec, _, divisor = spec.partition("/")
        if isinstance(value, str):  # "-", a label: as written.
            return value
        if divisor:
            value = value / float(divisor)
        if spec == "auto":  # 0.40, 24.5, 482: about three figures.
            spec = ".2f" if abs(value) < 10 else ".1f" if abs(value) < 100 else ".0f"
        return format(value, spec)


_FORMATTER = _CellFormatter()
_OPTIONAL = re.compile(r"<<(.*?)>>")


def template_fields(template):
    """The field names of a template, in order."""
    return [
        name for _, name, _, _ in string.Formatter().parse(template.replace("<<", "")
                                                           .replace(">>", ""))
        if name
    ]


def format_cell(template, row):
    """`template` filled from `row` (a dict of CSV strings)."""
    if callable(template):
        return template(row)
    values = {k: _value(v) for k, v in row.items() if v not in ("", None)}

    def optional(match):
        inner = match.group(1)
        if all(name in values for name in template_fields(inner)):
            return _FORMATTER.format(inner, **values)
        return ""

    text = _OPTIONAL.sub(optional, template)
    missing = [name for name in template_fields(text) if name not in values]
    if missing:
        return ""
    return _FORMATTER.format(text, **values)


# ------------------------------------------------------------------ tables


def run_key(row):
    return tuple(row[k] for k in ("date", "machine", "load", "command", "source"))


def caption(rows, files):
    """Where the rows come from, and each run's letter when there are several."""
    runs = list(dict.fromkeys(run_key(r) for r in rows))
    paths = ", ".join(f"`docs/results/{f}`" for f in files)

    def describe(run):
        date, machine, load, command, source = run
        return (
            f"measured {date} on {machine}, load average {load}: `{command}`; "
            f"{source}"
        )

    if len(runs) == 1:
        text = describe(runs[0])
        text = text[0].upper() + text[1:]
    else:
        text = "; ".join(
            f"({chr(97 + i)}) {describe(run)}" for i, run in enumerate(runs)
        )
    return f"*{text}. Rendered by `bench/report.py` from {paths}.*", runs


def read_rows(table, results_dir=RESULTS_DIR):
    rows = []
    for name in table.files:
        rows += read_results_file(os.path.join(results_dir, name))
    where = table.where or {}
    rows = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    if not rows:
        raise ValueError(
            f"No rows with {where} in {list(table.files)}: re-run the bench "
            "with --out, or check the table's `where` in bench/blocks.py."
        )
    return rows


def render(table, results_dir=RESULTS_DIR):
    """The caption and the markdown table of `table`."""
    rows = read_rows(table, results_dir)
    text, runs = caption(rows, table.files)
    columns = list(table.columns)
    if len(runs) > 1:
        columns.insert(0, col("run", lambda r: chr(97 + runs.index(run_key(r))), "l"))
    align = {"l": "---", "r": "---:"}
    lines = [
        text,
        "",
        "| " + " | ".join(c.header for c in columns) + " |",
        "|" + "|".join(align[c.align] for c in columns) + "|",
    ]
    for row in rows:
        cells = [format_cell(c.template, row) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    if table.footer:
        for cells in table.footer(rows):
            if len(cells) < len(columns):  # A footer of all runs.
                cells = [""] + cells
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
