"""Renders the generated tables of README.md and BENCHMARKS.md.

Every measured table in the two files is produced here from a committed
results file under `docs/results/`, never copied by hand, and each says the
date and machine it was measured on. The model table is produced from the
code (the backbones' `SPEC` and the built models).

    python bench/report.py            print every generated block
    python bench/report.py --write    rewrite the blocks in README.md and BENCHMARKS.md
    python bench/report.py --check    exit 1 when a block differs from its rendering
    python bench/report.py --import-run DIR --seed N [--with-predictions] --write
                                      copy a finished demo run in, then rewrite

A block sits between `<!-- begin: NAME -->` and `<!-- end: NAME -->` lines.
`tests/test_readme_tables.py` runs the check.

Inputs:
- `docs/results/demo/run.json`: date, machine, commit and command of the
  demo runs;
- `docs/results/demo/seed<N>/results.csv`: `results.csv` of
  `./run.sh demo --seed N` as the framework wrote it;
- `docs/results/demo/seed1/exp<k>_<name>/test_predictions.csv`: seed 1's
  per-image predictions (paths relative to the run's output folder), for the
  pairwise McNemar tests.
"""

import argparse
import csv
import difflib
import importlib
import json
import os
import re
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# Pure Python (no Keras import): rendering the demo tables stays fast.
from bench import score_table  # noqa: E402
from fcn_experiments.accuracy_statistics import mcnemar_exact  # noqa: E402
from fcn_experiments.accuracy_statistics import wilson_interval  # noqa: E402

DEMO_DIR = os.path.join(ROOT, "docs", "results", "demo")
CONFIDENCE = 0.95
BEGIN = "<!-- begin: {} -->"
END = "<!-- end: {} -->"

# (module, builder) of each backbone, in the README's order.
BACKBONES = (
    ("vgg16_fcn", "VGG16_fcn"),
    ("vgg19_fcn", "VGG19_fcn"),
    ("inception_v3_fcn", "InceptionV3_fcn"),
    ("xception_fcn", "Xception_fcn"),
    ("mobilenet_v2_fcn", "MobileNetV2_fcn"),
)


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


def _input(row):
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
        cells = [str(k), ref["title"], _input(ref)]
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
            f"| {k} | {row['title']} | {_input(row)} | {row['best_epoch']} | "
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


def model_table():
    """Builder, sizes, stride, skip branch and parameters of each backbone,
    from its `SPEC` and the built model (ImageNet's 1000 classes)."""
    import keras

    lines = [
        "| builder | native size | min size | stride | skip branch from | "
        "parameters | float32 weights |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for module_name, builder in BACKBONES:
        module = importlib.import_module(f"keras.src.applications.{module_name}")
        spec = module.SPEC
        model = getattr(module, builder)(weights=None, pooling=None)
        # The stride: how far the score map moves per input pixel.
        s1 = 2 * spec.default_size
        s2 = s1 + 256
        m1 = model.compute_output_shape((1, s1, s1, 3))[1]
        m2 = model.compute_output_shape((1, s2, s2, 3))[1]
        stride = (s2 - s1) // (m2 - m1)
        params = model.count_params()
        lines.append(
            f"| `{builder}` | {spec.default_size} | {spec.min_size} | "
            f"{stride} | `{spec.skip_layer}` | {params / 1e6:.1f} M | "
            f"{params * 4 / 2**20:.0f} MiB |"
        )
        del model
        keras.backend.clear_session()
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


# ------------------------------------------------------------------ blocks


def renderers(demo_dir=DEMO_DIR):
    """`{file: {block: function}}`: the generated blocks of each file."""

    def seed_one():
        seeds = read_demo_seeds(demo_dir)
        seed = min(seeds)
        return seed, seeds[seed], os.path.join(demo_dir, f"seed{seed}")

    def demo():
        return demo_table(read_demo_seeds(demo_dir), read_run_info(demo_dir))

    def single():
        seed, rows, run_dir = seed_one()
        return single_run_table(seed, rows, run_dir, read_run_info(demo_dir))

    def pairwise():
        seed, rows, run_dir = seed_one()
        return pairwise_table(seed, rows, run_dir, read_run_info(demo_dir))

    return {
        "README.md": {
            "demo-table": demo,
            "model-table": model_table,
            "regression-table": score_table.render,
        },
        "BENCHMARKS.md": {
            "demo-table": demo,
            "demo-single-run": single,
            "demo-pairwise": pairwise,
        },
    }


def block_text(text, name):
    """The text between a block's markers (without them), or `None`."""
    begin, end = BEGIN.format(name), END.format(name)
    match = re.search(
        re.escape(begin) + r"\n(.*?)\n?" + re.escape(end), text, re.DOTALL
    )
    return None if match is None else match.group(1)


def replace_block(text, name, content):
    begin, end = BEGIN.format(name), END.format(name)
    if block_text(text, name) is None:
        raise ValueError(
            f"No block {name!r}: add the lines {begin} and {end} where it "
            "goes."
        )
    pattern = re.escape(begin) + r"\n.*?" + re.escape(end)
    return re.sub(
        pattern, lambda _: f"{begin}\n{content}\n{end}", text, count=1,
        flags=re.DOTALL,
    )


def render_file(path, blocks):
    """The file's text with its blocks rendered anew."""
    with open(path) as f:
        text = f.read()
    for name, render in blocks.items():
        text = replace_block(text, name, render())
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="rewrite the blocks")
    group.add_argument(
        "--check", action="store_true", help="exit 1 when a block differs"
    )
    parser.add_argument(
        "--root", default=ROOT, help="folder holding README.md and BENCHMARKS.md"
    )
    parser.add_argument("--demo-dir", default=DEMO_DIR)
    parser.add_argument(
        "--block",
        action="append",
        help="only this block (repeatable; default: all)",
    )
    parser.add_argument(
        "--import-run",
        metavar="DIR",
        help="first copy this finished demo run's results.csv into "
        "--demo-dir (with --seed; see docs/results/README.md)",
    )
    parser.add_argument("--seed", type=int, help="the imported run's seed")
    parser.add_argument(
        "--import-regression",
        metavar="DIR",
        help="first copy this finished `./run.sh demo --task regression` "
        "run's results.csv into docs/results/regression/",
    )
    parser.add_argument(
        "--with-predictions",
        action="store_true",
        help="also copy the run's test_predictions.csv files",
    )
    args = parser.parse_args(argv)
    if args.import_regression:
        score_table.import_run(args.import_regression)
    if args.import_run:
        if args.seed is None:
            parser.error("--import-run needs --seed N")
        import_run(
            args.import_run, args.seed, args.demo_dir, args.with_predictions
        )
    differs = False
    for file_name, blocks in renderers(args.demo_dir).items():
        if args.block:
            blocks = {k: v for k, v in blocks.items() if k in args.block}
        path = os.path.join(args.root, file_name)
        if not (args.write or args.check):
            for name, render in blocks.items():
                print(f"{file_name}: {name}\n{render()}\n")
            continue
        with open(path) as f:
            old = f.read()
        new = render_file(path, blocks)
        if old == new:
            continue
        if args.write:
            with open(path, "w") as f:
                f.write(new)
            print(f"rewrote {path}")
        else:
            differs = True
            sys.stdout.writelines(
                difflib.unified_diff(
                    old.splitlines(True), new.splitlines(True), path, "rendered"
                )
            )
    if differs:
        print(
            "Generated tables differ from their results files: run "
            "`python bench/report.py --write` and commit.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
