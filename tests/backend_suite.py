"""The backend suite: the tests marked `backend_suite`, under each backend.

`./run.sh backends` runs this in .venv-backends (TensorFlow, JAX and
PyTorch installed, the FCN extensions in its Keras): one pytest subprocess
per backend, `KERAS_BACKEND=tensorflow|jax|torch`, each selecting
`-m backend_suite`. It then prints the matrix: per test function and
backend, the tests passed / run, and the largest scaled difference that
`fcn_model_helpers.assert_close` measured (diff / max(1, max |expected|)).

    python tests/backend_suite.py [--backends jax,torch] [pytest args...]

Exits non-zero if any backend's run failed.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree

BACKENDS = ("tensorflow", "jax", "torch")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _backends(text):
    names = tuple(name for name in text.replace(",", " ").split() if name)
    unknown = sorted(set(names) - set(BACKENDS))
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"expected backends among {BACKENDS}, comma separated. "
            f"Received: {text!r}"
        )
    return names


def run_backend(backend, pytest_args, folder):
    """Runs pytest under `backend`; returns (exit code, seconds, outcomes,
    diffs): outcomes {test function: Counter}, diffs {test function: max}."""
    junit = os.path.join(folder, f"{backend}.xml")
    diffs_file = os.path.join(folder, f"{backend}.diffs")
    env = dict(os.environ, KERAS_BACKEND=backend, FCN_DIFFS_FILE=diffs_file)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "backend_suite",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        *pytest_args,
    ]
    print(f"\n[backend_suite] KERAS_BACKEND={backend}: {' '.join(command)}")
    sys.stdout.flush()
    started = time.perf_counter()
    code = subprocess.call(command, cwd=ROOT, env=env)
    seconds = time.perf_counter() - started
    outcomes = collections.defaultdict(collections.Counter)
    if os.path.exists(junit):
        for case in ElementTree.parse(junit).iter("testcase"):
            name = f"{case.get('classname')}.{case.get('name').split('[')[0]}"
            tags = {child.tag for child in case}
            outcome = (
                "failed"
                if tags & {"failure", "error"}
                else "skipped"
                if "skipped" in tags
                else "passed"
            )
            outcomes[name][outcome] += 1
    diffs = {}
    if os.path.exists(diffs_file):
        with open(diffs_file) as f:
            for line in f:
                record = json.loads(line)
                path, _, test = record["test"].partition("::")
                name = f"{path[:-3].replace('/', '.')}.{test.split('[')[0]}"
                diffs[name] = max(diffs.get(name, 0.0), record["diff"])
    return code, seconds, outcomes, diffs


def _cell(counter, diff):
    run = sum(counter.values())
    if not run:
        return "-"
    text = f"{counter['passed']}/{run}"
    if counter["failed"]:
        text += f" ({counter['failed']} FAILED)"
    if counter["skipped"]:
        text += f" ({counter['skipped']} skipped)"
    if diff is not None:
        text += f", {diff:.1e}"
    return text


def print_matrix(results):
    names = sorted({name for r in results.values() for name in r[2]})
    print(
        "\n[backend_suite] passed/run per test function; after the comma the "
        "largest scaled difference from the reference (where compared)"
    )
    header = ["test", *results]
    rows = [
        [
            name.removeprefix("tests."),
            *(_cell(r[2].get(name, {}), r[3].get(name)) for r in results.values()),
        ]
        for name in names
    ]
    rows.append(
        ["time (s)", *(f"{r[1]:.0f}" for r in results.values())]
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths)))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="tests/backend_suite.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--backends",
        type=_backends,
        default=BACKENDS,
        help="comma-separated subset of tensorflow,jax,torch (default: all)",
    )
    args, pytest_args = parser.parse_known_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="backend_suite_") as folder:
        for backend in args.backends:
            results[backend] = run_backend(backend, pytest_args, folder)
    print_matrix(results)
    failed = [b for b, r in results.items() if r[0] != 0]
    passed = sum(r[2][n]["passed"] for r in results.values() for n in r[2])
    failures = sum(r[2][n]["failed"] for r in results.values() for n in r[2])
    print(
        f"\nbackends: {passed} passed, {failures} failed"
        + (f" (runs that failed: {', '.join(failed)})" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
