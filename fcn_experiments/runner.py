"""Running the nine experiments end to end: the framework's entry point."""

import dataclasses
import os
import shutil
import sys
import tempfile
import time

import keras

from fcn_experiments import tasks
from fcn_experiments.config import make_config
from fcn_experiments.data import splits as run_splits
from fcn_experiments.data.bundled import example_panels
from fcn_experiments.data.pipelines import load_splits
from fcn_experiments.data.pipelines import resolve_folders
from fcn_experiments.errors import UsageError
from fcn_experiments.models.backbones import get_backbone
from fcn_experiments.models.experiments import EXPERIMENTS
from fcn_experiments.models.experiments import best_fcn_row
from fcn_experiments.models.experiments import build_experiment_model
from fcn_experiments.models.experiments import get_experiment
from fcn_experiments.models.starting_weights import check_offline_weights
from fcn_experiments.models.starting_weights import prepare_starting_weights
from fcn_experiments.predict.model_source import resolve_model_source
from fcn_experiments.predict.model_source import save_best_model
from fcn_experiments.reporting import plots
from fcn_experiments.reporting import run_record
from fcn_experiments.reporting.results import text_table
from fcn_experiments.reporting.results import write_results
from fcn_experiments.training import distribute
from fcn_experiments.training import loop as training
from fcn_experiments.training import parallel
from fcn_experiments.training import precision as run_precision
from fcn_experiments.training import records
from fcn_experiments.training import timings
from fcn_experiments.training.distribute import resolve_strategy
from fcn_experiments.training.distribute import worker_id
from fcn_experiments.training.output_lock import output_lock


def _elapsed(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def headline(result):
    """The one-line test result of an experiment."""
    return tasks.get(result.get("task")).headline(result)


def model_label(config):
    return get_backbone(config.model).label(config.alpha)


@dataclasses.dataclass(kw_only=True)
class _Run:
    """What every experiment of one run shares."""

    config: object
    strategy: object
    folders: object
    class_names: list
    threshold: float | None
    split: object
    fingerprint: dict
    callbacks: tuple
    verbose: int
    say: object
    began: float
    watch: object  # The run's own phases (`timings.Stopwatch`).
    jobs: int = 1  # Worker processes that train side by side (1: this one).
    start: dict | None = None  # The starting weights, once prepared.
    precision: object = None  # The dtype policy, once resolved.

    def prepare_training(self):
        """The starting weights and the dtype policy, before the first
        experiment that trains (none when all finished earlier)."""
        if self.start is not None:
            return
        # The starting weights first: a broken weights file stops the run
        # before the precision probe's timed steps. They are float32
        # variables under any policy, so the file is the same.
        with self.watch.phase("weights"):
            self.start = prepare_starting_weights(
                self.config, len(self.class_names)
            )
        # Before the experiments' models are built: the policy applies to
        # all of them.
        with self.watch.phase("precision"):
            config, single = self.config, worker_id(self.strategy) is None and (
                self.strategy.num_replicas_in_sync == 1
            )
            self.precision = run_precision.resolve(
                config, len(self.class_names), strategy=self.strategy,
                say=self.say,
                # A resumed run keeps the policy it started with (one process:
                # the workers of a cluster choose alike, without a probe).
                recorded=run_record.recorded_precision(
                    config.output_dir, self.fingerprint
                ) if single and not config.force else None,
                estimate=self.jobs == 1 and bool(self.verbose),
            )
        keras.mixed_precision.set_global_policy(self.precision.policy)
        if worker_id(self.strategy) is None:
            run_record.record_run(
                config.output_dir, config=config, fingerprint=self.fingerprint,
                files=self.split.files, precision=self.precision,
                jobs=self.jobs,
                threads=parallel.threads_per_job(self.jobs)
                if self.jobs > 1 else None,
            )

    def worker_state(self):
        """What a worker process needs to train an experiment of this run
        (`_train_in_worker`)."""
        names = ("config", "folders", "class_names", "threshold", "split",
                 "fingerprint", "start", "precision", "verbose")
        return {name: getattr(self, name) for name in names}


def _say_estimate(run, splits, size, crops):
    config, precision = run.config, run.precision
    run.say(
        f"{splits[0].num_images} train, {splits[1].num_images} validation, "
        f"{splits[2].num_images} test images"
    )
    if precision.images_per_s:
        seconds = run_precision.epoch_estimate(
            precision.images_per_s,
            splits[0].num_images,
            size,
            config.input_size,
            crops=crops,
        )
        run.say(
            f"{run_precision.estimate_line(seconds)} (from "
            f"{precision.images_per_s:.1f} img/s timed at "
            f"{config.input_size} px)"
        )


def _run_one(run, experiment, folder):
    """Trains and tests one experiment; returns its result row."""
    config = run.config
    started = time.perf_counter()
    watch = timings.Stopwatch()
    os.makedirs(folder, exist_ok=True)
    # Frees the previous experiment's model and restarts Keras' layer naming.
    # It also resets Keras' global dtype policy to float32: set it again.
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(run.precision.policy)
    records.write_json_atomic(
        os.path.join(folder, records.CONFIG_FILE), run.fingerprint
    )
    # Same seed on a fresh run and on a resume: same shuffling and dropout.
    keras.utils.set_random_seed(config.seed + experiment.number)
    size, mode = experiment.input_size(config), experiment.mode(config)
    batch_size = config.batch_size * run.strategy.num_replicas_in_sync
    with watch.phase("data"):
        splits = load_splits(run.folders, config, size=size, mode=mode,
                             batch_size=batch_size)
    if splits[0].class_names != run.class_names:
        raise UsageError(
            f"The loader found classes {splits[0].class_names} in "
            f"{run.folders.train}, expected {run.class_names}."
        )
    counts = run_splits.check_loaded(
        run.split,
        dict(zip(run_splits.SPLITS, (s.file_paths for s in splits))),
        config.min_class_images,
    )
    if run.verbose:
        _say_estimate(run, splits, size, experiment.crops(config))
    random_init = run.start["weights"] == "random"
    with run.strategy.scope():
        with watch.phase("build"):
            model = build_experiment_model(
                experiment, config, len(run.class_names), run.start["path"],
                random_init=random_init,
            )
        measured = training.train_and_test(
            model, splits, folder, config, extra_callbacks=run.callbacks,
            verbose=run.verbose, started=started, threshold=run.threshold,
            watch=watch,
        )
    result = {
        "experiment": experiment.number,
        "name": experiment.name,
        "title": experiment.title,
        "model": model_label(config),
        "input_size": size,
        "resize_mode": mode,
        **measured,
        "weights": run.start["weights"],
        "recipe": training.recipe(config, random_init),
        "train_images": splits[0].num_images,
        "validation_images": splits[1].num_images,
        # The images scored (a file that failed to decode is not).
        "test_images": measured["test_images"],
        "classes": " ".join(run.class_names),
        "class_counts": counts,
        # The policy it trained under (`auto` resolved), and why.
        "mixed_precision": run.precision.policy,
        "precision_reason": run.precision.reason,
        # Part of the arithmetic: other thread counts give other numbers.
        "threads": parallel.training_threads(),
    }
    with watch.phase("save"):
        save_best_model(
            model, experiment, config, class_names=run.class_names,
            folder=folder,
        )
    result.update(watch.columns())
    records.finish(folder, result)
    return result


def _with_other_finished(rows, config, fingerprint):
    """`rows` plus the experiments not selected this time that finished
    earlier in the same output folder with the same settings, by number."""
    done = {row["experiment"] for row in rows}
    for experiment in EXPERIMENTS:
        if experiment.number in done:
            continue
        folder = os.path.join(config.output_dir, experiment.folder)
        try:
            result = records.load_finished(folder, fingerprint)
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

    Raises `UsageError` (one line: what is wrong, what to do) for settings
    or data that cannot be used, before anything trains.

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
            config, strategy, callbacks=callbacks, plots_to_make=plots_to_make,
            verbose=verbose,
        )
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _run_configured(config, strategy, *, callbacks, plots_to_make, verbose):
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
    say = print if verbose else (lambda *args, **kwargs: None)
    try:
        os.makedirs(config.output_dir, exist_ok=True)
        with output_lock(config.output_dir):  # Before anything is written.
            run = _plan_run(config, strategy, callbacks=tuple(callbacks),
                            verbose=verbose, say=say)
            rows = _run_experiments(run, worker=worker, chief_dir=chief_dir)
            if worker is not None:
                return rows
            return _report(run, rows, plots_to_make=plots_to_make)
    except distribute.LOST_WORKER_ERRORS as error:
        if not distribute.is_multi_worker(strategy):
            raise
        raise distribute.worker_lost_error(error, strategy) from None
    finally:
        if worker is not None:
            shutil.rmtree(config.output_dir, ignore_errors=True)


def _plan_run(config, strategy, *, callbacks, verbose, say):
    """Checks the data and plans the split, before anything trains."""
    began = time.perf_counter()
    watch = timings.Stopwatch()
    os.makedirs(config.output_dir, exist_ok=True)
    check_offline_weights(config)  # Before building the bundled dataset.
    task = config.task_spec
    with watch.phase("dataset"):
        folders = resolve_folders(config)
    # Every label table read and checked before anything else reads it.
    task.check_labels(folders, config)
    class_names = task.output_names(folders.train, config)
    if config.num_classes is not None and config.num_classes != len(
        class_names
    ):
        raise UsageError(
            f"Found {len(class_names)} class folders {class_names} in "
            f"{folders.train}, but num_classes={config.num_classes}. Fix "
            "num_classes or the class subfolders."
        )
    say(
        f"FCN experiments {list(config.experiments)}: {model_label(config)}, "
        f"base size {config.input_size}, {config.epochs} epoch(s), data "
        f"'{folders.name}' ({task.outputs_line(class_names)}), "
        f"{strategy.num_replicas_in_sync} replica(s), output {config.output_dir}"
    )
    split = run_splits.plan_split(folders, config)
    # The split is part of the settings: a changed one is refused on resume.
    fingerprint = {**config.fingerprint(), "split": run_splits.fingerprint(split)}
    if not config.force:  # Refused before the record of the split changes.
        for number in config.experiments:
            records.check_fingerprint(
                os.path.join(config.output_dir, get_experiment(number).folder),
                fingerprint,
            )
    run_splits.record(split, config.output_dir, folders.train)
    say(run_splits.summary(split))
    jobs = parallel.resolve_jobs(
        config.jobs, replicas=strategy.num_replicas_in_sync,
        gpu=run_precision.gpu_present(), callbacks=callbacks,
    )
    return _Run(
        config=config,
        strategy=strategy,
        folders=folders,
        class_names=class_names,
        threshold=task.threshold(config, folders),
        split=split,
        fingerprint=fingerprint,
        callbacks=callbacks,
        verbose=verbose,
        say=say,
        began=began,
        watch=watch,
        jobs=jobs,
    )


def _run_experiments(run, *, worker, chief_dir):
    """The result row of each selected experiment: trained, or finished
    earlier."""
    config, say = run.config, run.say
    rows, to_train = {}, []
    for number in config.experiments:
        experiment = get_experiment(number)
        folder = os.path.join(config.output_dir, experiment.folder)
        if worker is not None:
            distribute.copy_chief_state(
                os.path.join(chief_dir, experiment.folder), folder
            )
        if config.force:
            records.reset(folder)
        result = records.load_finished(folder, run.fingerprint)
        if result is None:
            to_train.append(experiment)
            continue
        _say_start(run, experiment)
        say(
            f"  finished earlier ({headline(result)}); "
            "skipped. Pass force=True to re-run it."
        )
        rows[number] = result
    if to_train and run.jobs > 1:
        threads = parallel.threads_per_job(run.jobs)
        # Started first: their imports overlap the starting weights and the
        # precision choice.
        with parallel.Workers(
            "fcn_experiments.runner:_train_in_worker",
            jobs=parallel.worker_count(
                run.jobs, len(to_train), auto=config.jobs == "auto"
            ),
            threads=threads,
        ) as workers:
            run.prepare_training()
            rows.update(_train_in_workers(run, to_train, workers, threads))
    elif to_train:
        run.prepare_training()
        for experiment in to_train:
            _say_start(run, experiment)
            result = _run_one(
                run, experiment,
                os.path.join(config.output_dir, experiment.folder),
            )
            _say_done(run, result)
            rows[experiment.number] = result
    return [rows[number] for number in config.experiments]


def _say_start(run, experiment):
    run.say(
        f"\nexperiment {experiment.number}/9: {experiment.name} - "
        f"{experiment.title} ({experiment.input_size(run.config)} px, "
        f"{experiment.mode(run.config)}) "
        f"[elapsed {_elapsed(time.perf_counter() - run.began)}]"
    )


def _say_done(run, result):
    run.say(
        f"experiment {result['experiment']}/9 done: {headline(result)} "
        f"(best epoch {result['best_epoch']} on validation) "
        f"[elapsed {_elapsed(time.perf_counter() - run.began)}]"
    )


def _train_in_workers(run, experiments, workers, threads):
    """Trains `experiments` in `workers` (`parallel.Workers`), the largest
    first; returns their rows by number."""
    config = run.config

    def work(experiment):  # Pixels per training image.
        return experiment.input_size(config) ** 2 * experiment.crops(config)

    run.say(
        f"{len(experiments)} experiment(s) in {len(workers.processes)} "
        f"worker process(es), {threads} thread(s) each (jobs={config.jobs})"
    )

    def on_event(kind, number, value):
        if kind == "start":
            _say_start(run, get_experiment(number))
        elif kind == "done":
            _say_done(run, value)
        elif run.verbose:
            stream, line = value
            print(f"  #{number}: {line}",
                  file=sys.stderr if stream == "stderr" else sys.stdout)

    ordered = sorted(experiments, key=work, reverse=True)
    return workers.run(
        run.worker_state(),
        [experiment.number for experiment in ordered],
        on_event=on_event,
    )


def _train_in_worker(state, number):
    """In a worker process: trains experiment `number` of the run that
    `state` (`_Run.worker_state`) describes; returns its row."""
    state = dict(state)  # The worker's copy serves all its experiments.
    verbose = state.pop("verbose")
    run = _Run(
        **state,
        strategy=resolve_strategy("default"),
        callbacks=(),
        # One line per epoch: progress bars of side-by-side workers would
        # overwrite each other.
        verbose=2 if verbose else 0,
        say=print,
        began=time.perf_counter(),
        watch=timings.Stopwatch(),
    )
    experiment = get_experiment(number)
    return _run_one(
        run, experiment, os.path.join(run.config.output_dir, experiment.folder)
    )


def _report(run, rows, *, plots_to_make):
    """Adds the run's statistics to the rows, writes the results files and
    figures, and prints the table."""
    config = run.config
    rows = _with_other_finished(rows, config, run.fingerprint)
    with run.watch.phase("statistics"):
        config.task_spec.add_statistics(
            rows, config.output_dir,
            lambda number: get_experiment(number).folder,
        )
    with run.watch.phase("results"):
        csv_path, _ = write_results(rows, config.output_dir)
    if plots_to_make:
        with run.watch.phase("plots"):
            plots.make_all(
                rows, config, run.class_names,
                best_model=_best_fcn_source(rows, config),
                panels=example_panels if config.uses_bundled_data else None,
            )
    timings.write_run_timings(
        config.output_dir, run.watch, time.perf_counter() - run.began
    )
    run.say(
        f"\nResults ({csv_path}), total "
        f"{_elapsed(time.perf_counter() - run.began)}:"
    )
    run.say(text_table(rows))
    return rows


def _best_fcn_source(rows, config):
    """The `ModelSource` of the FCN best on validation (its `best.keras`),
    with its row; None when no FCN experiment finished."""
    row = best_fcn_row(rows, config.task_spec.selection)
    if row is None:
        return None
    folder = os.path.join(config.output_dir, get_experiment(row["experiment"]).folder)
    return resolve_model_source(folder), row
