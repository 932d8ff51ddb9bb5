"""Settings of a run: one dataclass, and the named profiles that fill it."""

import dataclasses
import hashlib
import json
import os
import warnings

from fcn_experiments import tasks
from fcn_experiments.errors import UsageError
from fcn_experiments.models.backbones import BACKBONES
from fcn_experiments.models.backbones import get_backbone
from fcn_experiments.tasks import REGRESSION_LOSSES
from fcn_experiments.tasks import TASKS

RESIZE_MODES = ("stretch", "crop", "pad", "multicrop", "native")
POOLINGS = ("avg", "max")
ALL_EXPERIMENTS = (1, 2, 3, 4, 5, 6, 7, 8, 9)
OPTIMIZERS = ("sgd", "adam")
# Names `distribute.resolve_strategy` takes (here: no TensorFlow import).
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
# Global Keras dtype policies a run can train under; "auto" picks one
# (fcn_experiments/training/precision.py).
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass
class Config:
    """Everything a run of the experiments depends on.

    Build one with `make_config(profile, **overrides)`; the fields are
    documented in `PARAMETER_HELP`.
    """

    task: str = tasks.DEFAULT
    train_dir: str | None = None
    validation_dir: str | None = None
    test_dir: str | None = None
    num_classes: int | None = None
    validation_split: float = 0.15
    min_class_images: int = 5
    model: str = "mobilenet_v2"
    alpha: float = 0.35
    base_size: int | None = None
    batch_size: int = 8
    optimizer: str = "sgd"
    lr_start: float = 0.01
    lr_min: float = 0.001
    lr_patience: int = 3
    epochs: int = 20
    ema_momentum: float | None = None
    freeze_up_to: int | str = 0
    dropout: float = 0.0
    fcn_pooling: str = "max"
    scale_resize_mode: str = "native"
    weights: str = "auto"
    offline: bool = False
    experiments: tuple = ALL_EXPERIMENTS
    output_dir: str = "snapshots"
    data_dir: str | None = None
    data_cell_size: int = 256
    data_crops_per_cell: tuple = (3, 3, 3)
    cache_images: bool = False
    seed: int = 1
    run_eagerly: bool | str = False  # True, False or "auto"
    mixed_precision: str = "auto"
    jobs: int | str = 1
    force: bool = False
    profile: str = "custom"
    regression_loss: str = "mse"
    score_range: tuple | None = None
    score_threshold: float | None = None

    @property
    def task_spec(self):
        """The `tasks.base.Task` object named by `task`."""
        return tasks.get(self.task)

    @property
    def uses_bundled_data(self):
        return self.train_dir is None

    @property
    def input_size(self):
        """The base ("1x") input side."""
        if self.base_size is None:
            return get_backbone(self.model).default_size
        return self.base_size

    def fingerprint(self):
        """What a finished experiment's results depend on, as a dict.

        Resuming or skipping an experiment whose saved fingerprint differs
        would mix results of different settings, so the runner refuses it.
        """
        ignored = {
            "experiments",
            "output_dir",
            "force",
            "profile",
            "data_dir",
            "run_eagerly",
            "offline",
            # How many train side by side: the threads of each are in
            # results.csv and run.json.
            "jobs",
            "min_class_images",  # a warning threshold: no effect on results
        }
        values = {
            k: v
            for k, v in dataclasses.asdict(self).items()
            if k not in ignored
        }
        values["base_size"] = self.input_size
        for key in ("train_dir", "validation_dir", "test_dir"):
            if values[key] is not None:
                values[key] = os.path.abspath(values[key])
        if not get_backbone(self.model).takes_alpha:
            values.pop("alpha")
        # As before these fields existed. `auto` resolves per CPU (and by a
        # timing probe), so a resume on the same settings is not refused.
        if self.mixed_precision in ("float32", "auto"):
            values.pop("mixed_precision")
        if not self.cache_images:
            values.pop("cache_images")
        if self.ema_momentum is None:
            values.pop("ema_momentum")
        for key in self.task_spec.unused_settings():
            values.pop(key)
        if not self.uses_bundled_data:
            values.pop("data_cell_size")
            values.pop("data_crops_per_cell")
        return json.loads(json.dumps(values))

    def fingerprint_key(self):
        text = json.dumps(self.fingerprint(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


PARAMETER_HELP = {
    "task": f"what to learn: {' | '.join(TASKS)}: classes from class "
    "subfolders, or scores from each split folder's scores.csv "
    "(filename,score) or distributions.csv (filename,p1,...,pK); see "
    "fcn_experiments/tasks/",
    "train_dir": "folder-per-class training images; none: the bundled dataset",
    "validation_dir": "folder-per-class validation images for model selection; "
    "none: `validation_split` of train_dir",
    "test_dir": "folder-per-class test images, used once per experiment "
    "(required with train_dir)",
    "num_classes": "number of classes; checked against the folders",
    "validation_split": "fraction of train_dir held out for validation when "
    "no validation_dir is given",
    "min_class_images": "warn when a split leaves fewer images of a class "
    "(a class with none is an error)",
    "model": f"backbone: {' | '.join(BACKBONES)}",
    "alpha": "MobileNetV2 width multiplier",
    "base_size": "the 1x input side (default: the backbone's own, 224 or 299)",
    "batch_size": "images per batch and per replica",
    "optimizer": "sgd (plain SGD, as the original) | adam",
    "lr_start": "learning rate at the start",
    "lr_min": "floor of ReduceLROnPlateau",
    "lr_patience": "epochs without training-accuracy gain before the "
    "learning rate drops 5x",
    "epochs": "epochs per experiment",
    "ema_momentum": "keep an exponential moving average of the weights "
    "with this momentum (e.g. 0.99) and validate, checkpoint and test it "
    "instead of the last step's weights: steadier from random "
    "initialisation; none: off",
    "freeze_up_to": "freeze the backbone up to this layer: a count of "
    "leading layers (0: train all) or a layer name (frozen inclusive)",
    "dropout": "dropout rate before the classifier",
    "fcn_pooling": "how the FCNs pool their score map: max (softmax per "
    "position, then the maximum: the original's) | avg (logits averaged, "
    "then softmax: equals the original model for GAP backbones)",
    "scale_resize_mode": "resize mode of experiments #3-#5: native (keep the "
    "aspect ratio) or stretch (as the original code)",
    "weights": "starting weights: auto (ImageNet when it can be had, else "
    "random init with a notice) | imagenet | random | a weights file",
    "offline": "never touch the network: ImageNet weights only from "
    "$KERAS_HOME/models (by default a missing file is downloaded there, as "
    "keras.applications does)",
    "experiments": "which of the nine experiments to run",
    "output_dir": "where checkpoints, logs, results and plots go",
    "data_dir": "cache folder of the bundled dataset (default: "
    "<output_dir>/data)",
    "data_cell_size": "bundled dataset: grid cell size in pixels",
    "data_crops_per_cell": "bundled dataset: crops per cell for train, "
    "validation, test",
    "cache_images": "decode the training and validation images once and "
    "keep them in memory (reshuffled and flipped each epoch): much faster "
    "epochs for a dataset that fits in RAM",
    "seed": "seed of weights init, shuffling and the bundled dataset",
    "run_eagerly": "train without tf.function or jax.jit: no tracing, slower "
    "steps (pays off for a few tiny steps, and for debugging); the tiny "
    "profile's 'auto' is eager on TensorFlow and PyTorch, traced on JAX",
    "force": "re-run experiments that already finished",
    "regression_loss": f"loss of task regression: {' | '.join(REGRESSION_LOSSES)}",
    "score_range": "LOW HIGH: every score must lie in it (AVA: 1 10; the "
    "bundled dataset's scores, log2 of the upscaling factor: 0 3, the default there)",
    "score_threshold": "score tasks: the binary accuracy's boundary between "
    "low and high scores (AVA: 5); default the middle of score_range, else "
    "the median training score",
    "jobs": "experiments trained side by side, each in its own process "
    "with its share of the cores: auto (on a machine without a GPU one "
    "more than the cores, one thread each, at most one per 2 GiB of "
    "memory; 1 with a GPU, several replicas or callbacks) | N. A small model "
    "trains as fast on one thread as on two; the thread count changes the "
    "last digits of the arithmetic, so results.csv records it",
    "mixed_precision": "Keras dtype policy for training: "
    f"{' | '.join(PRECISIONS)} (the models' scores stay float32). auto: "
    "mixed_float16 on a GPU; mixed_bfloat16 on a CPU with native bf16 "
    "(amx_bf16 or avx512_bf16) where a few timed steps show it faster; "
    "float32 elsewhere",
}

# `paper` is the original notebook's setting (VGG16 at its 224, 20 epochs,
# batch 8, SGD 0.01 -> 0.001; other backbones at their own size, 299 for
# InceptionV3 and Xception); `quick` runs all nine experiments on a 2-core CPU in
# minutes; `tiny` only checks that everything runs (tests).
PROFILES = {
    "paper": dict(
        model="vgg16",
        batch_size=8,
        epochs=20,
        lr_patience=3,
        weights="imagenet",
    ),
    # From random initialisation (no ImageNet file offline), on the bundled
    # resampling task: Adam and batch 32 learn it in a few hundred steps,
    # where SGD 0.01 at batch 8 did not move. The FCNs average their logits
    # (`fcn_pooling="avg"`): from random initialisation the max head of #2,
    # #6 and #7 collapsed to chance. Base 32 keeps all nine in 15 minutes
    # (#5 at 96 px). See docs/experiments.md.
    "quick": dict(
        model="mobilenet_v2",
        alpha=0.35,
        base_size=32,
        batch_size=32,
        optimizer="adam",
        lr_start=1e-3,
        lr_min=1e-4,
        epochs=8,
        lr_patience=2,
        fcn_pooling="avg",
        cache_images=True,
        # Experiments side by side on one thread each: MobileNetV2-0.35 at
        # 32-96 px trains as fast on one thread as on two (BENCHMARKS.md).
        jobs="auto",
        data_cell_size=96,
        data_crops_per_cell=(5, 3, 5),
    ),
    "tiny": dict(
        model="mobilenet_v2",
        alpha=0.35,
        base_size=32,
        batch_size=8,
        epochs=1,
        lr_patience=1,
        weights="random",
        # Eager where tracing costs more than a few tiny steps (not JAX).
        run_eagerly="auto",
        # Tests: the same policy on every machine.
        mixed_precision="float32",
        data_cell_size=384,
        data_crops_per_cell=(1, 1, 1),
    ),
}


def make_config(profile="quick", **overrides):
    """A checked `Config`: the profile's settings, then `overrides`.

    Args:
        profile: `"quick"`, `"paper"`, `"tiny"` or `"custom"` (the bare
            defaults).
        **overrides: any `Config` field; `None` values are ignored, so
            callers can pass unset parameters through.
    """
    if profile != "custom" and profile not in PROFILES:
        raise UsageError(
            f"Unknown profile; expected one of {sorted(PROFILES)} or 'custom'. "
            f"Received: profile={profile!r}"
        )
    overrides = _deprecated_download_weights(overrides)
    fields = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(
            f"Unknown parameter(s) {unknown}; valid ones: {sorted(fields)}. "
            f"Received: {', '.join(f'{k}={overrides[k]!r}' for k in unknown)}"
        )
    values = dict(PROFILES.get(profile, {}))
    values.update(tasks.get(overrides.get("task")).profile_settings(profile))
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["profile"] = profile
    for key in ("experiments", "data_crops_per_cell", "score_range"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    tasks.get(values.get("task")).fill_defaults(values)
    config = Config(**values)
    check_config(config)
    return config


def _deprecated_download_weights(overrides):
    """`download_weights` (before downloads were on by default) is
    `offline=not download_weights`."""
    overrides = dict(overrides)
    download = overrides.pop("download_weights", None)
    if download is None:
        return overrides
    warnings.warn(
        "`download_weights` is deprecated: a missing ImageNet file is now "
        "downloaded unless offline=True. Pass offline="
        f"{not download} instead. Received: download_weights={download}",
        FutureWarning,
        stacklevel=3,
    )
    if overrides.get("offline") is None:
        overrides["offline"] = not download
    return overrides


def check_config(config):
    """Raises `UsageError` naming the first bad field of `config`."""
    min_size = get_backbone(config.model).min_size  # Checks `model`.
    config.task_spec.check_settings(config)  # Checks `task` too.
    if config.input_size < min_size:
        raise UsageError(
            f"{config.model} needs inputs of at least {min_size} px. "
            f"Received: base_size={config.base_size}"
        )
    _check_data(config)
    _check_training(config)
    _check_choices(config)


def _check_data(c):
    if c.uses_bundled_data:
        if c.validation_dir is not None or c.test_dir is not None:
            raise UsageError(
                "validation_dir/test_dir were given without train_dir. Give "
                "train_dir too, or none of them for the bundled dataset. "
                f"Received: validation_dir={c.validation_dir!r}, "
                f"test_dir={c.test_dir!r}"
            )
    else:
        if c.test_dir is None:
            raise UsageError(
                "A test_dir is needed with train_dir: test accuracy is measured "
                "on images that neither training nor model selection saw. "
                f"Received: train_dir={c.train_dir!r}, test_dir=None"
            )
        for key in ("train_dir", "validation_dir", "test_dir"):
            path = getattr(c, key)
            if path is not None and not os.path.isdir(path):
                raise UsageError(
                    f"`{key}` must be a folder with one subfolder per class. "
                    f"Received: {key}={path!r}"
                )
    if c.validation_dir is None and not 0.0 < c.validation_split < 1.0:
        raise UsageError(
            "`validation_split` must be in (0, 1) when no validation_dir is "
            f"given. Received: validation_split={c.validation_split}"
        )


def _check_training(c):
    for key in ("batch_size", "epochs", "lr_patience", "min_class_images"):
        if int(getattr(c, key)) != getattr(c, key) or getattr(c, key) < 1:
            raise UsageError(
                f"`{key}` must be a positive integer. "
                f"Received: {key}={getattr(c, key)!r}"
            )
    if not 0.0 < c.lr_min <= c.lr_start:
        raise UsageError(
            "Learning rates must satisfy 0 < lr_min <= lr_start. "
            f"Received: lr_start={c.lr_start}, lr_min={c.lr_min}"
        )
    if c.ema_momentum is not None and not 0.0 < c.ema_momentum < 1.0:
        raise UsageError(
            "`ema_momentum` must be in (0, 1), or None for no moving "
            f"average. Received: ema_momentum={c.ema_momentum}"
        )
    if not 0.0 <= c.dropout < 1.0:
        raise UsageError(
            f"`dropout` must be in [0, 1). Received: dropout={c.dropout}"
        )
    if isinstance(c.freeze_up_to, bool) or not isinstance(
        c.freeze_up_to, (int, str)
    ):
        raise UsageError(
            "`freeze_up_to` must be a layer count or a layer name. "
            f"Received: freeze_up_to={c.freeze_up_to!r}"
        )
    if isinstance(c.freeze_up_to, int) and c.freeze_up_to < 0:
        raise UsageError(
            f"`freeze_up_to` must be >= 0. Received: freeze_up_to={c.freeze_up_to}"
        )


def _check_choices(c):
    if c.optimizer not in OPTIMIZERS:
        raise UsageError(
            f"`optimizer` must be one of {OPTIMIZERS}. "
            f"Received: optimizer={c.optimizer!r}"
        )
    if c.fcn_pooling not in POOLINGS:
        raise UsageError(
            f"`fcn_pooling` must be one of {POOLINGS}. "
            f"Received: fcn_pooling={c.fcn_pooling!r}"
        )
    if c.scale_resize_mode not in ("native", "stretch"):
        raise UsageError(
            "`scale_resize_mode` must be 'native' or 'stretch'. "
            f"Received: scale_resize_mode={c.scale_resize_mode!r}"
        )
    if not c.experiments or not set(c.experiments) <= set(ALL_EXPERIMENTS):
        raise UsageError(
            "`experiments` must be a non-empty subset of 1..9. "
            f"Received: experiments={c.experiments!r}"
        )
    if c.jobs != "auto" and (
        isinstance(c.jobs, bool) or not isinstance(c.jobs, int) or c.jobs < 1
    ):
        raise UsageError(
            "`jobs` must be 'auto' or a positive integer. "
            f"Received: jobs={c.jobs!r}"
        )
    if c.run_eagerly not in (True, False, "auto"):
        raise UsageError(
            "`run_eagerly` must be True, False or 'auto'. "
            f"Received: run_eagerly={c.run_eagerly!r}"
        )
    if c.mixed_precision not in PRECISIONS:
        raise UsageError(
            f"`mixed_precision` must be one of {PRECISIONS}. "
            f"Received: mixed_precision={c.mixed_precision!r}"
        )
    if c.weights not in ("auto", "imagenet", "random") and not os.path.isfile(
        str(c.weights)
    ):
        raise UsageError(
            "`weights` must be 'auto', 'imagenet', 'random' or the path of a "
            f"weights file. Received: weights={c.weights!r}"
        )

