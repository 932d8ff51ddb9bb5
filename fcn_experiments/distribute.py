"""Choosing the tf.distribute strategy a run trains under."""

import json
import os

import tensorflow as tf

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
