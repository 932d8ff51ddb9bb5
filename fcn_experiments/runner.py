"""Running the nine experiments end to end: the framework's entry point."""

import dataclasses
import os
import shutil
import tempfile
import time

import keras

from fcn_experiments import distribute
from fcn_experiments import plots
from fcn_experiments import precision as run_precision
from fcn_experiments import scored_test_scores
from fcn_experiments import scored_test_set
from fcn_experiments import splits as run_splits
from fcn_experiments import tasks
from fcn_experiments import timings
from fcn_experiments import training
from fcn_experiments.backbones import get_backbone
from fcn_experiments.config import make_config
from fcn_experiments.datasets import load_splits
from fcn_experiments.datasets import resolve_folders
from fcn_experiments.distribute import resolve_strategy
from fcn_experiments.distribute import worker_id
from fcn_experiments.experiments import EXPERIMENTS
from fcn_experiments.experiments import build_experiment_model
from fcn_experiments.experiments import get_experiment
from fcn_experiments.results import text_table
from fcn_experiments.results import write_json_atomic
from fcn_experiments.results import write_results
from fcn_experiments.starting_weights import check_offline_weights
from fcn_experiments.starting_weights import prepare_starting_weights


def _outputs_line(config, names):
    if config.task == "regression":
        return f"regression of {names[0]!r}"
    if config.task == "distribution":
        return f"distributions over {len(names)} bins"
    return f"{len(names)} classes: {', '.join(names)}"


def _elapsed(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def class_names_of(directory):
    """Class names as Keras infers them: sorted subfolder names."""
    return sorted(
        entry.name for entry in os.scandir(directory) if entry.is_dir()
    )


def output_names(config, directory):
    """The names of the model's outputs: the classes, or a score task's
    label columns (one score, or K bins)."""
    if tasks.is_scored(config.task):
        return tasks.label_columns(config.task, directory)
    return class_names_of(directory)


def headline(result):
    """The one-line test result of an experiment."""
    if result.get("task", "classification") == "classification":
        return f"test accuracy {result['test_accuracy']:.4f}"
    return (
        f"test SRCC {float(result['test_srcc']):.4f} "
        f"(95% interval {float(result['test_srcc_low']):.3f} to "
        f"{float(result['test_srcc_high']):.3f})"
    )


def score_threshold(config, folders):
    """The binary accuracy's boundary of a score task (`tasks.threshold`;
    the median from the training folder's table, never the test's)."""
    if config.score_threshold is not None or config.score_range is not None:
        return tasks.threshold(config)
    from keras.src.utils.fcn_image_table import read_score_table

    columns = tasks.label_columns(config.task, folders.train)
    _, labels = read_score_table(
        tasks.table_path(config.task, folders.train),
        folders.train,
        columns[0] if config.task == "regression" else columns,
    )
    if config.task == "distribution":
        labels = tasks.mean_scores(config.task, labels)
    return tasks.threshold(config, labels)


def model_label(config):
    return get_backbone(config.model).label(config.alpha)


def _run_one(
    experiment,
    config,
    folders,
    class_names,
    start,
    strategy,
    folder,
    callbacks,
    verbose,
    run_split,
    fingerprint,
    precision,
    threshold=None,
):
    started = time.perf_counter()
    watch = timings.Stopwatch()
    os.makedirs(folder, exist_ok=True)
    # Frees the previous experiment's model and restarts Keras' layer naming.
    # It also resets Keras' global dtype policy to float32: set it again.
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(precision.policy)
    write_json_atomic(
        os.path.join(folder, training.CONFIG_FILE), fingerprint
    )
    # Same seed on a fresh run and on a resume: same shuffling and dropout.
    keras.utils.set_random_seed(config.seed + experiment.number)
    size, mode = experiment.input_size(config), experiment.mode(config)
    batch_size = config.batch_size * strategy.num_replicas_in_sync
    with watch.phase("data"):
        splits = load_splits(
            folders, config, size=size, mode=mode, batch_size=batch_size
        )
    if splits[0].class_names != class_names:
        raise ValueError(
            f"The loader found classes {splits[0].class_names} in "
            f"{folders.train}, expected {class_names}."
        )
    counts = run_splits.check_loaded(
        run_split,
        dict(zip(run_splits.SPLITS, (s.file_paths for s in splits))),
        config.min_class_images,
    )
    if verbose:
        print(
            f"{splits[0].num_images} train, {splits[1].num_images} validation, "
            f"{splits[2].num_images} test images"
        )
        if precision.images_per_s:
            seconds = run_precision.epoch_estimate(
                precision.images_per_s,
                splits[0].num_images,
                size,
                config.input_size,
                crops=3 if mode == "multicrop" else 1,
            )
            print(
                f"{run_precision.estimate_line(seconds)} (from "
                f"{precision.images_per_s:.1f} img/s timed at "
                f"{config.input_size} px)"
            )
    with strategy.scope():
        with watch.phase("build"):
            model = build_experiment_model(
                experiment,
                config,
                len(class_names),
                start["path"],
                random_init=start["weights"] == "random",
            )
        measured = training.train_and_test(
            model, splits, folder, config, callbacks, verbose, started,
            threshold=threshold, watch=watch,
        )
    result = {
        "experiment": experiment.number,
        "name": experiment.name,
        "title": experiment.title,
        "model": model_label(config),
        "input_size": size,
        "resize_mode": mode,
        **measured,
        "weights": start["weights"],
        "recipe": training.recipe(config, start["weights"] == "random"),
        "train_images": splits[0].num_images,
        "validation_images": splits[1].num_images,
        # The images scored (a file that failed to decode is not).
        "test_images": measured["test_images"],
        "classes": " ".join(class_names),
        "class_counts": counts,
        # The policy it trained under (`auto` resolved), and why.
        "mixed_precision": precision.policy,
        "precision_reason": precision.reason,
    }
    with watch.phase("save"):
        save_best_model(model, experiment, config, class_names, folder)
    result.update(watch.columns())
    training.finish(folder, result)
    return result


BEST_MODEL_FILE = "best.keras"


def save_best_model(model, experiment, config, class_names, folder):
    """Saves the best epoch's model as `best.keras`, with `best.keras.json`
    (backbone, input size, class names, task) for `predict` and `export`."""
    from fcn_experiments.model_source import ModelSource
    from fcn_experiments.model_source import write_info

    size = experiment.input_size(config)
    path = os.path.join(folder, BEST_MODEL_FILE)
    model.save(path)
    source = ModelSource(
        model,
        config.model,
        size,
        list(class_names),
        experiment.folder,
        fixed_size=None if experiment.fcn else size,
        task=config.task,
    )
    write_info(path, source)


def _with_other_finished(rows, config, fingerprint):
    """`rows` plus the experiments not selected this time that finished
    earlier in the same output folder with the same settings, by number."""
    done = {row["experiment"] for row in rows}
    for experiment in EXPERIMENTS:
        if experiment.number in done:
            continue
        folder = os.path.join(config.output_dir, experiment.folder)
        try:
            result = training.load_finished(folder, fingerprint)
        except RuntimeError:  # Other settings: not part of these results.
            continue
        if result is not None:
            rows.append(result)
    return sorted(rows, key=lambda row: row["experiment"])


def run_experiments(
    config=None,
    *,
    strategy="auto",
    callbacks=(),
    plots_to_make=True,
    verbose=1,
    **params,
):
    """Runs the selected experiments; skips finished ones, resumes killed ones.

    Args:
        config: a `Config`; if None, `make_config(**params)` builds one (e.g.
            `profile="quick"`, `train_dir=...`, `epochs=3`).
        strategy: a `tf.distribute.Strategy` or a name for
            `resolve_strategy` (`"auto"`, `"default"`, `"mirrored"`,
            `"multi_worker"`). Batch size is per replica.
        callbacks: extra Keras callbacks for every `fit`.
        plots_to_make: write the PNG figures.
        verbose: 0 silent, 1 progress bars and summary.
        **params: `Config` fields, used when `config` is None.

    Returns:
        The result rows (dicts with the `results.FIELDS`), as also written to
        `results.csv`/`results.md` in `config.output_dir`: one per selected
        experiment, plus those finished earlier in the same folder with the
        same settings.
    """
    if config is None:
        config = make_config(**params)
    elif params:
        raise TypeError(
            "Pass settings either as `config` or as keyword parameters, not "
            f"both. Received: config and {sorted(params)}"
        )
    # `_run_all` sets the run's policy once it knows something will train.
    previous_policy = keras.mixed_precision.global_policy()
    try:
        return _run_configured(
            config, strategy, callbacks, plots_to_make, verbose
        )
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _run_configured(config, strategy, callbacks, plots_to_make, verbose):
    strategy = resolve_strategy(strategy)
    worker = worker_id(strategy)
    chief_dir = config.output_dir
    if worker is not None:
        # Every worker trains; only the chief keeps the results. The others
        # write to a scratch folder, seeded from the chief's state.
        config = dataclasses.replace(
            config,
            output_dir=tempfile.mkdtemp(prefix=f"fcn_{worker}_"),
            data_dir=config.data_dir or os.path.join(chief_dir, "data"),
        )
    try:
        return _run_all(config, strategy, worker, chief_dir, callbacks,
                        plots_to_make, verbose)
    except distribute.LOST_WORKER_ERRORS as error:
        if not distribute.is_multi_worker(strategy):
            raise
        raise distribute.worker_lost_error(error, strategy) from None
    finally:
        if worker is not None:
            shutil.rmtree(config.output_dir, ignore_errors=True)


def _run_all(config, strategy, worker, chief_dir, callbacks, plots_to_make,
             verbose):
    say = print if verbose else (lambda *args, **kwargs: None)
    began = time.perf_counter()
    watch = timings.Stopwatch()
    os.makedirs(config.output_dir, exist_ok=True)
    check_offline_weights(config)  # Before building the bundled dataset.
    with watch.phase("dataset"):
        folders = resolve_folders(config)
    class_names = output_names(config, folders.train)
    threshold = (
        score_threshold(config, folders) if tasks.is_scored(config.task) else None
    )
    if config.num_classes is not None and config.num_classes != len(
        class_names
    ):
        raise ValueError(
            f"Found {len(class_names)} class folders {class_names} in "
            f"{folders.train}, but num_classes={config.num_classes}. Fix "
            "num_classes or the class subfolders."
        )
    say(
        f"FCN experiments {list(config.experiments)}: {model_label(config)}, "
        f"base size {config.input_size}, {config.epochs} epoch(s), data "
        f"'{folders.name}' ({_outputs_line(config, class_names)}), "
        f"{strategy.num_replicas_in_sync} replica(s), output {config.output_dir}"
    )
    run_split = run_splits.plan_split(folders, config)
    # The split is part of the settings: a changed one is refused on resume.
    fingerprint = {**config.fingerprint(), "split": run_splits.fingerprint(run_split)}
    if not config.force:  # Refused before the record of the split changes.
        for number in config.experiments:
            training.check_fingerprint(
                os.path.join(config.output_dir, get_experiment(number).folder),
                fingerprint,
            )
    run_splits.record(run_split, config.output_dir, folders.train)
    say(run_splits.summary(run_split))
    start = None
    rows = []
    for number in config.experiments:
        experiment = get_experiment(number)
        folder = os.path.join(config.output_dir, experiment.folder)
        if worker is not None:
            distribute.copy_chief_state(
                os.path.join(chief_dir, experiment.folder), folder
            )
        say(
            f"\nexperiment {number}/9: {experiment.name} - {experiment.title} "
            f"({experiment.input_size(config)} px, {experiment.mode(config)}) "
            f"[elapsed {_elapsed(time.perf_counter() - began)}]"
        )
        if config.force:
            training.reset(folder)
        result = training.load_finished(folder, fingerprint)
        if result is not None:
            say(
                f"  finished earlier ({headline(result)}); "
                "skipped. Pass force=True to re-run it."
            )
        else:
            if start is None:
                # The starting weights first: a broken weights file stops
                # the run before the precision probe's timed steps. They are
                # float32 variables under any policy, so the file is the same.
                with watch.phase("weights"):
                    start = prepare_starting_weights(config, len(class_names))
                # Before the experiments' models are built: the policy
                # applies to all of them.
                with watch.phase("precision"):
                    precision = run_precision.resolve(
                        config, len(class_names), strategy, say
                    )
                keras.mixed_precision.set_global_policy(precision.policy)
            result = _run_one(
                experiment,
                config,
                folders,
                class_names,
                start,
                strategy,
                folder,
                callbacks,
                verbose,
                run_split,
                fingerprint,
                precision,
                threshold,
            )
            say(
                f"experiment {number}/9 done: {headline(result)} "
                f"(best epoch {result['best_epoch']} "
                f"on validation) [elapsed {_elapsed(time.perf_counter() - began)}]"
            )
        rows.append(result)
    if worker is not None:
        return rows
    rows = _with_other_finished(rows, config, fingerprint)
    statistics = (
        scored_test_scores if tasks.is_scored(config.task) else scored_test_set
    )
    with watch.phase("statistics"):
        statistics.add_statistics(
            rows, config.output_dir, lambda number: get_experiment(number).folder
        )
    with watch.phase("results"):
        csv_path, _ = write_results(rows, config.output_dir)
    if plots_to_make:
        with watch.phase("plots"):
            plots.make_all(rows, config, class_names, strategy)
    timings.write_run_timings(
        config.output_dir, watch, time.perf_counter() - began
    )
    say(
        f"\nResults ({csv_path}), total {_elapsed(time.perf_counter() - began)}:"
    )
    say(text_table(rows))
    return rows
