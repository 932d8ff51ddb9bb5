"""Experiment #1's starting model, from which all nine experiments start.

Experiment #1 is Keras' own application model with a new N-class head; #2-#9
are its FCN twins, converted with weights copied. So all nine start from the
same weights, which are built once per output folder, saved, and loaded by
every experiment (also across runs and resumes).

ImageNet weights come the Keras way (`keras.applications.fcn_weights`):
the file cached in `$KERAS_HOME/models`, else downloaded into it, within
seconds or not at all; `offline=True` never touches the network. With
`weights="auto"` and neither, the run starts from random initialisation and
says so loudly; it never falls back silently, and the choice is recorded
with every result. A cached file that is broken stops the run (one line):
it is something to fix, not to train around.
"""

import json
import os

import keras
from keras.applications import fcn_weights

from fcn_experiments.models.backbones import get_backbone


class StartingWeightsError(RuntimeError):
    """The starting weights cannot be had; the message is one line saying
    what to do (the command line prints it without a traceback)."""


def imagenet_file(config):
    """The `fcn_weights.KerasFile` of the backbone's ImageNet weights (with
    the top, at the native size: what `keras.applications` loads)."""
    return get_backbone(config.model).imagenet_file(config.alpha)


def imagenet_path(config):
    """Where Keras keeps (or would download) the backbone's ImageNet file."""
    name = imagenet_file(config).file_name
    return os.path.join(fcn_weights.models_dir(), name)


def _notice(lines):
    width = max(len(line) for line in lines) + 4
    bar = "*" * width
    print(
        "\n".join(
            [bar, *(f"* {line.ljust(width - 4)} *" for line in lines), bar]
        )
    )


def resolve_weights(config):
    """Decides the starting weights: `("imagenet", path)`, `("random", None)`
    or `("file", path)`.

    Raises:
        StartingWeightsError: `weights="imagenet"` and the file can be
            neither found nor downloaded, or the cached file is broken.
    """
    if config.weights == "random":
        return "random", None
    if config.weights not in ("auto", "imagenet"):
        return "file", os.path.abspath(config.weights)
    file = imagenet_file(config)
    path = imagenet_path(config)
    present = os.path.isfile(path)
    what = f"{config.model} (weights={config.weights!r})"
    if config.profile != "custom":
        what = f"The {config.profile} profile's {what}"
    try:
        path = fcn_weights.get_keras_file(file, what, offline=config.offline)
        return "imagenet", path
    except fcn_weights.WeightsUnavailableError as error:
        if config.weights == "imagenet" or present:
            raise StartingWeightsError(
                f"{error} To train from random initialisation instead, pass "
                "weights='random'."
            ) from None
        reason = (
            "offline=True" if config.offline else "it could not be downloaded"
        )
        print(error)
    _notice(
        [
            f"NOTICE: no ImageNet weights for {config.model}:",
            f"  {file.file_name}",
            f"is not in {os.path.dirname(path)},",
            f"and {reason}.",
            "Training starts from RANDOM INITIALISATION (recorded as",
            "weights=random in results.csv); accuracies will be far below",
            "the paper's. To use ImageNet weights, run once online (without",
            "offline=True), or put the file there.",
        ]
    )
    return "random", None


def check_offline_weights(config):
    """Raises `StartingWeightsError` at once (before the dataset is built)
    when the run needs the ImageNet file, is offline, and lacks it."""
    saved = f"{starting_weights_path(config)}.weights.h5"
    if (
        config.offline
        and config.weights == "imagenet"
        and not os.path.isfile(imagenet_path(config))
        and not os.path.isfile(saved)
    ):
        resolve_weights(config)  # Raises, naming the file and the folder.


def build_original(config, num_classes):
    """Keras' own application with an N-output head (N classes or bins with
    a softmax; one linear score for regression), random weights."""
    backbone = get_backbone(config.model)
    size = config.input_size
    return backbone.keras_builder()(
        include_top=True,
        weights=None,
        input_shape=(size, size, 3),
        classes=num_classes,
        classifier_activation=config.task_spec.output_activation,
        **backbone.builder_kwargs(config.alpha),
    )


def _copy_imagenet_weights(model, config, path):
    backbone = get_backbone(config.model)
    # The file by path: `resolve_weights` already found or fetched it.
    try:
        reference = backbone.keras_builder()(
            include_top=True, weights=path, **backbone.builder_kwargs(config.alpha)
        )
    except (OSError, ValueError) as error:  # h5py: OSError; layout: ValueError.
        raise StartingWeightsError(
            f"Cannot read the ImageNet weights file {path} "
            f"({' '.join(str(error).split())}): it is probably a broken "
            "download. Delete it (a run online downloads it again), or pass "
            "weights=<path of a good file> or weights='random'."
        ) from None
    for layer in model.layers:
        if layer.name == "predictions" or not layer.weights:
            continue
        # Same builder, same layer names; only `predictions` differs, and
        # the VGGs' fc1, whose input is the flattened map of a 224 input.
        source = reference.get_layer(layer.name).get_weights()
        if [w.shape for w in source] != [tuple(w.shape) for w in layer.weights]:
            size = reference.input_shape[1]
            raise StartingWeightsError(
                f"The ImageNet weights of {config.model}'s layer "
                f"{layer.name!r} fit a {size}x{size} input only. Use "
                f"base_size={size} (the FCN experiments then scale from "
                "there), or weights='random'. "
                f"Received: base_size={config.base_size}"
            )
        layer.set_weights(source)


def starting_weights_path(config):
    folder = os.path.join(config.output_dir, "starting_weights")
    return os.path.join(folder, f"{config.model}_{config.fingerprint_key()}")


def prepare_starting_weights(config, num_classes):
    """Builds and saves the starting model once; returns its description.

    Returns:
        A dict: `path` of the saved `.weights.h5` (of the model
        `build_original(config, num_classes)`) and `weights`, the
        human-readable origin recorded in results (`imagenet`, `random`, or
        the file given).
    """
    stem = starting_weights_path(config)
    path, info_path = f"{stem}.weights.h5", f"{stem}.json"
    if os.path.isfile(path) and os.path.isfile(info_path):
        with open(info_path) as f:
            info = {"path": path, **json.load(f)}
        if info["weights"] == "random" and config.weights == "auto":
            # Say it again: every run that trains from random init says so.
            _notice(
                [
                    "NOTICE: starting from RANDOM INITIALISATION, as saved in",
                    f"{path}.",
                    "Delete that folder to retry ImageNet weights.",
                ]
            )
        return info
    kind, source = resolve_weights(config)
    keras.utils.set_random_seed(config.seed)
    model = build_original(config, num_classes)
    if kind == "imagenet":
        _copy_imagenet_weights(model, config, source)
    elif kind == "file":
        model.load_weights(source)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    model.save_weights(path)
    origin = source if kind == "file" else kind
    with open(info_path, "w") as f:
        json.dump({"weights": origin}, f)
    return {"path": path, "weights": origin}
