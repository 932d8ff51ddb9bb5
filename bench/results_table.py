"""A markdown table rendered from results files, with where they come from.

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
import os
import re
import string

from bench.results_file import read_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "docs", "results")

Column = collections.namedtuple("Column", "header template align")
Table = collections.namedtuple(
    "Table", "name files columns where footer", defaults=(None, None)
)


def col(header, template, align="r"):
    return Column(header, template, align)


# ------------------------------------------------------------------ cells


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
        rows += read_results(os.path.join(results_dir, name))
    where = table.where or {}
    rows = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    if not rows:
        raise ValueError(
            f"No rows with {where} in {list(table.files)}: re-run the bench "
            "with --out, or check the table's `where` in bench/bench_tables.py."
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
