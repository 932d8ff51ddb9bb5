"""The demo's tables: test accuracy per seed, one run's intervals and
McNemar p-values, and float32 against mixed_bfloat16.

Inputs (see docs/results/README.md):
- `docs/results/demo/run.json`: date, machine, commit and command of the
  demo runs;
- `docs/results/demo/seed<N>/results.csv`: `results.csv` of
  `./run.sh demo --seed N` as the framework wrote it;
- `docs/results/demo/seed1/exp<k>_<name>/test_predictions.csv`: seed 1's
  per-image predictions (paths relative to the run's output folder), for the
  pairwise McNemar tests;
- `docs/results/demo_bf16/`: the same for runs of some experiments under
  `--mixed-precision mixed_bfloat16`.
"""

import csv
import json
import os
import re
import shutil

# Pure Python (no Keras import): rendering the demo tables stays fast.
from fcn_experiments.evaluation.accuracy_statistics import mcnemar_exact
from fcn_experiments.evaluation.accuracy_statistics import wilson_interval

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_DIR = os.path.join(ROOT, "docs", "results", "demo")
BF16_DIR = os.path.join(ROOT, "docs", "results", "demo_bf16")
CONFIDENCE = 0.95


# ------------------------------------------------------------------ inputs


def read_run_info(demo_dir=DEMO_DIR):
    """The demo runs' `run.json`: date, machine, commit, command."""
    path = os.path.join(demo_dir, "run.json")
    with open(path) as f:
        info = json.load(f)
    missing = {"date", "machine", "commit", "command"} - set(info)
    if missing:
        raise ValueError(
            f"{path} lacks {sorted(missing)}: add them (see "
            "docs/results/README.md)."
        )
    return info


def read_results_csv(path):
    """The rows of one `results.csv`, by experiment number."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} has no rows: copy a finished run's file.")
    return {int(row["experiment"]): row for row in rows}


def read_demo_seeds(demo_dir=DEMO_DIR):
    """`{seed: {experiment: row}}` of every `seed<N>/results.csv`."""
    seeds = {}
    for entry in sorted(os.listdir(demo_dir)):
        match = re.fullmatch(r"seed(\d+)", entry)
        path = os.path.join(demo_dir, entry, "results.csv")
        if match and os.path.isfile(path):
            seeds[int(match.group(1))] = read_results_csv(path)
    if not seeds:
        raise ValueError(
            f"No seed<N>/results.csv under {demo_dir}: copy the results.csv "
            "of `./run.sh demo --seed N --output-dir DIR` there."
        )
    return dict(sorted(seeds.items()))


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


def input_cell(row):
    """The "input" cell: size (x 3 for multi-crop) and resize mode."""
    size = f"{row['input_size']} px"
    if row["resize_mode"] == "multicrop":
        size = f"3 x {size}"
    return f"{size}, {row['resize_mode']}"


def _header(info, what):
    return (
        f"*{what}: measured {info['date']} on {info['machine']}, commit "
        f"`{info['commit'][:10]}`, `{info['command']}`; rendered by "
        "`bench/report.py` from `docs/results/demo/`.*"
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


def demo_table(seeds, info):
    """Test accuracy per experiment and seed, the mean over seeds and its t
    interval; with one seed, the test accuracy's Wilson interval."""
    _check_same_experiments(seeds)
    names = list(seeds)
    experiments = sorted(set().union(*(rows.keys() for rows in seeds.values())))
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
    for k in experiments:
        rows = [seeds[s].get(k) for s in names]
        ref = next(r for r in rows if r is not None)
        cells = [str(k), ref["title"], input_cell(ref)]
        if len(names) == 1:
            low, high = wilson_interval(*correct_count(ref))
            cells += [f"{float(ref['test_accuracy']):.3f}", f"{low:.3f}-{high:.3f}"]
        else:
            accs = [float(r["test_accuracy"]) for r in rows if r is not None]
            cells += [
                "" if r is None else f"{float(r['test_accuracy']):.3f}" for r in rows
            ]
            mean, low, high = t_interval(accs)
            cells += [
                f"**{mean:.3f}**",
                "" if low is None else f"{low:.2f}-{high:.2f}",
            ]
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
    for row in read_results_csv(source).values():
        folder = f"exp{row['experiment']}_{row['name']}"
        with open(os.path.join(output_dir, folder, "test_predictions.csv")) as f:
            text = f.read()
        os.makedirs(os.path.join(target, folder), exist_ok=True)
        with open(os.path.join(target, folder, "test_predictions.csv"), "w") as f:
            f.write(text.replace(prefix, ""))


def precision_table(fp32_dir=DEMO_DIR, mixed_dir=BF16_DIR):
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
        f"commit `{mixed_info['commit'][:10]}`, `{mixed_info['command']}`; "
        f"float32: the runs of the first table (commit "
        f"`{fp32_info['commit'][:10]}`). Rendered by `bench/report.py` from "
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
