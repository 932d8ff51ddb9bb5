"""Training one experiment: resumable, selected on validation, tested once.

Each experiment owns a folder `<output_dir>/exp<k>_<name>/`:

- `config.json`: the settings fingerprint it was trained with;
- `training_log.csv`: Keras' CSVLogger, one row per epoch;
- `best_e<epoch>.weights.h5` + `best.json`: the best epoch on validation;
- `backup/`: Keras' BackupAndRestore state after the last finished epoch;
- `result.json`: written last, once the test set has been evaluated. Its
  presence marks the experiment finished, so a re-run skips it.

A killed run resumes from the last finished epoch: BackupAndRestore restores
the weights, optimizer state (learning rate included) and epoch counter; the
log is cut back to that epoch, and the best-so-far comes from `best.json`.
"""

import csv
import glob
import json
import os
import shutil
import statistics
import time

import keras
import numpy as np

from fcn_experiments import scored_test_scores
from fcn_experiments import scored_test_set
from fcn_experiments import tasks
from fcn_experiments import timings
from fcn_experiments.experiments import RANDOM_INIT_BN_MOMENTUM
from fcn_experiments.results import write_json_atomic

RESULT_FILE = "result.json"
CONFIG_FILE = "config.json"
LOG_FILE = "training_log.csv"
BEST_FILE = "best.json"
BACKUP_DIR = "backup"


class BestCheckpoint(keras.callbacks.Callback):
    """Keeps the weights of the best epoch on validation.

    Best means highest `val_accuracy`, ties broken by lower `val_loss`
    (score tasks: lowest `val_loss`). The weights go to a new
    `best_e<epoch>.weights.h5`, then `best.json` is replaced atomically to
    point at it, then older files are removed: a kill at any moment leaves
    `best.json` naming a complete file.
    """

    def __init__(self, folder, task="classification"):
        super().__init__()
        self.folder = folder
        self.task = task
        self.best = read_best(folder)

    def _key(self, record):
        if self.task != "classification":
            return (-record["val_loss"],)
        return (record["val_accuracy"], -record["val_loss"])

    def on_epoch_end(self, epoch, logs=None):
        record = {"epoch": epoch + 1, "val_loss": float(logs["val_loss"])}
        if self.task == "classification":
            record["val_accuracy"] = float(logs["val_accuracy"])
        if self.best is not None and self._key(record) <= self._key(self.best):
            return
        record["file"] = f"best_e{epoch + 1:03d}.weights.h5"
        self.model.save_weights(os.path.join(self.folder, record["file"]))
        write_json_atomic(os.path.join(self.folder, BEST_FILE), record)
        self.best = record
        remove_stale_best_files(self.folder, keep=record["file"])


def read_best(folder):
    path = os.path.join(folder, BEST_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def remove_stale_best_files(folder, keep):
    for path in glob.glob(os.path.join(folder, "best_e*.weights.h5")):
        if os.path.basename(path) != keep:
            os.remove(path)


def read_log(folder):
    path = os.path.join(folder, LOG_FILE)
    if not os.path.isfile(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _restored_epoch(folder):
    path = os.path.join(folder, BACKUP_DIR, "training_metadata.json")
    if not os.path.isfile(path):
        return 0
    with open(path) as f:
        return int(json.load(f)["epoch"])


def _cut_log(folder, epochs_kept):
    """Drops log rows of epochs that the backup does not hold (a kill after
    CSVLogger wrote the row, before BackupAndRestore saved the epoch)."""
    path = os.path.join(folder, LOG_FILE)
    rows = read_log(folder)
    if not rows:
        return
    kept = [row for row in rows if int(row["epoch"]) < epochs_kept]
    if len(kept) == len(rows):
        return
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)


class SettingsChangedError(RuntimeError):
    """An experiment folder holds a run made with other settings."""


def load_finished(folder, fingerprint):
    """The result of a finished experiment, or None if it has not finished.

    Raises:
        SettingsChangedError: the folder holds a run with other settings.
    """
    check_fingerprint(folder, fingerprint)
    path = os.path.join(folder, RESULT_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def check_fingerprint(folder, fingerprint):
    path = os.path.join(folder, CONFIG_FILE)
    if not os.path.isfile(path):
        return
    with open(path) as f:
        saved = json.load(f)
    if saved != fingerprint:
        changed = sorted(
            key
            for key in set(saved) | set(fingerprint)
            if saved.get(key) != fingerprint.get(key)
        )
        details = ", ".join(
            f"{k}: {saved.get(k)!r} -> {fingerprint.get(k)!r}" for k in changed
        )
        raise SettingsChangedError(
            f"{folder} holds an experiment trained with other settings "
            f"({details}). Pass force=True to retrain it, or choose another "
            "output_dir."
        )


def make_optimizer(config):
    """Plain SGD (the original's) or Adam, at `config.lr_start`."""
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=config.lr_start)
    return keras.optimizers.SGD(learning_rate=config.lr_start, momentum=0.0)


def recipe(config, random_init):
    """The training recipe in one line, as recorded in results.csv."""
    momentum = RANDOM_INIT_BN_MOMENTUM if random_init else "Keras default"
    return (
        f"{config.optimizer} lr {config.lr_start:g}->{config.lr_min:g} "
        f"(x0.2 after {config.lr_patience} flat epochs), batch "
        f"{config.batch_size}, {config.epochs} epochs, base "
        f"{config.input_size} px, BatchNorm momentum {momentum}, FCN "
        f"pooling {config.fcn_pooling}"
        + (
            f", {config.task} loss "
            + (config.regression_loss if config.task == "regression" else "EMD r=2")
            if tasks.is_scored(config.task)
            else ""
        )
    )


def _compile(model, config, loss, num_outputs):
    model.compile(
        optimizer=make_optimizer(config),
        loss=loss,
        metrics=tasks.metrics(config.task),
        # XLA would recompile for every input shape (native-size buckets,
        # the last partial batch), costing more than it saves on a CPU.
        jit_compile=False,
        run_eagerly=config.run_eagerly,
    )
    # Optimizer slots and metric variables made now, not inside the first
    # traced step: otherwise TensorFlow traces the training step twice (the
    # first trace creates variables), about 4 s of CPU for MobileNetV2.
    model.optimizer.build(model.trainable_variables)
    _build_metrics(model, num_outputs)


def _build_metrics(model, num_outputs):
    """Creates the compiled metrics' variables (Keras builds them in the
    first traced step unless a tf.distribute strategy is in scope)."""
    if keras.backend.backend() != "tensorflow" or model.run_eagerly:
        return
    import tensorflow as tf

    if tf.distribute.has_strategy():  # Keras builds them symbolically.
        return
    zeros = np.zeros((1, num_outputs), "float32")
    model.compute_metrics(None, zeros, zeros, sample_weight=None)
    model.reset_metrics()


def train_and_test(
    model,
    splits,
    folder,
    config,
    extra_callbacks=(),
    verbose=1,
    started=None,
    threshold=None,
    watch=None,
):
    """Trains `model` (compiled here) and tests its best epoch once.

    Args:
        model: the experiment's model, built under the run's strategy scope.
        splits: `(train, validation, test)` `Split`s.
        folder: the experiment's folder (created by the caller).
        config: the run's `Config`.
        extra_callbacks: more Keras callbacks, run after the framework's own
            (so after the epoch's backup is saved).
        verbose: Keras' `fit` verbosity (1: progress bar).
        started: `time.perf_counter()` when this session began preparing
            the experiment (data, model); default: now.
        threshold: score tasks: the binary accuracy's boundary
            (`tasks.threshold`).
        watch: a `timings.Stopwatch` that gets the seconds of compiling,
            tracing, steps, validation, checkpoints and testing.

    Returns:
        A dict of measurements: `epochs`, `best_epoch`, `val_accuracy`,
        `test_accuracy`, `test_loss`, `test_images` (those scored),
        `train_images_per_s`, `wall_time_s`. Score tasks give `val_loss`
        and the `scored_test_scores` metrics instead of the accuracies.
    """
    start = time.perf_counter() if started is None else started
    watch = watch or timings.Stopwatch()
    train, validation, test = splits
    loss = tasks.loss(config)
    with watch.phase("compile"):
        _compile(model, config, loss, len(train.class_names))

    resume_epoch = _restored_epoch(folder)
    _cut_log(folder, resume_epoch)
    if resume_epoch == 0:
        best_path = os.path.join(folder, BEST_FILE)
        if os.path.exists(best_path):
            os.remove(best_path)
    elif verbose:
        print(
            f"Resuming from epoch {resume_epoch + 1}/{config.epochs}: "
            f"{resume_epoch} finished epoch(s) restored from "
            f"{os.path.join(folder, BACKUP_DIR)}"
        )
    best = BestCheckpoint(folder, config.task)
    monitor, mode = tasks.plateau_monitor(config.task)
    remove_stale_best_files(
        folder, keep=best.best["file"] if best.best else None
    )
    timer = timings.FitTimer()
    callbacks = [
        timer,
        keras.callbacks.CSVLogger(os.path.join(folder, LOG_FILE), append=True),
        best,
        # As in the original: drop the rate 5x when training accuracy (score
        # tasks: loss) stalls.
        keras.callbacks.ReduceLROnPlateau(
            monitor=monitor,
            mode=mode,
            factor=0.2,
            patience=config.lr_patience,
            min_delta=1e-3,
            min_lr=config.lr_min,
            verbose=1 if verbose else 0,
        ),
        # Last of the framework's callbacks: an epoch counts as finished once
        # the log and best checkpoint have it.
        keras.callbacks.BackupAndRestore(
            os.path.join(folder, BACKUP_DIR), delete_checkpoint=False
        ),
        timer.last,
        *extra_callbacks,
    ]
    model.fit(
        train.dataset,
        validation_data=validation.dataset,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # The training dataset shuffles itself.
    )
    if best.best is None:
        raise RuntimeError(
            f"No epoch of {folder} was validated; the training log "
            f"{os.path.join(folder, LOG_FILE)} shows what ran."
        )
    for phase, seconds in timer.phases().items():
        watch.add(phase, seconds)
    with watch.phase("test"):
        measured = _test_best(model, splits, folder, config, best.best,
                              threshold, loss)
    log = read_log(folder)
    measured["wall_time_s"] = (
        sum(float(row["epoch_seconds"]) for row in log)
        + (time.perf_counter() - start)
        - _session_epoch_seconds(log, resume_epoch)
    )
    return measured


def _test_best(model, splits, folder, config, best, threshold, loss):
    """Scores the test set once with the best epoch's weights."""
    train, _, test = splits
    model.load_weights(os.path.join(folder, best["file"]))
    log = read_log(folder)
    train_seconds = [float(row["train_seconds"]) for row in log]
    measured = {
        "epochs": len(log),
        "best_epoch": best["epoch"],
        # The median leaves out the first epoch's graph tracing.
        "train_images_per_s": train.num_images
        / statistics.median(train_seconds),
    }
    if tasks.is_scored(config.task):
        scores = scored_test_scores.score_and_write(
            model, test, config.batch_size, folder, config, threshold, loss
        )
        measured.update(
            task=config.task,
            val_loss=best["val_loss"],
            test_loss=scores.pop("loss"),
            test_images=scores.pop("images"),
            score_threshold=scores.pop("threshold"),
            **{f"test_{k}" if k == "emd" else k: v for k, v in scores.items()},
        )
    else:
        # Per-image predictions (test_predictions.csv); accuracy and loss
        # come from them, so that the McNemar tests use exactly the scored
        # outcomes.
        scores = scored_test_set.score_and_write(
            model, test, config.batch_size, folder
        )
        measured.update(
            val_accuracy=best["val_accuracy"],
            test_accuracy=float(scores["accuracy"]),
            test_loss=float(scores["loss"]),
            # Less any test file that failed to decode.
            test_images=scores["images"],
            per_class_test=scores["per_class"],
        )
    return measured


def _session_epoch_seconds(log, resume_epoch):
    # Epochs of this session are already inside (perf_counter() - start).
    return sum(
        float(row["epoch_seconds"])
        for row in log
        if int(row["epoch"]) >= resume_epoch
    )


def finish(folder, result):
    """Marks an experiment finished (result.json), then drops its backup."""
    write_json_atomic(os.path.join(folder, RESULT_FILE), result)
    shutil.rmtree(os.path.join(folder, BACKUP_DIR), ignore_errors=True)


def reset(folder):
    """Deletes an experiment's folder (force=True)."""
    shutil.rmtree(folder, ignore_errors=True)
