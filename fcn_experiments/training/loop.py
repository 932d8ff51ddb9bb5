"""Training one experiment: resumable, selected on validation, tested once.

A killed run resumes from the last finished epoch: BackupAndRestore restores
the weights, optimizer state (learning rate included) and epoch counter; the
log is cut back to that epoch, and the best-so-far comes from `best.json`
(`records` describes the experiment's folder).
"""

import errno
import os
import shutil
import statistics
import time

import numpy as np

import keras

from fcn_experiments.models.experiments import RANDOM_INIT_BN_MOMENTUM
from fcn_experiments.training import records
from fcn_experiments.training import timings


class BestCheckpoint(keras.callbacks.Callback):
    """Keeps the weights of the best epoch on validation.

    Best is what the task says (`Task.best_key`: classification the highest
    `val_accuracy`, ties broken by lower `val_loss`; score tasks the lowest
    `val_loss`). The weights go to a new `best_e<epoch>.weights.h5`, then
    `best.json` is replaced atomically to point at it, then older files are
    removed: a kill at any moment leaves `best.json` naming a complete file.
    """

    def __init__(self, folder, task, ema=None):
        super().__init__()
        self.folder = folder
        self.task = task
        self.ema = ema  # The run's `SwapEMAWeights`, if it averages.
        self.best = records.read_best(folder)

    def on_epoch_end(self, epoch, logs=None):
        record = self.task.best_record(epoch + 1, logs)
        key = self.task.best_key
        if self.best is not None and key(record) <= key(self.best):
            return
        record["file"] = f"best_e{epoch + 1:03d}.weights.h5"
        path = os.path.join(self.folder, record["file"])
        if self.ema is None:
            self.model.save_weights(path)
        else:
            # The averaged weights, as validated. Swapped back after, so the
            # backup holds the training state itself and a resume is exact.
            self.ema.on_test_begin()
            try:
                self.model.save_weights(path)
            finally:
                self.ema.on_test_end()
        records.write_json_atomic(
            os.path.join(self.folder, records.BEST_FILE), record
        )
        self.best = record
        records.remove_stale_best_files(self.folder, keep=record["file"])


class EpochLine(keras.callbacks.Callback):
    """One line per epoch (`verbose=2`): the metrics and the epoch's
    seconds, for output where a progress bar cannot redraw itself."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        seconds = logs.pop("epoch_seconds", None)
        for key in ("train_seconds", "learning_rate"):
            logs.pop(key, None)
        metrics = ", ".join(f"{key} {value:.4f}" for key, value in logs.items())
        took = f" ({seconds:.1f} s)" if seconds is not None else ""
        print(f"epoch {epoch + 1}/{self.epochs}: {metrics}{took}", flush=True)


class FreeSpaceCheck(keras.callbacks.Callback):
    """Stops with `OSError(ENOSPC)` before an epoch's checkpoints are
    written to a disk that cannot hold them: h5py, writing on a full disk,
    may fail half-way or even crash the process (a segmentation fault was
    seen) instead of raising. The epoch is then redone on a re-run."""

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def on_epoch_end(self, epoch, logs=None):
        # The best checkpoint, the backup's model and optimizer state, and
        # room for the HDF5 headers.
        def size(variables):
            return sum(
                int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize
                for v in variables
            )

        needed = 2**20 + 2 * size(self.model.weights) + size(
            self.model.optimizer.variables
        )
        check_free_space(self.folder, needed)


def check_free_space(folder, needed):
    """Raises `OSError(ENOSPC)` naming `folder` when its disk has fewer than
    `needed` bytes free."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OSError(
            errno.ENOSPC,
            f"No space left on device ({free / 2**20:.1f} MiB free, an "
            f"epoch's checkpoints need about {needed / 2**20:.1f} MiB)",
            folder,
        )


def make_optimizer(config):
    """Plain SGD (the original's) or Adam, at `config.lr_start`; with a
    moving average of the weights when `config.ema_momentum` is set."""
    ema = {}
    if config.ema_momentum is not None:
        ema = {"use_ema": True, "ema_momentum": config.ema_momentum}
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=config.lr_start, **ema)
    return keras.optimizers.SGD(
        learning_rate=config.lr_start, momentum=0.0, **ema
    )


def recipe(config, random_init):
    """The training recipe in one line, as recorded in results.csv."""
    momentum = RANDOM_INIT_BN_MOMENTUM if random_init else "Keras default"
    return (
        f"{config.optimizer} lr {config.lr_start:g}->{config.lr_min:g} "
        f"(x0.2 after {config.lr_patience} flat epochs), batch "
        f"{config.batch_size}, {config.epochs} epochs, base "
        f"{config.input_size} px, BatchNorm momentum {momentum}, FCN "
        f"pooling {config.fcn_pooling}"
        + (f", weights averaged (EMA {config.ema_momentum:g})"
           if config.ema_momentum is not None else "")
        + config.task_spec.recipe(config)
    )


def compile_options(config):
    """`Model.compile`'s `jit_compile` and `run_eagerly` for this backend.

    `run_eagerly="auto"` (the tiny profile) runs eagerly where a few tiny
    steps cost less than tracing them: TensorFlow and PyTorch. JAX compiles
    every operation on its own when eager, so there it traces.
    """
    jax = keras.backend.backend() == "jax"
    eager = config.run_eagerly
    if eager == "auto":
        eager = not jax
    # On TensorFlow, XLA would recompile for every input shape (native-size
    # buckets, the last partial batch), costing more than it saves on a
    # CPU. Under JAX, `jit_compile=False` means no jit at all: each
    # operation dispatched alone, 2-3x slower steps.
    return {"jit_compile": jax and not eager, "run_eagerly": eager}


def _compile(model, config, num_outputs):
    task = config.task_spec
    model.compile(
        optimizer=make_optimizer(config),
        loss=task.loss(config),
        metrics=list(task.metrics),
        **compile_options(config),
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


def _resume(folder, config, verbose):
    """The number of epochs restored from the backup (0: a fresh start)."""
    resume_epoch = records.restored_epoch(folder)
    records.cut_log(folder, resume_epoch)
    if resume_epoch == 0:
        best_path = os.path.join(folder, records.BEST_FILE)
        if os.path.exists(best_path):
            os.remove(best_path)
    elif verbose:
        print(
            f"Resuming from epoch {resume_epoch + 1}/{config.epochs}: "
            f"{resume_epoch} finished epoch(s) restored from "
            f"{os.path.join(folder, records.BACKUP_DIR)}"
        )
    return resume_epoch


def _callbacks(folder, config, best, timer, *, extra_callbacks, verbose):
    monitor, mode = config.task_spec.plateau_monitor
    return [
        timer,
        # Validation sees the averaged weights (`BestCheckpoint` saves them).
        *([best.ema] if best.ema is not None else []),
        FreeSpaceCheck(folder),  # Before anything of the epoch is written.
        keras.callbacks.CSVLogger(
            os.path.join(folder, records.LOG_FILE), append=True
        ),
        # Per epoch, no graph or histograms: a few KB and milliseconds.
        keras.callbacks.TensorBoard(
            os.path.join(folder, records.TENSORBOARD_DIR), write_graph=False
        ),
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
            os.path.join(folder, records.BACKUP_DIR), delete_checkpoint=False
        ),
        timer.last,
        *([EpochLine(config.epochs)] if verbose == 2 else []),
        *extra_callbacks,
    ]


def train_and_test(
    model,
    splits,
    folder,
    config,
    *,
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
        verbose: 0 silent, 1 Keras' progress bar, 2 one line per epoch.
        started: `time.perf_counter()` when this session began preparing
            the experiment (data, model); default: now.
        threshold: score tasks: the binary accuracy's boundary
            (`Task.threshold`).
        watch: a `timings.Stopwatch` that gets the seconds of compiling,
            tracing, steps, validation, checkpoints and testing.

    Returns:
        A dict of measurements: `epochs`, `best_epoch`,
        `train_images_per_s`, `wall_time_s`, and the task's test fields
        (`Task.evaluate`; `test_images` is those scored).
    """
    start = time.perf_counter() if started is None else started
    watch = watch or timings.Stopwatch()
    train, validation, test = splits
    with watch.phase("compile"):
        _compile(model, config, len(train.class_names))
    resume_epoch = _resume(folder, config, verbose)
    best = BestCheckpoint(
        folder, config.task_spec,
        ema=keras.callbacks.SwapEMAWeights()
        if config.ema_momentum is not None else None,
    )
    records.remove_stale_best_files(
        folder, keep=best.best["file"] if best.best else None
    )
    timer = timings.FitTimer()
    model.fit(
        train.dataset,
        validation_data=validation.dataset,
        epochs=config.epochs,
        callbacks=_callbacks(folder, config, best, timer,
                             extra_callbacks=extra_callbacks, verbose=verbose),
        verbose=1 if verbose == 1 else 0,
        shuffle=False,  # The training dataset shuffles itself.
    )
    if best.best is None:
        raise RuntimeError(
            f"No epoch of {folder} was validated; the training log "
            f"{os.path.join(folder, records.LOG_FILE)} shows what ran."
        )
    for phase, seconds in timer.phases().items():
        watch.add(phase, seconds)
    log = records.read_log(folder)
    train_seconds = [float(row["train_seconds"]) for row in log]
    with watch.phase("test"):
        model.load_weights(os.path.join(folder, best.best["file"]))
        measured = {
            "epochs": len(log),
            "best_epoch": best.best["epoch"],
            # The median leaves out the first epoch's graph tracing.
            "train_images_per_s": train.num_images
            / statistics.median(train_seconds),
            **config.task_spec.evaluate(
                model, test, batch_size=config.batch_size, folder=folder,
                config=config, threshold=threshold, best=best.best,
            ),
        }
    measured["wall_time_s"] = (
        sum(float(row["epoch_seconds"]) for row in log)
        + (time.perf_counter() - start)
        - _session_epoch_seconds(log, resume_epoch)
    )
    return measured


def _session_epoch_seconds(log, resume_epoch):
    # Epochs of this session are already inside (perf_counter() - start).
    return sum(
        float(row["epoch_seconds"])
        for row in log
        if int(row["epoch"]) >= resume_epoch
    )
