"""Choosing the tf.distribute strategy a run trains under."""

import contextlib
import json
import os
import re
import shutil

import keras
import tensorflow as tf

from fcn_experiments.config import STRATEGIES
from fcn_experiments.errors import UsageError


def resolve_strategy(strategy="auto", collective_timeout=None):
    """A `tf.distribute.Strategy` from a name, or `strategy` itself.

    Args:
        strategy: a `tf.distribute.Strategy`, or one of
            - `"auto"` (or None): `MultiWorkerMirroredStrategy` when
              `TF_CONFIG` names a cluster, `MirroredStrategy` when this
              machine has several GPUs, else the default (no distribution);
            - `"default"`: no distribution;
            - `"mirrored"`: `MirroredStrategy` over all local GPUs (or the
              CPU);
            - `"multi_worker"`: `MultiWorkerMirroredStrategy`, cluster from
              `TF_CONFIG`.
        collective_timeout: for `"multi_worker"`, see
            `multi_worker_strategy`.

    On the JAX and torch backends, where tf.distribute does not apply, a
    name gives a `BackendStrategy` (see `backend_strategy`).
    """
    # Already resolved (the CLI resolves before the run).
    if isinstance(strategy, (tf.distribute.Strategy, BackendStrategy)):
        return strategy
    if strategy is None:
        strategy = "auto"
    if strategy not in STRATEGIES:
        raise UsageError(
            f"`strategy` must be a tf.distribute.Strategy or one of {STRATEGIES}. "
            f"Received: strategy={strategy!r}"
        )
    if keras.backend.backend() != "tensorflow":
        return backend_strategy(strategy)
    if strategy == "auto":
        if _cluster_from_tf_config():
            strategy = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            strategy = "mirrored"
        else:
            strategy = "default"
    if strategy == "multi_worker":
        return multi_worker_strategy(collective_timeout)
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


class BackendStrategy:
    """What the runner needs of a strategy (`scope()`,
    `num_replicas_in_sync`), for backends without tf.distribute."""

    cluster_resolver = None  # No workers: this process is the chief.

    def __init__(self, description, num_replicas=1, distribution=None):
        self.description = description
        self.num_replicas_in_sync = num_replicas
        self.distribution = distribution

    def scope(self):
        if self.distribution is None:
            return contextlib.nullcontext()
        return self.distribution.scope()


def backend_strategy(strategy="auto"):
    """A `BackendStrategy` for the JAX or torch backend; prints which.

    `"auto"` on JAX with several devices: `keras.distribution.DataParallel`
    over them; otherwise one device. The tf.distribute names (`"mirrored"`,
    `"multi_worker"`) need the TensorFlow backend.
    """
    backend = keras.backend.backend()
    if strategy in ("mirrored", "multi_worker"):
        raise UsageError(
            f"strategy={strategy!r} is a tf.distribute strategy, for "
            f"KERAS_BACKEND=tensorflow; on {backend} pass 'auto' or 'default'. "
            f"Received: strategy={strategy!r} with KERAS_BACKEND={backend}"
        )
    devices = keras.distribution.list_devices() if backend == "jax" else []
    if strategy == "auto" and len(devices) > 1:
        result = BackendStrategy(
            f"keras.distribution.DataParallel over {len(devices)} JAX devices",
            num_replicas=len(devices),
            distribution=keras.distribution.DataParallel(devices=devices),
        )
    else:
        result = BackendStrategy(
            f"one device (tf.distribute does not apply to the {backend} backend)"
        )
    print(f"[fcn_experiments] {backend} backend: training on {result.description}")
    return result


def _cluster_from_tf_config():
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except json.JSONDecodeError as error:
        raise UsageError(
            f"TF_CONFIG is not valid JSON ({error}); fix or unset it. "
            f"Received: TF_CONFIG={os.environ['TF_CONFIG']!r}"
        ) from None
    return bool(config.get("cluster"))


def worker_id(strategy):
    """None on the chief (the worker that writes results), else a name for
    this worker's private scratch folder.

    Under MultiWorkerMirroredStrategy every worker runs the same program; the
    chief is task `chief`, or worker 0 when the cluster has no chief.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return None
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    if task_type == "chief" or (
        not has_chief and task_type == "worker" and task_id == 0
    ):
        return None
    return f"{task_type}_{task_id}"


# Multi-worker training (MultiWorkerMirroredStrategy, cluster from TF_CONFIG).

# Seconds a collective op waits for the other workers. It must cover the
# longest time one worker can run ahead of another (graph tracing of a new
# input shape on a loaded machine: over a minute on a shared 2-core CPU),
# and it bounds how long the others wait for a worker that died.
DEFAULT_COLLECTIVE_TIMEOUT = 300.0
# What a collective op raises when a peer is gone: timed out, refused,
# aborted (after a peer's abort) or cancelled.
LOST_WORKER_ERRORS = (
    tf.errors.DeadlineExceededError,
    tf.errors.UnavailableError,
    tf.errors.AbortedError,
    tf.errors.CancelledError,
)


class WorkerLostError(RuntimeError):
    """Multi-worker training stopped because another worker stopped
    answering."""


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`MultiWorkerMirroredStrategy` that takes what Keras 3's TF trainer
    passes to `reduce`: a nest of values (the first batch, to build the
    model), and scalars with `axis=0` (the step's logs). TF's own `reduce`
    accepts one value of rank >= 1 only (keras-team/keras#20585). It
    keeps its collective timeout (`collective_timeout`, seconds), which TF
    keeps only in a private attribute."""

    def __init__(self, collective_timeout):
        self.collective_timeout = float(collective_timeout)
        super().__init__(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                timeout_seconds=self.collective_timeout
            )
        )

    def reduce(self, reduce_op, value, axis):
        def reduce_one(item):
            local = (
                item.values[0]
                if isinstance(item, tf.distribute.DistributedValues)
                else item
            )
            rank = getattr(getattr(local, "shape", None), "rank", None)
            item_axis = None if rank == 0 else axis
            return super(_MultiWorkerMirroredStrategy, self).reduce(
                reduce_op, item, item_axis
            )

        return tf.nest.map_structure(reduce_one, value)


def multi_worker_strategy(collective_timeout=None):
    """A `MultiWorkerMirroredStrategy` (cluster from `TF_CONFIG`) whose
    collectives fail after `collective_timeout` seconds (default
    `DEFAULT_COLLECTIVE_TIMEOUT`) instead of waiting forever for a worker
    that died."""
    if collective_timeout is None:
        collective_timeout = DEFAULT_COLLECTIVE_TIMEOUT
    if (
        isinstance(collective_timeout, bool)
        or not isinstance(collective_timeout, (int, float))
        or not collective_timeout > 0
    ):
        raise UsageError(
            "`collective_timeout` must be a positive number of seconds. "
            f"Received: collective_timeout={collective_timeout!r}"
        )
    if not _cluster_from_tf_config():
        raise UsageError(
            "Multi-worker training needs TF_CONFIG to name the cluster, e.g. "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": '
            '{"type": "worker", "index": 0}}. Received: TF_CONFIG='
            f"{os.environ.get('TF_CONFIG')!r}"
        )
    return _MultiWorkerMirroredStrategy(collective_timeout)


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def worker_lost_error(error, strategy):
    """The one-line `WorkerLostError` for a collective op's failure (with
    the collective timeout of a strategy made by `multi_worker_strategy`)."""
    timeout = getattr(strategy, "collective_timeout", None)
    cause = _cause(str(getattr(error, "message", error)))
    if timeout is not None:
        cause += f"; collective timeout {timeout:g} s"
    return WorkerLostError(
        "Multi-worker training stopped: another worker stopped answering "
        f"({type(error).__name__}: {cause}). Start all workers again with "
        "the same command: they resume from the last finished epoch."
    )


def _cause(message):
    """The line of a collective op's error that says what happened.

    TF's message may start with "Graph execution error:" and the stack where
    the op was defined (indented), then "{{function_node ...}} Collective ops
    is aborted by: <cause>", possibly followed by the names of dead tasks.
    """
    lines = message.splitlines()
    skip = ("Graph execution error", "Detected at node")
    for i, line in enumerate(lines):
        if not line.strip() or line[0].isspace() or line.startswith(skip):
            continue
        cause = line.rstrip()
        following = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if following and (cause.endswith(":") or following.startswith("/job:")):
            cause = f"{cause.rstrip(':')}: {following}"
        break
    else:
        return ""
    cause = re.sub(r"\{\{.*?\}\}\s*", "", cause)
    cause = re.sub(r"\s*\[type\.googleapis\.com[^\]]*\]", "", cause)
    return cause.split("aborted by: ")[-1].strip()


def copy_chief_state(chief_folder, worker_folder):
    """Makes a non-chief worker's experiment folder a copy of the chief's.

    Every worker then resumes from the chief's last finished epoch (and
    skips the experiments it finished), as TF's BackupAndRestore does: a
    worker's own state may be an epoch behind if it died first. Needs the
    chief's output folder on a filesystem all workers see; without it the
    worker starts afresh.
    """
    if os.path.isdir(worker_folder):
        shutil.rmtree(worker_folder)
    if os.path.isdir(chief_folder):
        shutil.copytree(chief_folder, worker_folder)
    else:
        os.makedirs(worker_folder)
