"""Renders the generated tables of README.md and BENCHMARKS.md.

Every measured table in the two files is produced here from a committed
results file under `docs/results/`, never copied by hand, and each says the
date and machine it was measured on. The model table is produced from the
code (the backbones' `SPEC` and the built models), and so is the table of
the global-pooling families `keras.applications.fcn.to_fcn` converts.

    python bench/report.py            print every generated block
    python bench/report.py --write    rewrite the blocks in README.md and BENCHMARKS.md
    python bench/report.py --check    exit 1 when a block differs from its rendering
    python bench/report.py --import-run DIR --seed N [--with-predictions] --write
                                      copy a finished demo run in, then rewrite

A block sits between `<!-- begin: NAME -->` and `<!-- end: NAME -->` lines.
`tests/test_readme_tables.py` runs the check. What each block shows is
`bench/blocks.py`; reading the committed results and rendering tables is
`bench/tables.py`.
"""

import argparse
import difflib
import importlib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.blocks import BF16_DIR  # noqa: E402
from bench.blocks import DEMO_DIR  # noqa: E402
from bench.blocks import TWO_THREADS_DIR  # noqa: E402
from bench.blocks import bench_renderers  # noqa: E402
from bench.blocks import demo_table  # noqa: E402
from bench.blocks import import_regression_run  # noqa: E402
from bench.blocks import import_run  # noqa: E402
from bench.blocks import pairwise_table  # noqa: E402
from bench.blocks import precision_table  # noqa: E402
from bench.blocks import read_demo_seeds  # noqa: E402
from bench.blocks import regression_block  # noqa: E402
from bench.blocks import single_run_table  # noqa: E402
from bench.tables import read_run_info  # noqa: E402

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
        module = importlib.import_module(f"keras.applications.{module_name}")
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


def family_table():
    """Each global-pooling family `fcn.to_fcn` converts: its members, and
    the sizes, stride and skip layer of its first member, from the built
    model (ImageNet's 1000 classes)."""
    import keras
    from keras.applications import fcn

    lines = [
        "| family | members | converted | native size | min size | stride "
        "| skip branch from | parameters |",
        "|---|---|---|---:|---:|---:|---|---:|",
    ]
    for family, members in fcn.FAMILIES.items():
        name = members[0]
        # Keras numbers unnamed layers per session (ConvNeXt's `add_2`).
        keras.backend.clear_session()
        kwargs = {"input_shape": (224, 224, 3)} if family == "MobileNetV3" else {}
        model = getattr(keras.applications, name)(weights=None, **kwargs)
        geometry = fcn.geometry(fcn.to_fcn(model))
        try:
            skip = fcn.to_fcn(model, skip=True).get_layer("skip_reduce")
            skip = f"`{skip.input._keras_history.operation.name}`"
        except ValueError:
            skip = "none"
        rows, cols = geometry.native_size
        lines.append(
            f"| {family} | {', '.join(members)} | `fcn.to_fcn({name}(...))` "
            f"| {rows} | {geometry.min_size[0]} | {geometry.stride} | {skip} "
            f"| {model.count_params() / 1e6:.1f} M |"
        )
    keras.backend.clear_session()
    return "\n".join(lines)


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
            "family-table": family_table,
            "regression-table": regression_block,
        },
        "BENCHMARKS.md": {
            "demo-table": demo,
            "demo-single-run": single,
            "demo-pairwise": pairwise,
            "demo-bf16": lambda: precision_table(TWO_THREADS_DIR, BF16_DIR),
            **bench_renderers(),
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
        "run's results.csv into docs/results/regression/seed<N>/ (with --seed)",
    )
    parser.add_argument(
        "--with-predictions",
        action="store_true",
        help="also copy the run's test_predictions.csv files",
    )
    args = parser.parse_args(argv)
    if args.import_regression:
        if args.seed is None:
            parser.error("--import-regression needs --seed N")
        import_regression_run(args.import_regression, args.seed)
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
