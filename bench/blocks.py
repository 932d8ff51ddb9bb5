"""The generated blocks of README.md and BENCHMARKS.md: what each table
shows, from the results that `bench/tables.py` reads.

- The demo's tables (`docs/results/demo/`, `docs/results/demo_bf16/`):
  test accuracy per seed, one run's intervals and McNemar p-values,
  pairwise McNemar p-values, float32 against mixed_bfloat16. `seed<N>/`
  holds `results.csv` of `./run.sh demo --seed N` as the framework wrote
  it, and seed 1's `test_predictions.csv` files (paths relative to the
  run's output folder); `run.json` the date, machine, commit and command.
- The bundled regression demo's table (`docs/results/regression/`, one
  `seed<N>/results.csv` per seed, as for the demo).
- The benches' tables (`TABLES`): the results file(s) a bench wrote with
  `--out`, the rows each shows and its columns (cell templates described
  in `bench/tables.py`); two need more than columns and have their own
  function: the dense-vs-sliding ratios and the accuracy check's seeds.

`bench/report.py` renders each into its block.
"""

import collections
import os
import re
import shutil
import statistics

from bench.tables import RESULTS_DIR
from bench.tables import Table
from bench.tables import caption
from bench.tables import col
from bench.tables import input_cell
from bench.tables import number
from bench.tables import read_predictions
from bench.tables import read_rows
from bench.tables import read_run_info
from bench.tables import read_run_results
from bench.tables import render
from bench.tables import reproduce
from bench.tables import run_key

# Pure Python (no Keras import): rendering the demo tables stays fast.
from fcn_experiments.evaluation.accuracy_statistics import mcnemar_exact
from fcn_experiments.evaluation.accuracy_statistics import wilson_interval

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_DIR = os.path.join(ROOT, "docs", "results", "demo")
BF16_DIR = os.path.join(ROOT, "docs", "results", "demo_bf16")
# The float32 runs the bf16 ones were set against: one process, two threads.
TWO_THREADS_DIR = os.path.join(ROOT, "docs", "results", "demo_two_threads")
REGRESSION_DIR = os.path.join(ROOT, "docs", "results", "regression")
CONFIDENCE = 0.95


def read_demo_seeds(demo_dir=DEMO_DIR):
    """`{seed: {experiment: row}}` of every `seed<N>/results.csv`."""
    seeds = {}
    for entry in sorted(os.listdir(demo_dir)):
        match = re.fullmatch(r"seed(\d+)", entry)
        path = os.path.join(demo_dir, entry, "results.csv")
        if match and os.path.isfile(path):
            seeds[int(match.group(1))] = read_run_results(path)
    if not seeds:
        raise ValueError(
            f"No seed<N>/results.csv under {demo_dir}: copy the results.csv "
            "of `./run.sh demo --seed N --output-dir DIR` there."
        )
    return dict(sorted(seeds.items()))


# ------------------------------------------------------------------ statistics


def correct_count(row):
    n = int(row["test_images"])
    return int(round(float(row["test_accuracy"]) * n)), n


def t_interval(values, confidence=CONFIDENCE):
    """Mean and the Student t interval of the mean, `(mean, low, high)`."""
    from scipy import stats  # Pinned in requirements.txt.

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None, None
    sd = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / n**0.5
    return mean, mean - half, mean + half


# ------------------------------------------------------------------ tables


def _header(info, what):
    return (
        f"*{what}: measured {info['date']} on {info['machine']}, commit "
        f"`{info['commit'][:10]}`, `{info['command']}`{reproduce(info)}; "
        "rendered by `bench/report.py` from `docs/results/demo/`.*"
    )


def _check_same_experiments(seeds):
    first_seed, first = next(iter(seeds.items()))
    for seed, rows in seeds.items():
        for k, row in rows.items():
            ref = first.get(k)
            if ref is None or (row["name"], row["input_size"]) != (
                ref["name"],
                ref["input_size"],
            ):
                raise ValueError(
                    f"seed {seed}'s experiment {k} differs from seed "
                    f"{first_seed}'s: the runs must use the same settings."
                )


def _by_experiment(seeds):
    """`(experiment, its row in the first seed that has it, [its row or
    None in each seed])`, in experiment order."""
    _check_same_experiments(seeds)
    for k in sorted(set().union(*(rows.keys() for rows in seeds.values()))):
        rows = [rows_of_seed.get(k) for rows_of_seed in seeds.values()]
        yield k, next(r for r in rows if r is not None), rows


def _seed_cells(rows, field, value, interval):
    """Cells of each seed's `field`, the mean over seeds (bold) and its t
    interval; `value(x)` and `interval(low, high)` format them."""
    values = [float(r[field]) for r in rows if r is not None]
    mean, low, high = t_interval(values)
    return (
        ["" if r is None else value(float(r[field])) for r in rows]
        + [f"**{value(mean)}**", "" if low is None else interval(low, high)]
    )


def demo_table(seeds, info):
    """Test accuracy per experiment and seed, the mean over seeds and its t
    interval; with one seed, the test accuracy's Wilson interval."""
    names = list(seeds)
    seeds_text = ("seed " if len(names) == 1 else "seeds ") + ", ".join(
        map(str, names)
    )
    lines = [_header(info, f"`./run.sh demo`, {seeds_text}"), ""]
    if len(names) == 1:
        lines += [
            "| # | experiment | input | test accuracy | 95% Wilson interval |",
            "|---|---|---|---:|---|",
        ]
    else:
        seed_titles = " | ".join(f"seed {s}" for s in names)
        lines += [
            f"| # | experiment | input | {seed_titles} | mean | "
            f"95% interval of the mean (t, n={len(names)}) |",
            "|---|---|---|" + "---:|" * len(names) + "---:|---|",
        ]
    for k, ref, rows in _by_experiment(seeds):
        cells = [str(k), ref["title"], input_cell(ref)]
        if len(names) == 1:
            low, high = wilson_interval(*correct_count(ref))
            cells += [f"{float(ref['test_accuracy']):.3f}", f"{low:.3f}-{high:.3f}"]
        else:
            cells += _seed_cells(
                rows, "test_accuracy", lambda x: f"{x:.3f}",
                lambda low, high: f"{low:.2f}-{high:.2f}",
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _format_p(p):
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"


def single_run_table(seed, rows, run_dir, info):
    """One seed's results: validation and test accuracy, the test accuracy's
    Wilson interval and the exact McNemar p-value against #1."""
    lines = [
        _header(info, f"`./run.sh demo --seed {seed}`"),
        "",
        "| # | experiment | input | best epoch | val acc | test acc | "
        "95% Wilson interval | McNemar p vs #1 |",
        "|---|---|---|---:|---:|---:|---|---:|",
    ]
    predictions = {k: read_predictions(run_dir, row) for k, row in rows.items()}
    for k, row in sorted(rows.items()):
        low, high = wilson_interval(*correct_count(row))
        p = ""
        if k != 1 and predictions.get(1) and predictions[k]:
            p = _format_p(mcnemar_p(predictions[1], predictions[k]))
        lines.append(
            f"| {k} | {row['title']} | {input_cell(row)} | {row['best_epoch']} | "
            f"{float(row['val_accuracy']):.3f} | "
            f"**{float(row['test_accuracy']):.3f}** | {low:.3f}-{high:.3f} | "
            f"{'-' if k == 1 else p} |"
        )
    return "\n".join(lines)


def mcnemar_p(a, b):
    """Exact McNemar p of two experiments' per-image correctness, matched by
    image path."""
    if set(a) != set(b):
        raise ValueError(
            "Two experiments' test_predictions.csv list different images: "
            "commit the files of one run."
        )
    order = sorted(a)
    return mcnemar_exact([a[i] for i in order], [b[i] for i in order])[0]


def pairwise_table(seed, rows, run_dir, info):
    """Exact McNemar p-values between every pair of experiments of one run."""
    predictions = {k: read_predictions(run_dir, row) for k, row in rows.items()}
    missing = sorted(k for k, p in predictions.items() if p is None)
    if missing:
        raise ValueError(
            f"seed {seed} lacks test_predictions.csv of experiments {missing}: "
            "commit them (see docs/results/README.md)."
        )
    numbers = sorted(predictions)
    lines = [
        _header(info, f"pairwise exact McNemar p-values, `--seed {seed}`, "
                "uncorrected for the number of comparisons"),
        "",
        "| | " + " | ".join(f"#{k}" for k in numbers[1:]) + " |",
        "|---|" + "---:|" * (len(numbers) - 1),
    ]
    for i in numbers[:-1]:
        cells = []
        for j in numbers[1:]:
            cells.append(
                _format_p(mcnemar_p(predictions[i], predictions[j])) if j > i else ""
            )
        lines.append(f"| #{i} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def import_run(output_dir, seed, demo_dir=DEMO_DIR, predictions=False):
    """Copies a finished run's `results.csv` (and, with `predictions`, its
    `test_predictions.csv` files, the output folder cut from their paths)
    into `demo_dir/seed<seed>/`."""
    source = os.path.join(output_dir, "results.csv")
    if not os.path.isfile(source):
        raise ValueError(
            f"{source} does not exist: import a run once all its experiments "
            "have finished."
        )
    target = os.path.join(demo_dir, f"seed{seed}")
    os.makedirs(target, exist_ok=True)
    shutil.copyfile(source, os.path.join(target, "results.csv"))
    if not predictions:
        return
    prefix = os.path.abspath(output_dir) + os.sep
    for row in read_run_results(source).values():
        folder = f"exp{row['experiment']}_{row['name']}"
        with open(os.path.join(output_dir, folder, "test_predictions.csv")) as f:
            text = f.read()
        os.makedirs(os.path.join(target, folder), exist_ok=True)
        with open(os.path.join(target, folder, "test_predictions.csv"), "w") as f:
            f.write(text.replace(prefix, ""))


def precision_table(fp32_dir=TWO_THREADS_DIR, mixed_dir=BF16_DIR):
    """Test accuracy per seed of the experiments run under a mixed policy
    (`mixed_dir`), against the same experiments and seeds in float32
    (`fp32_dir`), with the mean over the seeds of each."""
    fp32, mixed = read_demo_seeds(fp32_dir), read_demo_seeds(mixed_dir)
    fp32_info, mixed_info = read_run_info(fp32_dir), read_run_info(mixed_dir)
    seeds = [s for s in mixed if s in fp32]
    if not seeds:
        raise ValueError(
            f"No seed of {mixed_dir} is in {fp32_dir}: compare runs of the "
            "same seeds."
        )
    policies = {
        row.get("mixed_precision", "") for rows in mixed.values() for row in rows.values()
    }
    if len(policies) != 1 or "float32" in policies or "" in policies:
        raise ValueError(
            f"{mixed_dir}'s results.csv record the policies {sorted(policies)}: "
            "commit runs of one mixed policy (`--mixed-precision ...`)."
        )
    policy = policies.pop()
    experiments = sorted(set().union(*(rows.keys() for rows in mixed.values())))
    names = "/".join(map(str, seeds))
    folder = os.path.relpath(mixed_dir, ROOT)
    lines = [
        f"*{policy}: measured {mixed_info['date']} on {mixed_info['machine']}, "
        f"commit `{mixed_info['commit'][:10]}`, `{mixed_info['command']}`"
        f"{reproduce(mixed_info)}; "
        f"float32: measured {fp32_info['date']}, commit "
        f"`{fp32_info['commit'][:10]}`, `{fp32_info['command']}`, in one "
        "process on two threads. Rendered by `bench/report.py` from "
        f"`{folder}/` and `{os.path.relpath(fp32_dir, ROOT)}/`.*",
        "",
        f"| # | experiment | float32, seeds {names} | mean | "
        f"{policy}, seeds {names} | mean |",
        "|---|---|---|---:|---|---:|",
    ]
    for k in experiments:
        cells = [str(k), fp32[seeds[0]][k]["title"]]
        for runs in (fp32, mixed):
            accs = [float(runs[s][k]["test_accuracy"]) for s in seeds]
            cells += [
                " / ".join(f"{a:.3f}" for a in accs),
                f"**{sum(accs) / len(accs):.3f}**",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------ regression


def _paired_above(row):
    """Whether the row's paired bootstrap interval of SRCC - #1 lies above
    0; None where the run has no difference for it."""
    if row.get("srcc_diff_low", "") == "":
        return None
    return float(row["srcc_diff_low"]) > 0


def regression_table(seeds, info):
    """Markdown: per experiment the test SRCC of each seed, the mean over
    seeds and its t interval, and in how many seeds the paired bootstrap
    interval of SRCC - #1 lies above 0."""
    names = list(seeds)
    first = next(iter(seeds[names[0]].values()))
    lines = [
        f"*`{info['command']}`: measured {info['date']} on {info['machine']}, "
        f"commit `{info['commit'][:10]}`{reproduce(info)}; seeds "
        f"{', '.join(map(str, names))}, {first['test_images']} test images "
        "each; SRCC - #1: the paired percentile bootstrap interval (95%, 2000 "
        "resamples of the test images) of each seed's run; rendered by "
        "`bench/report.py` from `docs/results/regression/`.*",
        "",
        "| # | experiment | input | "
        + " | ".join(f"seed {s}" for s in names)
        + f" | mean SRCC | 95% interval of the mean (t, n={len(names)}) | "
        "seeds with SRCC - #1 above 0 |",
        "|---|---|---|" + "---:|" * len(names) + "---:|---|---|",
    ]
    for k, ref, rows in _by_experiment(seeds):
        above = [_paired_above(r) for r in rows if r is not None]
        if k == 1:
            paired = "-"
        elif None in above:
            paired = "n/a"
        else:
            paired = f"{sum(above)} of {len(above)}"
        cells = [str(k), ref["title"], input_cell(ref)] + _seed_cells(
            rows, "test_srcc", number, lambda low, high: f"{number(low)} to {number(high)}"
        )
        lines.append("| " + " | ".join(cells + [paired]) + " |")
    return "\n".join(lines)


def read_regression_seeds(regression_dir=REGRESSION_DIR):
    """`({seed: {experiment: row}}, info)`: each `seed<N>/results.csv` of
    the regression demo, and run.json."""
    seeds = read_demo_seeds(regression_dir)
    for seed, rows in seeds.items():
        if any(row.get("task") != "regression" for row in rows.values()):
            raise ValueError(
                f"{regression_dir}/seed{seed}/results.csv must hold the rows "
                "of a finished `--task regression` run: copy its results.csv "
                "with --import-regression DIR --seed N."
            )
    return seeds, read_run_info(regression_dir)


def regression_block(regression_dir=REGRESSION_DIR):
    return regression_table(*read_regression_seeds(regression_dir))


def import_regression_run(output_dir, seed, regression_dir=REGRESSION_DIR):
    """Copies a finished regression run's results.csv into
    `regression_dir/seed<seed>/`."""
    import_run(output_dir, seed, regression_dir)


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

_BREAKDOWN = (
    col("#", "{experiment}", "l"),
    col("data + build",
        lambda r: f"{float(r['data']) + float(r['build']):.1f}"),
    col("compile", "{compile:.1f}"),
    col("trace", "{trace:.1f}"),
    col("first epoch", "{first_epoch:.1f}"),
    col("steps", "{steps:.1f}"),
    col("validation", "{validation:.1f}"),
    col("checkpoint", "{checkpoint:.1f}"),
    col("test", "{test:.1f}"),
    col("save", "{save:.1f}"),
    col("run's own", "<<dataset {dataset:.0f}, weights {weights:.0f}, "
        "precision {precision:.0f}, plots {plots:.0f}>>", "l"),
    col("fixed", "**{fixed:.0f}**"),
    col("wall", "{wall:.0f}"),
    col("CPU", "<<{cpu:.0f}>>"),
)

TABLES = {
    t.name: t
    for t in (
        Table(
            "demo-breakdown",
            ("demo_breakdown_before.csv", "demo_breakdown.csv",
             "demo_breakdown_side_by_side.csv"),
            _BREAKDOWN,
        ),
        Table(
            "regression-breakdown",
            ("regression_breakdown.csv",),
            _BREAKDOWN,
        ),
        Table(
            "experiments-side-by-side",
            ("experiments_side_by_side.csv",),
            (
                col("way", "{way}", "l"),
                col("experiments", "{experiments}", "l"),
                col("jobs", "{jobs}"),
                col("threads each", "{threads}"),
                col("wall s", "{wall_s:.1f}"),
                col("CPU s", "{cpu_s:.1f}"),
                col("vs one process, wall", "**{speedup:.2f}x**"),
                col("test accuracy", "{test_accuracy}", "l"),
            ),
        ),
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


def bench_renderers(results_dir=RESULTS_DIR):
    """`{block: function}` of every bench table."""
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
