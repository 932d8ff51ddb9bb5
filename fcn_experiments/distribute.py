"""Choosing the tf.distribute strategy a run trains under."""

import contextlib
import json
import os

import tensorflow as tf

import keras

from fcn_experiments.config import STRATEGIES


def resolve_strategy(strategy="auto"):
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
            On the JAX and torch backends, where tf.distribute does not
            apply, see `backend_strategy`.
    """
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy is None:
        strategy = "auto"
    if strategy not in STRATEGIES:
        raise ValueError(
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
        return tf.distribute.MultiWorkerMirroredStrategy()
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
        raise ValueError(
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
        raise ValueError(
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
