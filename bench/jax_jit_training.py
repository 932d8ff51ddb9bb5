"""Training under JAX jitted against op-by-op, with TensorFlow beside them.

usage: .venv-backends/bin/python bench/jax_jit_training.py
           [--experiments 3] [--epochs 1] [--rounds 1]

Runs the same experiments of `python -m fcn_experiments demo` (the quick
profile, offline, random initialisation, float32, no plots) three ways, in
interleaved rounds, each into a fresh folder from one shared dataset:

- `jax, jitted`: the framework's default under JAX (`jax.jit`);
- `jax, op by op`: `--run-eagerly`, which under JAX is what Keras does with
  `jit_compile=False`: every operation dispatched, and compiled, alone;
- `tensorflow`: the framework's default there (`tf.function`, no XLA).

Prints each way's wall seconds for the run, the experiments' own seconds
and their training steps, and the jitted run's speed against op by op.
Needs `.venv-backends` (`./run.sh backends --help` makes it).
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.experiments_side_by_side import run_demo  # noqa: E402
from bench.tables import read_run_results  # noqa: E402

WAYS = (
    ("jax, jitted", "jax", ("--no-run-eagerly",)),
    ("jax, op by op", "jax", ("--run-eagerly",)),
    ("tensorflow", "tensorflow", ()),
)


def experiment_seconds(output_dir):
    """The experiments' own wall seconds and training-step seconds."""
    rows = read_run_results(os.path.join(output_dir, "results.csv")).values()
    return (sum(float(row["wall_time_s"]) for row in rows),
            sum(float(row["seconds_steps"]) for row in rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", default="3")
    parser.add_argument("--epochs", default="1")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="jax_jit_")
    data_dir = os.path.join(scratch, "data")
    epochs = ("--epochs", args.epochs)
    # The dataset once, untimed: each way then only reads it.
    run_demo("1", data_dir, os.path.join(scratch, "warm_up"), epochs)
    best = {}
    for round_ in range(args.rounds):
        for name, backend, flags in WAYS:
            out = os.path.join(scratch, f"{round_}_{name.replace(' ', '_')}")
            wall, _ = run_demo(args.experiments, data_dir, out,
                               (*flags, *epochs), {"KERAS_BACKEND": backend})
            figures = (wall, *experiment_seconds(out))
            best[name] = min(best.get(name, figures), figures)
    for name, _, _ in WAYS:
        wall, experiments, steps = best[name]
        print(f"{name:>14}: {wall:6.1f} s run, {experiments:6.1f} s "
              f"experiment(s), {steps:6.1f} s training steps")
    jitted, op_by_op = best["jax, jitted"], best["jax, op by op"]
    print(f"jax jitted against op by op: {op_by_op[0] / jitted[0]:.2f}x the "
          f"run, {op_by_op[2] / jitted[2]:.2f}x the training steps")


if __name__ == "__main__":
    main()
