"""Where the demo's time goes: seconds per phase of each experiment and of the run.

usage: .venv/bin/python bench/demo_breakdown.py [--task regression]
           [--output-dir DIR] [--from DIR] [--out CSV] [-- DEMO FLAGS...]

Runs `python -m fcn_experiments demo` (the quick profile, all nine
experiments, offline) in this process, or reads a finished run (`--from`),
and prints each experiment's phases from its results.csv columns
`seconds_<phase>` and the run's own phases from timings.json
(fcn_experiments/training/timings.py says what each phase holds). `fixed` is
everything but the training steps: the cost per experiment that the work
(images x epochs) does not set. With experiments side by side (`--jobs`)
their seconds overlap: the run's wall time is then less than their sum.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.results_file import Provenance  # noqa: E402
from bench.results_file import add_out_argument  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from fcn_experiments.reporting.results import read_results  # noqa: E402
from fcn_experiments.training import timings  # noqa: E402


def run_demo(output_dir, task, extra):
    from fcn_experiments.cli import main

    argv = ["demo", "--offline", "--output-dir", output_dir, *extra]
    if task:
        argv += ["--task", task]
    start = time.perf_counter()
    main(argv)
    return time.perf_counter() - start


def breakdown_rows(output_dir):
    """One row per experiment (its phases), then one `run` row: the run's
    own phases, the experiments' phases summed, total and CPU seconds."""
    rows = []
    sums = dict.fromkeys(timings.EXPERIMENT_PHASES, 0.0)
    for result in read_results(output_dir):
        row = {"experiment": result["experiment"], "name": result["name"]}
        for phase in timings.EXPERIMENT_PHASES:
            seconds = float(result.get(timings.column(phase)) or 0.0)
            row[phase] = seconds
            sums[phase] += seconds
        row["wall"] = float(result["wall_time_s"])
        row["fixed"] = row["wall"] - row["steps"]
        rows.append(row)
    run = timings.read_run_timings(output_dir)
    total = {"experiment": "run", "name": "all", **sums}
    total.update({p: run.get(p, 0.0) for p in timings.RUN_PHASES})
    total["wall"] = run["total"]
    # The experiments' own fixed cost plus the run's: with experiments side
    # by side (`jobs`) their seconds overlap, so wall - steps would not be.
    total["fixed"] = sum(row["fixed"] for row in rows) + sum(
        run.get(p, 0.0) for p in timings.RUN_PHASES
    )
    total["cpu"] = run.get("cpu", "")
    rows.append(total)
    return rows


def print_table(rows):
    phases = list(timings.EXPERIMENT_PHASES) + list(timings.RUN_PHASES)
    keys = ["experiment", "name"] + phases + ["fixed", "wall", "cpu"]
    shown = [k for k in keys if any(k in r for r in rows)]
    print("  ".join(f"{k[:10]:>10}" for k in shown))
    for row in rows:
        cells = []
        for k in shown:
            value = row.get(k, "")
            text = f"{value:.1f}" if isinstance(value, float) else str(value)
            cells.append(f"{text[:10]:>10}")
        print("  ".join(cells))
    run = rows[-1]
    print(
        f"\nrun: {run['wall']:.0f} s wall, {run['cpu']:.0f} s CPU; training "
        f"steps {run['steps']:.0f} s, fixed cost {run['fixed']:.0f} s "
        f"({run['fixed'] / (run['fixed'] + run['steps']):.0%} of the "
        "experiments' and the run's seconds)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("classification", "regression"))
    parser.add_argument("--output-dir", help="default: a temporary folder")
    parser.add_argument(
        "--from", dest="source", metavar="DIR",
        help="read a finished run's folder instead of running the demo",
    )
    add_out_argument(parser)
    parser.add_argument("demo_flags", nargs="*", help="more `demo` flags")
    args = parser.parse_args()
    provenance = Provenance("demo_breakdown.py")
    folder = args.source
    if folder is None:
        folder = args.output_dir or tempfile.mkdtemp(prefix="demo_breakdown_")
        run_demo(folder, args.task, args.demo_flags)
    rows = breakdown_rows(folder)
    print_table(rows)
    if args.out:
        write_results(args.out, rows, provenance)


if __name__ == "__main__":
    main()
