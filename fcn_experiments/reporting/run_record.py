"""`run.json`: what a run's numbers depend on, beside its results.

The same seed, software, data and settings give identical results on one
machine kind, idle or loaded; another CPU (other kernels, other sums) or
another precision policy gives other figures within the seed spread. So
each invocation that trains records the software versions, the backend,
the CPU model and flags, the thread settings, the oneDNN and determinism
settings, the precision policy and why, the seed, a hash of the data
listing and the code's commit. `{"runs": [first, resumed, ...]}`: a
resumed run appends its own record, and keeps the first one's precision
policy (`recorded_precision`).
"""

import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys

import numpy as np

from fcn_experiments.training.precision import read_cpu_flags
from fcn_experiments.training.records import write_json_atomic

RUN_FILE = "run.json"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "MKL_NUM_THREADS",
)


def settings_key(fingerprint):
    """A short hash of a run's settings fingerprint (split included)."""
    text = json.dumps(fingerprint, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def listing_hash(files):
    """sha256 of the split's listing: each split's paths (relative to
    their common folder), classes and sizes in bytes."""
    paths = [path for rows in files.values() for path, _ in rows]
    common = os.path.commonpath(paths) if paths else ""
    digest = hashlib.sha256()
    for split in sorted(files):
        for path, class_name in files[split]:
            size = os.path.getsize(path) if os.path.exists(path) else -1
            digest.update(
                f"{split}\t{class_name}\t{os.path.relpath(path, common)}\t"
                f"{size}\n".encode()
            )
    return digest.hexdigest()


def software_versions():
    """Python, numpy, Keras and each backend library this process loaded."""
    import keras

    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "keras": keras.__version__,
    }
    for name in ("tensorflow", "jax", "jaxlib", "torch"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "unknown")
    return versions


def cpu_model(path="/proc/cpuinfo"):
    """The CPU's model name ('' where unknown)."""
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or ""


def thread_settings():
    """TensorFlow's op thread pools (0: TensorFlow chooses), the cores this
    process may use, and the thread variables that were set."""
    threads = {"cpu_count": os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        threads["usable_cores"] = len(os.sched_getaffinity(0))
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        threads["tf_intra_op"] = tf.config.threading.get_intra_op_parallelism_threads()
        threads["tf_inter_op"] = tf.config.threading.get_inter_op_parallelism_threads()
    threads["environment"] = {
        name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ
    }
    return threads


def numerics_settings():
    """oneDNN (TensorFlow's default on x86 Linux is on) and op
    determinism."""
    deterministic = None
    if "tensorflow" in sys.modules:
        # Not in TensorFlow's public API, only its setter is.
        from tensorflow.python.framework import config as tf_config

        deterministic = tf_config.is_op_determinism_enabled()
    return {
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "TF_DETERMINISTIC_OPS": os.environ.get("TF_DETERMINISTIC_OPS"),
        "op_determinism": deterministic,
    }


def code_commit(root=ROOT):
    """`{"commit", "dirty"}` of the code's git checkout, or None."""
    if not os.path.exists(os.path.join(root, ".git")):
        return None
    try:
        head = subprocess.run(
            ["git", "-C", root, "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10,
        )
        status = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def read_runs(output_dir):
    """The records of `output_dir/run.json` (oldest first), or []."""
    try:
        with open(os.path.join(output_dir, RUN_FILE)) as f:
            return list(json.load(f)["runs"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


def recorded_precision(output_dir, fingerprint):
    """`{"policy", "reason"}` chosen when the run in `output_dir` with the
    same settings started, or None (no record, or other settings)."""
    runs = read_runs(output_dir)
    if runs and runs[0].get("settings") == settings_key(fingerprint):
        return runs[0].get("precision")
    return None


def record_run(output_dir, *, config, fingerprint, files, precision,
               jobs=1, threads=None):
    """Appends this invocation's record to `output_dir/run.json` (a new
    file when the settings differ from the recorded run's, or on
    `force`)."""
    import keras

    runs = read_runs(output_dir)
    key = settings_key(fingerprint)
    if config.force or (runs and runs[0].get("settings") != key):
        runs = []
    runs.append({
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "command": sys.argv,
        "seed": config.seed,
        "settings": key,
        "data_listing_sha256": listing_hash(files),
        "software": software_versions(),
        "backend": keras.backend.backend(),
        "platform": platform.platform(),
        "cpu": {"model": cpu_model(), "flags": sorted(read_cpu_flags() or [])},
        "threads": {
            **thread_settings(),
            # Experiments side by side, and the threads of each (None: this
            # process's own settings above).
            "jobs": jobs,
            "threads_per_experiment": threads,
        },
        "numerics": numerics_settings(),
        "precision": {
            "requested": config.mixed_precision,
            "policy": precision.policy,
            "reason": precision.reason,
        },
        "code": code_commit(),
    })
    write_json_atomic(os.path.join(output_dir, RUN_FILE), {"runs": runs})
