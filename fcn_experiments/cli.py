"""Command line: `python -m fcn_experiments demo|run [flags]`.

demo   the quick profile on the bundled dataset: all nine experiments,
       results and figures in snapshots/ (what `./run.sh demo` runs)
run    any settings, all as flags (`run --help`)
"""

import argparse
import dataclasses
import sys

from fcn_experiments.config import PARAMETER_HELP
from fcn_experiments.config import PROFILES
from fcn_experiments.config import STRATEGIES
from fcn_experiments.config import Config

DATA_FLAGS = (
    "train_dir",
    "validation_dir",
    "test_dir",
    "num_classes",
    "validation_split",
)


def _int_list(text):
    try:
        return tuple(int(part) for part in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas, e.g. 1,2,3. Received: {text!r}"
        ) from None


def _layer(text):
    return int(text) if text.isdigit() else text


def _flag_type(field):
    if field.name in ("experiments", "data_crops_per_cell"):
        return _int_list
    if field.name == "freeze_up_to":
        return _layer
    for kind in (int, float):
        if kind.__name__ in str(field.type):
            return kind
    return str


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m fcn_experiments",
        description=__doc__.split("\n\n")[0],
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="quick profile on the bundled dataset (all nine experiments)",
        description="Runs the quick profile on the bundled dataset. Flags "
        "override the profile.",
    )
    run = commands.add_parser(
        "run",
        help="run with any settings",
        description="Runs the experiments. Flags override the profile.",
    )
    for sub, profile in ((demo, "quick"), (run, "quick")):
        sub.add_argument(
            "--profile",
            default=profile,
            choices=sorted(PROFILES) + ["custom"],
            help=f"settings to start from (default: {profile})",
        )
        for field in dataclasses.fields(Config):
            if field.name == "profile":
                continue
            if sub is demo and field.name in DATA_FLAGS:
                continue
            flag = "--" + field.name.replace("_", "-")
            if field.type is bool:
                sub.add_argument(
                    flag,
                    dest=field.name,
                    default=None,
                    action=argparse.BooleanOptionalAction,
                    help=PARAMETER_HELP[field.name],
                )
                continue
            sub.add_argument(
                flag,
                dest=field.name,
                type=_flag_type(field),
                default=None,
                help=PARAMETER_HELP[field.name],
            )
        sub.add_argument(  # Deprecated: offline = not download_weights.
            "--download-weights",
            dest="download_weights",
            default=None,
            action=argparse.BooleanOptionalAction,
            help=argparse.SUPPRESS,
        )
        sub.add_argument(
            "--strategy",
            default="auto",
            choices=STRATEGIES,
            help="tf.distribute strategy (auto: multi-worker with "
            "TF_CONFIG, mirrored with several GPUs)",
        )
        sub.add_argument(
            "--collective-timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="multi-worker: seconds a worker waits for the others "
            "before it stops with an error (default 300)",
        )
        sub.add_argument(
            "--no-plots", action="store_true", help="skip the PNG figures"
        )
        sub.add_argument(
            "--quiet", action="store_true", help="no progress bars or tables"
        )
    return parser


def main(argv=None):
    args = vars(_parser().parse_args(argv))
    args.pop("command")
    strategy = args.pop("strategy")
    collective_timeout = args.pop("collective_timeout")
    plots_to_make = not args.pop("no_plots")
    verbose = 0 if args.pop("quiet") else 1
    # Imported here so that `--help` answers without loading TensorFlow.
    from fcn_experiments import distribute
    from fcn_experiments.config import make_config
    from fcn_experiments.runner import run_experiments
    from fcn_experiments.starting_weights import StartingWeightsError

    try:
        config = make_config(**args)
        strategy = distribute.resolve_strategy(strategy, collective_timeout)
    except (TypeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        run_experiments(
            config,
            strategy=strategy,
            plots_to_make=plots_to_make,
            verbose=verbose,
        )
    except (distribute.WorkerLostError, StartingWeightsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
