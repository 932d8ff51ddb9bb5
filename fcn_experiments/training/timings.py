"""Where a run's time goes: seconds per phase of each experiment and of the run.

Each experiment's phases become results.csv columns `seconds_<phase>`; the
run's own phases (outside any experiment) go to `<output_dir>/timings.json`.
`bench/demo_breakdown.py` prints both for a whole run.
"""

import contextlib
import json
import os
import statistics
import time

import keras

# One experiment's phases, in the order they run.
EXPERIMENT_PHASES = (
    "data",  # its tf.data pipelines (the image files are scanned once a run)
    "build",  # its model, from the starting weights
    "compile",  # compile, and the optimizer's slots
    "trace",  # first training and validation steps, less a typical step
    "first_epoch",  # the rest of the first epoch's extra time: new shapes'
    # retraces, the image cache's first fill
    "steps",  # training steps
    "validation",  # validation steps
    "checkpoint",  # end-of-epoch callbacks: best weights, resumable backup
    "test",  # the test set scored once, with its metrics
    "save",  # best.keras
)
# The run's phases outside the experiments.
RUN_PHASES = ("dataset", "weights", "precision", "statistics", "results", "plots")
TIMINGS_FILE = "timings.json"


def column(phase):
    """The results.csv column of an experiment's phase."""
    return f"seconds_{phase}"


COLUMNS = tuple(column(phase) for phase in EXPERIMENT_PHASES)


class Stopwatch:
    """Seconds per named phase, summed over its `phase` blocks."""

    def __init__(self):
        self.seconds = {}

    @contextlib.contextmanager
    def phase(self, name):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name, seconds):
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def columns(self):
        """`{seconds_<phase>: seconds}` of every experiment phase."""
        return {column(p): self.seconds.get(p, 0.0) for p in EXPERIMENT_PHASES}


class FitTimer(keras.callbacks.Callback):
    """Times each epoch's training steps, validation and end-of-epoch
    callbacks. Goes first among fit's callbacks, `timer.last` last.

    Adds `train_seconds` (before validation) and `epoch_seconds` (before
    the other end-of-epoch callbacks) to the epoch logs, so that CSVLogger
    records them.
    """

    def __init__(self):
        super().__init__()
        self.batches = {"train": [], "validation": []}  # per epoch, per batch
        self.epochs = {"train": [], "validation": []}  # per epoch
        self.checkpoint = 0.0
        self.last = _EpochEndTimer(self)

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._train_end = None
        for batches in self.batches.values():
            batches.append([])

    def on_train_batch_begin(self, batch, logs=None):
        self._batch = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.batches["train"][-1].append(time.perf_counter() - self._batch)

    def on_test_batch_begin(self, batch, logs=None):
        self._batch = time.perf_counter()

    def on_test_batch_end(self, batch, logs=None):
        if self.batches["validation"]:
            self.batches["validation"][-1].append(
                time.perf_counter() - self._batch
            )

    def on_test_begin(self, logs=None):
        if self._train_end is None:
            self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        train_end = self._train_end or now
        self.epochs["train"].append(train_end - self._start)
        self.epochs["validation"].append(now - train_end)
        logs["train_seconds"] = train_end - self._start
        logs["epoch_seconds"] = now - self._start
        self.callbacks_start = now

    def phases(self):
        """`{trace, first_epoch, steps, validation, checkpoint}` seconds."""
        out = {"trace": 0.0, "first_epoch": 0.0, "checkpoint": self.checkpoint}
        for kind, name in (("train", "steps"), ("validation", "validation")):
            epochs, batches = self.epochs[kind], self.batches[kind]
            trace = _first_excess([b for epoch in batches for b in epoch])
            extra = 0.0
            if len(epochs) > 1:
                extra = max(
                    0.0, epochs[0] - statistics.median(epochs[1:]) - trace
                )
            out["trace"] += trace
            out["first_epoch"] += extra
            out[name] = sum(epochs) - trace - extra
        return out


class _EpochEndTimer(keras.callbacks.Callback):
    def __init__(self, timer):
        super().__init__()
        self.timer = timer

    def on_epoch_end(self, epoch, logs=None):
        timer = self.timer
        timer.checkpoint += time.perf_counter() - timer.callbacks_start


def _first_excess(seconds):
    """The first batch's time over the median of the others (tracing)."""
    if len(seconds) < 2:
        return 0.0
    return max(0.0, seconds[0] - statistics.median(seconds[1:]))


def write_run_timings(output_dir, watch, total):
    """`<output_dir>/timings.json`: the run's own phases and its total."""
    data = {p: watch.seconds.get(p, 0.0) for p in RUN_PHASES}
    data["total"] = total
    data["cpu"] = sum(os.times()[:4])
    path = os.path.join(output_dir, TIMINGS_FILE)
    with open(f"{path}.tmp", "w") as f:
        json.dump(data, f, indent=1)
    os.replace(f"{path}.tmp", path)
    return path


def read_run_timings(output_dir):
    with open(os.path.join(output_dir, TIMINGS_FILE)) as f:
        return json.load(f)
