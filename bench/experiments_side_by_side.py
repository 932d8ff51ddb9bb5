"""Experiments one after the other against side by side (`--jobs`).

usage: .venv/bin/python bench/experiments_side_by_side.py
           [--experiments 1,3,5] [--rounds 1] [--out CSV]

Runs the same experiments of `python -m fcn_experiments demo` (the quick
profile, offline, random initialisation, float32, no plots) four ways, in
interleaved rounds, each into a fresh folder from one shared dataset:

- `one process`: `--jobs 1`, TensorFlow's own thread count (all cores);
- `one process, one thread`: `--jobs 1` with 1 intra-op thread;
- `side by side, one per core`: `--jobs` = the usable cores;
- `side by side, one more`: `--jobs` = the cores + 1 (`auto`'s choice),
  one thread each as well.

Prints each way's wall and CPU seconds (the run and its worker processes)
and its wall time against `one process`, and checks that every one-thread
way gives the same test accuracies (the same arithmetic).
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.results_file import Provenance  # noqa: E402
from bench.results_file import add_out_argument  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from fcn_experiments.training.parallel import THREAD_VARIABLES  # noqa: E402
from fcn_experiments.training.parallel import usable_cores  # noqa: E402

FLAGS = ("--offline", "--weights", "random", "--mixed-precision", "float32",
         "--no-plots", "--quiet", "--seed", "1")


def ways():
    one_thread = dict.fromkeys(THREAD_VARIABLES, "1")
    return (
        ("one process", ("--jobs", "1"), {}),
        ("one process, one thread", ("--jobs", "1"), one_thread),
        ("side by side, one per core", ("--jobs", str(usable_cores())),
         one_thread),
        ("side by side, one more", ("--jobs", str(usable_cores() + 1)),
         one_thread),
    )


def run_demo(experiments, data_dir, output_dir, flags=(), env=None):
    """Wall and CPU seconds (the run and its children) of one demo run."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "fcn_experiments", "demo", *FLAGS,
         "--experiments", experiments, "--data-dir", data_dir,
         "--output-dir", output_dir, *flags],
        check=True, env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def accuracies(output_dir):
    with open(os.path.join(output_dir, "results.csv"), newline="") as f:
        return {row["experiment"]: row["test_accuracy"]
                for row in csv.DictReader(f)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", default="1,3,5")
    parser.add_argument("--rounds", type=int, default=1)
    add_out_argument(parser)
    args = parser.parse_args()
    provenance = Provenance("experiments_side_by_side.py")
    scratch = tempfile.mkdtemp(prefix="side_by_side_")
    data_dir = os.path.join(scratch, "data")
    # The dataset once, untimed: each way then only reads it.
    run_demo("1", data_dir, os.path.join(scratch, "warm_up"), ("--epochs", "1"))
    measured = {name: [] for name, _, _ in ways()}
    found = {}
    for round_ in range(args.rounds):
        for name, flags, env in ways():
            out = os.path.join(scratch, f"{round_}_{name.replace(' ', '_')}")
            measured[name].append(run_demo(args.experiments, data_dir, out,
                                           flags, env))
            found[name] = accuracies(out)
    one_thread = [name for name, _, env in ways() if env]
    if any(found[name] != found[one_thread[0]] for name in one_thread):
        raise SystemExit(
            f"the one-thread ways differ: "
            f"{ {name: found[name] for name in one_thread} }"
        )
    baseline = min(wall for wall, _ in measured["one process"])
    rows = []
    for name, flags, env in ways():
        wall = min(w for w, _ in measured[name])
        cpu = min(c for _, c in measured[name])
        rows.append({
            "way": name, "experiments": args.experiments,
            "jobs": flags[1], "threads": env.get("OMP_NUM_THREADS", "all"),
            "wall_s": wall, "cpu_s": cpu, "speedup": baseline / wall,
            "test_accuracy": " ".join(
                f"#{k} {float(v):.4f}" for k, v in sorted(found[name].items())
            ),
        })
        print(f"{name:>24}: {wall:6.1f} s wall, {cpu:6.1f} s CPU, "
              f"{baseline / wall:.2f}x, {rows[-1]['test_accuracy']}")
    if args.out:
        write_results(args.out, rows, provenance)


if __name__ == "__main__":
    main()
