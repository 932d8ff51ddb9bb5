"""Experiment #1's starting model, from which all nine experiments start.

Experiment #1 is Keras' own application model with a new N-class head; #2-#9
are its FCN twins, converted with weights copied. So all nine start from the
same weights, which are built once per output folder, saved, and loaded by
every experiment (also across runs and resumes).

ImageNet weights are used when they can be had: cached in
`$KERAS_HOME/models`, or downloaded when `download_weights=True` (off by
default, so that a run never touches the network unless asked to). With
`weights="auto"` and neither, the
run starts from random initialisation and says so loudly; it never falls
back silently, and the choice is recorded with every result.
"""

import json
import os
import socket

import keras

# Keras' builder, and the ImageNet file (with top) that it loads.
APPLICATIONS = {
    "vgg16": ("VGG16", "vgg16_weights_tf_dim_ordering_tf_kernels.h5"),
    "vgg19": ("VGG19", "vgg19_weights_tf_dim_ordering_tf_kernels.h5"),
    "inception_v3": (
        "InceptionV3",
        "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
    ),
    "xception": ("Xception", "xception_weights_tf_dim_ordering_tf_kernels.h5"),
    "mobilenet_v2": (
        "MobileNetV2",
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_224.h5",
    ),
}
DOWNLOAD_HOST = "storage.googleapis.com"


def _builder_kwargs(config):
    return {"alpha": config.alpha} if config.model == "mobilenet_v2" else {}


def imagenet_file(config):
    """Where Keras keeps (or would download) the backbone's ImageNet file."""
    name = APPLICATIONS[config.model][1].format(alpha=float(config.alpha))
    home = keras.src.backend.config.keras_home()
    return os.path.join(os.path.expanduser(home), "models", name)


def download_host_reachable(timeout=3.0):
    """Whether Keras' weight host answers within `timeout` seconds.

    A plain TCP connect, so an offline machine (no DNS, or a firewall that
    drops packets) is detected in at most `timeout` seconds instead of
    hanging in a download.
    """
    try:
        with socket.create_connection((DOWNLOAD_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


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
        RuntimeError: `weights="imagenet"` and the file is neither cached nor
            downloadable.
    """
    if config.weights == "random":
        return "random", None
    if config.weights not in ("auto", "imagenet"):
        return "file", os.path.abspath(config.weights)
    path = imagenet_file(config)
    if os.path.isfile(path):
        return "imagenet", path
    if not config.download_weights:
        reason = "downloads are off (download_weights=False)"
    elif download_host_reachable():
        try:
            builder = getattr(keras.applications, APPLICATIONS[config.model][0])
            builder(
                include_top=True, weights="imagenet", **_builder_kwargs(config)
            )
            return "imagenet", path
        except Exception as error:  # Keras raises a bare Exception here.
            reason = f"the download failed ({error})"
    else:
        reason = f"{DOWNLOAD_HOST} cannot be reached"
    if config.weights == "imagenet":
        raise RuntimeError(
            f"ImageNet weights for {config.model} are needed (weights='imagenet'), "
            f"but {os.path.basename(path)} is not in {os.path.dirname(path)} and "
            f"{reason}. Copy the file there (or set KERAS_HOME), pass "
            "download_weights=True to let Keras download it, or pass "
            "weights='auto' to allow random initialisation."
        )
    _notice(
        [
            f"NOTICE: no ImageNet weights for {config.model}:",
            f"  {os.path.basename(path)}",
            f"is not in {os.path.dirname(path)},",
            f"and {reason}.",
            "Training starts from RANDOM INITIALISATION (recorded as",
            "weights=random in results.csv); accuracies will be far below",
            "the paper's. To use ImageNet weights, put the file there or",
            "run once with download_weights=True and network access.",
        ]
    )
    return "random", None


def build_original(config, num_classes):
    """Keras' own application with an N-class softmax head, random weights."""
    builder = getattr(keras.applications, APPLICATIONS[config.model][0])
    size = config.input_size
    return builder(
        include_top=True,
        weights=None,
        input_shape=(size, size, 3),
        classes=num_classes,
        classifier_activation="softmax",
        **_builder_kwargs(config),
    )


def _copy_imagenet_weights(model, config, path):
    builder = getattr(keras.applications, APPLICATIONS[config.model][0])
    # The cached file by path: `weights="imagenet"` would make Keras
    # re-download a file whose hash it does not recognise.
    reference = builder(
        include_top=True, weights=path, **_builder_kwargs(config)
    )
    for layer in model.layers:
        if layer.name == "predictions" or not layer.weights:
            continue
        # Same builder, same layer names; only `predictions` differs, and
        # the VGGs' fc1, whose input is the flattened map of a 224 input.
        source = reference.get_layer(layer.name).get_weights()
        if [w.shape for w in source] != [tuple(w.shape) for w in layer.weights]:
            raise ValueError(
                f"The ImageNet weights of {config.model}'s layer {layer.name!r} "
                f"fit a {reference.input_shape[1]}x{reference.input_shape[1]} "
                f"input only. Use base_size={reference.input_shape[1]} (the FCN "
                "experiments then scale from there), or weights='random'. "
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
