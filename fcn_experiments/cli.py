"""Command line: `python -m fcn_experiments demo|run|predict|export [flags]`.

demo     the quick profile on the bundled dataset: all nine experiments,
         results and figures in snapshots/ (what `./run.sh demo` runs)
run      any settings, all as flags (`run --help`)
predict  score image files and folders with a trained experiment
export   save a trained experiment as .keras, SavedModel or ONNX
"""

import argparse
import dataclasses
import errno
import re
import sys

from fcn_experiments.config import PARAMETER_HELP
from fcn_experiments.config import PRECISIONS
from fcn_experiments.config import PROFILES
from fcn_experiments.config import STRATEGIES
from fcn_experiments.config import Config
from fcn_experiments.tasks import DEFAULT as DEFAULT_TASK
from fcn_experiments.tasks import REGRESSION_LOSSES
from fcn_experiments.tasks import TASKS

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


def _jobs(text):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a positive integer. Received: {text!r}"
        ) from None


def _flag_type(field):
    if field.name in ("experiments", "data_crops_per_cell"):
        return _int_list
    if field.name == "score_range":
        return float
    if field.name == "freeze_up_to":
        return _layer
    if field.name == "jobs":
        return _jobs
    for kind in (int, float):
        if kind.__name__ in str(field.type):
            return kind
    return str


# argparse options of particular Config fields' flags.
FLAG_OPTIONS = {
    "mixed_precision": {"choices": PRECISIONS},
    "task": {"choices": TASKS},
    "regression_loss": {"choices": REGRESSION_LOSSES},
    "score_range": {"nargs": 2, "metavar": ("LOW", "HIGH")},
}


RUN_STATUS = (
    "Exit status: 0 finished, 1 the run stopped (one line says why and what "
    "to do; a re-run resumes), 2 usage error."
)


def build_parser(prog="python -m fcn_experiments"):
    """The command line's `argparse` parser (`demo`, `run`, `predict`,
    `export`)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0],
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="quick profile on the bundled dataset (all nine experiments)",
        description="Runs the quick profile on the bundled dataset. Flags "
        f"override the profile. {RUN_STATUS}",
    )
    run = commands.add_parser(
        "run",
        help="run with any settings",
        description=f"Runs the experiments. Flags override the profile. {RUN_STATUS}",
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
            # run_eagerly's "auto" is the tiny profile's, not a flag's.
            if field.type is bool or field.name == "run_eagerly":
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
                **FLAG_OPTIONS.get(field.name, {}),
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
    _add_model_commands(commands)
    return parser


MODEL_HELP = (
    "an experiment folder (snapshots/exp5_fcn_3x), a run's output folder "
    "with --experiment K, or a .keras file"
)
EXPORT_FORMATS = ("keras", "saved_model", "onnx")


def _add_model_source_flags(sub):
    sub.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    sub.add_argument(
        "--experiment",
        type=int,
        default=None,
        help="experiment number (1-9) when MODEL is a run's output folder",
    )
    sub.add_argument(
        "--class-names",
        nargs="+",
        default=None,
        help="class names, in the model's order (default: the saved ones)",
    )
    sub.add_argument(
        "--backbone",
        default=None,
        help="for a .keras file without its .json: whose preprocess_input "
        "it takes (mobilenet_v2, vgg16, ...)",
    )
    sub.add_argument(
        "--task",
        default=None,
        choices=TASKS,
        help="for a .keras file without its .json: what its outputs are "
        f"(default: {DEFAULT_TASK}; experiments and their .json files say it "
        "themselves)",
    )


def _add_model_commands(commands):
    predict = commands.add_parser(
        "predict",
        help="score images with a trained experiment",
        description="Scores image files and folders (searched recursively) "
        "with a trained model, each image at its own aspect ratio. Writes a "
        "CSV in input order. Exit status: 0 all scored, 1 some failed, 2 "
        "usage error.",
    )
    _add_model_source_flags(predict)
    predict.add_argument("inputs", metavar="INPUT", nargs="+",
                         help="image files and folders")
    predict.add_argument("--output", default="scores.csv",
                         help="the CSV to write (default: scores.csv)")
    predict.add_argument(
        "--size",
        type=int,
        default=None,
        help="shorter side in pixels (default: the experiment's input size)",
    )
    predict.add_argument(
        "--scales",
        default="1",
        help="average the probabilities (a regression model's scores) over "
        "these rescalings of the shorter side, e.g. 1,1.5,2 (default: 1)",
    )
    predict.add_argument("--heatmaps", default=None, metavar="DIR",
                         help="write each image's score map as a PNG here")
    predict.add_argument("--batch-size", type=int, default=8,
                         help="images per batch (default: 8)")
    predict.add_argument("--quiet", action="store_true",
                         help="no progress bar")
    export = commands.add_parser(
        "export",
        help="export a trained experiment for serving",
        description="Exports a trained model: a .keras file, a SavedModel "
        "with a dynamic-size serving signature, or ONNX. Writes OUT.json "
        "beside it (backbone, input size, class names, task). Exit status: "
        "0 exported, 1 a write failed, 2 usage error.",
    )
    _add_model_source_flags(export)
    export.add_argument("out", metavar="OUT", help="file or folder to write")
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS)


def _run_model_command(args):
    """`predict` or `export`; returns the exit status."""
    # Imported here so that `--help` answers without loading TensorFlow.
    from fcn_experiments.errors import UsageError
    from fcn_experiments.predict.model_source import resolve_model_source

    try:
        scales = (1.0,)
        if args.command == "predict":
            from fcn_experiments.data.listing import list_images
            from fcn_experiments.predict.images import parse_scales

            scales = parse_scales(args.scales)
            paths, left_out = list_images(args.inputs)
            if not paths:
                raise UsageError(
                    "No image files found (.bmp .gif .jpeg .jpg .png). "
                    f"Received: INPUT={args.inputs}"
                )
        source = resolve_model_source(
            args.model,
            experiment=args.experiment,
            class_names=args.class_names,
            backbone=args.backbone,
            size=getattr(args, "size", None),
            task=args.task,
        )
        if args.command == "export":
            from fcn_experiments.predict.export import export_model

            written = export_model(source, args.out, args.format)
            print(f"Exported {source.name} ({args.format}): {written}")
            return 0
        from fcn_experiments.predict.images import predict_images
        from fcn_experiments.predict.reports import write_scores_csv

        if left_out:
            print(f"Left out {left_out} file(s) without an image extension.")
        scores, stats = predict_images(
            source,
            paths,
            size=args.size,
            scales=scales,
            batch_size=args.batch_size,
            heatmaps=args.heatmaps,
            verbose=0 if args.quiet else 1,
        )
    except UsageError as error:  # ModelSourceError included: one line.
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_scores_csv(
        args.output,
        scores,
        source.class_names,
        scales,
        heatmaps=args.heatmaps is not None,
        task=source.task,
    )
    if stats["failed"]:
        first = next(row for row in scores if row.error)
        print(
            f"error: {stats['failed']} of {len(scores)} images could not be "
            f"scored (first: {first.path}); see the error column of "
            f"{args.output}.",
            file=sys.stderr,
        )
        return 1
    print(f"Wrote {args.output}")
    return 0


# What to do about a failed write, by errno name.
WRITE_FIXES = {
    "ENOSPC": "Free some space there, or pass another {flag}",
    "EDQUOT": "Free some of your quota there, or pass another {flag}",
    "EROFS": "That file system is read-only: pass a {flag} on a writable one",
    "EACCES": "Give yourself write permission there, or pass another {flag}",
    "EPERM": "Give yourself write permission there, or pass another {flag}",
}


def os_error_line(error, command, output):
    """One line for an `OSError` of `command`: the path, what went wrong,
    what to do. `output` is the command's output path (where the path is
    not known, e.g. from inside h5py)."""
    path = error.filename or _h5py_file_name(str(error)) or output
    reason = error.strerror or str(error).split(" (")[0]
    code = errno.errorcode.get(error.errno, "")
    if code not in WRITE_FIXES:
        return f"{path}: {reason}."
    fix = WRITE_FIXES[code].format(
        flag="--output-dir" if command in ("run", "demo") else "output path"
    )
    again = (
        "run the same command again: it resumes from the last finished epoch"
        if command in ("run", "demo")
        else "run the command again"
    )
    return f"could not write {path}: {reason}. {fix}, then {again}."


def _h5py_file_name(text):
    """The file named in an h5py error message (`name = '...'`), if any."""
    found = re.search(r"name = '([^']+)'", text)
    return found.group(1) if found else None


def main(argv=None, prog="python -m fcn_experiments"):
    parsed = build_parser(prog).parse_args(argv)
    output = getattr(parsed, "output_dir", None) or getattr(
        parsed, "output", None
    ) or getattr(parsed, "out", None)
    command = parsed.command
    try:
        return _run_command(parsed)
    except OSError as error:  # Disk full, read-only, no permission, ...
        print(f"error: {os_error_line(error, command, output)}", file=sys.stderr)
        # h5py's file objects, freed with the error's frames, would report
        # the same failed write again as 'Exception ignored' tracebacks.
        sys.unraisablehook = _quiet_h5py_cleanup
        return 1


def _quiet_h5py_cleanup(unraisable):
    if "h5py" not in repr(unraisable.object):
        sys.__unraisablehook__(unraisable)


def _run_command(parsed):
    """`parsed`'s command; returns the exit status."""
    if parsed.command in ("predict", "export"):
        return _run_model_command(parsed)
    args = vars(parsed)
    args.pop("command")
    strategy = args.pop("strategy")
    collective_timeout = args.pop("collective_timeout")
    plots_to_make = not args.pop("no_plots")
    verbose = 0 if args.pop("quiet") else 1
    # Imported here so that `--help` answers without loading TensorFlow.
    from fcn_experiments.config import make_config
    from fcn_experiments.errors import UsageError
    from fcn_experiments.models.starting_weights import StartingWeightsError
    from fcn_experiments.runner import run_experiments
    from fcn_experiments.training import distribute
    from fcn_experiments.training.output_lock import OutputInUseError
    from fcn_experiments.training.parallel import WorkerProcessError
    from fcn_experiments.training.records import SettingsChangedError

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
    except (
        distribute.WorkerLostError,
        OutputInUseError,
        SettingsChangedError,
        StartingWeightsError,
        UsageError,  # SplitError included.
        WorkerProcessError,
    ) as error:  # One line: what went wrong and what to do.
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def console_main():
    """Entry point of the `fcn-experiments` console script."""
    sys.exit(main(prog="fcn-experiments"))
