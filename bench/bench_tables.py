"""The measured tables of BENCHMARKS.md: each one's results file and columns.

Each entry of `TABLES` is a `bench.results_table.Table`: the results
file(s) under `docs/results/` a bench script wrote with `--out`, the rows
it shows and its columns (templates described in `bench/results_table.py`).
Two tables need more than columns and have their own function here: the
dense-vs-sliding ratios and the accuracy check's seeds side by side.
`bench/report.py` renders each table into its block of BENCHMARKS.md.
"""

import collections
import statistics

from bench.results_table import RESULTS_DIR
from bench.results_table import Table
from bench.results_table import caption
from bench.results_table import col
from bench.results_table import read_rows
from bench.results_table import render
from bench.results_table import run_key

# ------------------------------------------------------------------ footers


def _ratio_footer(rows):
    """matmul: bf16 / fp32 of each figure, per run."""
    out = []
    runs = list(dict.fromkeys(run_key(r) for r in rows))
    for run in runs:
        by_dtype = {r["dtype"]: r for r in rows if run_key(r) == run}
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
        groups[(runs.index(run_key(row)), int(row["accuracy_steps"]))].append(row)
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
            "fcn-global-pooling-speed",
            ("fcn_global_pooling_speed.csv",),
            (
                col("model: run", "{family}: {run}", "l"),
                col("fastest ms", "{fastest_ms:.0f}"),
                col("CPU ms", "{cpu_ms:.0f}"),
                col("against", "{versus}", "l"),
                col("ratio, fastest", "{ratio_fastest:.2f}x"),
                col("ratio, CPU", "{ratio_cpu:.2f}x"),
                col("2x: crops / positions", "{crops} / {positions}"),
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
