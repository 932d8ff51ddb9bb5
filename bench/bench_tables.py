"""The measured tables of BENCHMARKS.md: each one's results file and columns.

Each `Table` names the results file(s) under `docs/results/` a bench script
wrote with `--out` (see `bench/results_file.py`), which rows it shows
(`where`), and its columns. A column's cell is a template over the row's
fields, `str.format` style with two additions:

- `{field:.3g/1e9}` divides the value by 1e9 before formatting (a bench
  writes raw counts; the table shows GMAC);
- `{field:auto}` keeps about three figures (0.40, 24.5, 482);
- a `<<...>>` segment is left out when a field in it is empty (a figure
  one run measured and another did not).

Every table opens with a caption saying when, on what machine, at what
load and with what command its rows were measured, and where they come
from; rows of different runs get a `run` column (a, b, ...).
`bench/report.py` renders each table into its block of BENCHMARKS.md.
"""

import collections
import os
import re
import statistics
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


def _run_key(row):
    return tuple(row[k] for k in ("date", "machine", "load", "command", "source"))


def caption(rows, files):
    """Where the rows come from, and each run's letter when there are several."""
    runs = list(dict.fromkeys(_run_key(r) for r in rows))
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
        columns.insert(0, col("run", lambda r: chr(97 + runs.index(_run_key(r))), "l"))
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


# ------------------------------------------------------------------ footers


def _ratio_footer(rows):
    """matmul: bf16 / fp32 of each figure, per run."""
    out = []
    runs = list(dict.fromkeys(_run_key(r) for r in rows))
    for run in runs:
        by_dtype = {r["dtype"]: r for r in rows if _run_key(r) == run}
        if not {"float32", "bfloat16"} <= set(by_dtype):
            continue
        fp32, bf16 = by_dtype["float32"], by_dtype["bfloat16"]
        cells = ["bfloat16 / float32"]
        for key in ("best_gmacs", "median_gmacs", "gmac_per_cpu_s"):
            cells.append(f"**{float(bf16[key]) / float(fp32[key]):.2f}x**")
        out.append(([chr(97 + runs.index(run))] if len(runs) > 1 else []) + cells)
    return out


def _median_footer(rows):
    """predict_speed: the median ratio of the rounds, per clock."""
    out = []
    for clock in dict.fromkeys(r["clock"] for r in rows):
        mine = [r for r in rows if r["clock"] == clock]
        a = statistics.median(float(r["ratio_images_b_a"]) for r in mine)
        c = statistics.median(float(r["ratio_pixels_b_c"]) for r in mine)
        out.append(["**median**", clock, "", "", "", f"**{a:.2f}x**", f"**{c:.2f}x**"])
    return out


def dense_vs_sliding_ratios(results_dir=RESULTS_DIR):
    """The dense pass against the fastest sliding way, with the theoretical
    ratio (MACs of the crops over MACs of the dense pass)."""
    table = TABLES["fcn-dense-vs-sliding"]
    rows = read_rows(table, results_dir)
    dense = next(r for r in rows if r["method"].startswith("dense"))
    sliding = [r for r in rows if r is not dense]
    theory = float(dense["theoretical_ratio"])
    lines = [
        caption(rows, table.files)[0],
        "",
        "| ratio | value | share of the theoretical |",
        "|---|---:|---:|",
        f"| theoretical (MACs of the crops / MACs of the dense pass) | "
        f"{theory:.2f}x | |",
    ]
    for what, key in (("CPU time", "cpu_ms"), ("fastest wall-clock run", "fastest_ms")):
        ratio = min(float(r[key]) for r in sliding) / float(dense[key])
        lines.append(f"| measured, {what} | {ratio:.2f}x | {ratio / theory:.2f} |")
    return "\n".join(lines)


def precision_accuracy(results_dir=RESULTS_DIR):
    """mixed_precision's accuracy check: test accuracy per seed, by policy."""
    table = TABLES["mixed-precision-accuracy"]
    rows = read_rows(table, results_dir)
    text, runs = caption(rows, table.files)
    lines = [text, "", "| run | Adam steps | float32 | mixed_bfloat16 |",
             "|---|---:|---|---|"]
    groups = collections.defaultdict(list)
    for row in rows:
        groups[(runs.index(_run_key(row)), int(row["accuracy_steps"]))].append(row)
    for (run, steps), group in groups.items():
        group.sort(key=lambda r: int(r["seed"]))
        fp32 = ", ".join(f"{float(r['fp32_accuracy']):.3f}" for r in group)
        bf16 = ", ".join(f"{float(r['bf16_accuracy']):.3f}" for r in group)
        lines.append(f"| {chr(97 + run)} | {steps} | {fp32} | {bf16} |")
    return "\n".join(lines)


def _minutes(key):
    def cell(row):
        seconds = round(float(row[key]))
        return f"{seconds // 60} min {seconds % 60} s"

    return cell


# ------------------------------------------------------------------ the tables

_SPEED = (
    col("fp32 img/s best (median)", "{fp32_best:auto} ({fp32_median:auto})"),
    col("bf16 img/s best (median)", "{bf16_best:auto} ({bf16_median:auto})"),
    col("ratio wall best (median)", "{ratio_wall_best:.2f}x ({ratio_wall_median:.2f}x)"),
    col("fp32 img/CPU-s", "{fp32_cpu:auto}"),
    col("bf16 img/CPU-s", "{bf16_cpu:auto}"),
    col("ratio CPU", "**{ratio_cpu:.2f}x**"),
    col("fp32 % of ceiling (CPU)", "{fp32_pct_ceiling_cpu:.0f}"),
    col("bf16 % of ceiling (CPU)", "{bf16_pct_ceiling_cpu:.0f}"),
)
_LOADER = (
    col("Loader", "{loader}", "l"),
    col("images/s (best round)", "{images_per_s:.0f}"),
    col("CPU ms/image", "{cpu_ms_per_image:.2f}"),
    col("of which system", "{system_ms_per_image:.2f}"),
    col(
        "vs Keras crop (CPU)",
        "{ratio_cpu:.2f}x<< ({ratio_cpu_low:.2f} to {ratio_cpu_high:.2f} "
        "over {runs_compared} runs)>>",
    ),
)
_SCALE = (
    col("files", "{files:,}"),
    col("Keras build s", "{keras_build_s:.2f}"),
    col("FCN build s", "{fcn_build_s:.2f}"),
    col("FCN / Keras", "{build_ratio:.2f}x"),
    col("FCN / Keras, CPU", "{build_ratio_cpu:.2f}x"),
    col("Keras rebuild s", "{keras_rebuild_s:.2f}"),
    col("FCN rebuild s", "{fcn_rebuild_s:.2f}"),
    col("Keras peak MB (KB/file)", "{keras_peak_mb:.1f} ({keras_kb_per_file:.2f})"),
    col("FCN peak MB (KB/file)", "{fcn_peak_mb:.1f} ({fcn_kb_per_file:.2f})"),
    col("Keras img/s", "{keras_images_per_s:.0f}"),
    col("FCN img/s", "{fcn_images_per_s:.0f}"),
    col("FCN / Keras img/s", "<<{epoch_ratio:.2f}x>>"),
    col("bad files skipped", "<<{bad_skipped}>>"),
)

TABLES = {
    t.name: t
    for t in (
        Table(
            "fcn-native-speed",
            ("fcn_native_speed.csv",),
            (
                col("model", "{model}", "l"),
                col("batch", "{batch}"),
                col("fastest ms", "{fastest_ms:.1f}"),
                col("median ms", "{median_ms:.1f}"),
                col("CPU ms", "{cpu_ms:.1f}"),
                col("runs", "{runs}"),
                col("vs original, fastest", "{ratio_fastest:.2f}x"),
                col("vs original, CPU", "{ratio_cpu:.2f}x"),
                col("max abs diff", "{max_abs_diff:.2g}"),
            ),
        ),
        Table(
            "fcn-dense-vs-sliding",
            ("fcn_dense_vs_sliding.csv",),
            (
                col("model: method", "{family}: {method}", "l"),
                col("fastest ms", "{fastest_ms:.0f}"),
                col("median ms", "{median_ms:.0f}"),
                col("CPU ms", "{cpu_ms:.0f}"),
            ),
        ),
        Table(
            "loaders-default-allocator",
            ("bench_loaders.csv",),
            _LOADER,
            where={"part": "loaders", "allocator": "default"},
        ),
        Table(
            "loaders-bfc-allocator",
            ("bench_loaders.csv",),
            _LOADER,
            where={"part": "loaders", "allocator": "bfc"},
        ),
        Table(
            "loaders-training",
            ("bench_loaders.csv",),
            (
                col("Model", "{model}", "l"),
                col("training images/s", "{training_images_per_s:.1f}"),
                col("`fcn` crop loader / training", "{loader_over_training:.0f}x"),
            ),
            where={"part": "training"},
        ),
        Table(
            "predict-speed",
            ("predict_speed.csv",),
            (
                col("round", "{round}", "l"),
                col("clock", "{clock}", "l"),
                col("(a) s", "{naive_s:.1f}"),
                col("(b) s", "{buckets_s:.1f}"),
                col("(c) s", "{squashed_s:.1f}"),
                col("(b)/(a) images/s", "{ratio_images_b_a:.2f}x"),
                col("(b)/(c) pixels/s", "{ratio_pixels_b_c:.2f}x"),
            ),
            footer=_median_footer,
        ),
        Table(
            "predict-multiscale",
            ("predict_multiscale.csv",),
            (
                col("scales", "{scales}", "l"),
                col("accuracy", "{accuracy:.3f} ({correct}/{images})"),
                col("Wilson 95%", "[{wilson_low:.3f}, {wilson_high:.3f}]", "l"),
                col(
                    "vs scale 1 (bootstrap 95%)",
                    "<<{difference:+.3f} [{difference_low:+.3f}, "
                    "{difference_high:+.3f}]>>",
                    "l",
                ),
                col("gained / lost", "<<{gained} / {lost}>>"),
                col("McNemar p", "<<{mcnemar_p:.2f}>>"),
            ),
        ),
        Table(
            "mixed-precision-avx2",
            ("mixed_precision_avx2.csv",),
            (
                col("model", "{model}", "l"),
                col("size", "{size}"),
                col("batch", "{batch}"),
                col("fp32 img/s (wall)", "{fp32_wall:.2f}"),
                col("bf16 img/s (wall)", "{bf16_wall:.2f}"),
                col("ratio (wall)", "{ratio_wall:.2f}x"),
                col("fp32 img/CPU-s", "{fp32_cpu:.2f}"),
                col("bf16 img/CPU-s", "{bf16_cpu:.2f}"),
                col("ratio (CPU)", "{ratio_cpu:.2f}x"),
            ),
        ),
        Table("dataset-scale", ("dataset_scale.csv",), _SCALE),
        Table("dataset-scale-before", ("dataset_scale_before.csv",), _SCALE),
        Table("dataset-scale-before-idle", ("dataset_scale_before_idle.csv",), _SCALE),
        Table(
            "demo-time",
            ("demo_time.csv",),
            (
                col("Run", "{run}", "l"),
                col("Machine", "{conditions}", "l"),
                col("Wall time", _minutes("wall_s"), "l"),
                col("CPU (user + sys)", _minutes("cpu_s"), "l"),
            ),
        ),
        Table(
            "matmul-peak",
            ("matmul_peak.csv", "matmul_peak_rerun.csv"),
            (
                col("dtype", "{dtype}", "l"),
                col("best GMAC/s (wall)", "{best_gmacs:.1f}"),
                col("median GMAC/s (wall)", "{median_gmacs:.1f}"),
                col("GMAC per CPU-s", "{gmac_per_cpu_s:.1f}"),
            ),
            footer=_ratio_footer,
        ),
        Table(
            "mixed-precision-vgg16",
            ("mixed_precision_vgg16.csv",),
            (
                col("size", "{size}"),
                col("forward GMAC/img", "{forward_macs:.3g/1e9}"),
                *_SPEED,
            ),
            where={"part": "speed"},
        ),
        Table(
            "mixed-precision-demo",
            ("mixed_precision_demo.csv",),
            (
                col("size", "{size}"),
                col("forward MMAC/img", "{forward_macs:.3g/1e6}"),
                *_SPEED,
            ),
            where={"part": "speed"},
        ),
        Table(
            "mixed-precision-backbones",
            ("mixed_precision_backbones.csv",),
            (
                col("model", "{model}", "l"),
                col("size", "{size}"),
                col("forward GMAC/img", "{forward_macs:.3g/1e9}"),
                *_SPEED,
            ),
            where={"part": "speed"},
        ),
        Table(
            "mixed-precision-accuracy",
            ("mixed_precision_demo.csv", "mixed_precision_accuracy.csv"),
            (),
            where={"part": "accuracy"},
        ),
    )
}


def renderers(results_dir=RESULTS_DIR):
    """`{block: function}` of every table here."""
    special = {
        "fcn-dense-vs-sliding-ratios": dense_vs_sliding_ratios,
        "mixed-precision-accuracy": precision_accuracy,
    }
    blocks = {
        name: (lambda t=table: render(t, results_dir))
        for name, table in TABLES.items()
        if name not in special
    }
    blocks.update(
        {name: (lambda f=f: f(results_dir)) for name, f in special.items()}
    )
    return blocks
