"""The nine experiments of the paper, and the model each one trains."""

import dataclasses

import keras

from fcn_experiments.errors import UsageError
from fcn_experiments.models.backbones import get_backbone
from fcn_experiments.models.starting_weights import build_original


@dataclasses.dataclass(frozen=True)
class Experiment:
    number: int
    name: str
    title: str
    scale: float
    # None: the config's `scale_resize_mode` (experiments #3-#5).
    resize_mode: str | None
    fcn: bool = True
    skip: bool = False

    def input_size(self, config):
        return int(round(config.input_size * self.scale))

    def mode(self, config):
        return self.resize_mode or config.scale_resize_mode

    def crops(self, config):
        """Inputs per image: three for multi-crop, else one."""
        return 3 if self.mode(config) == "multicrop" else 1

    @property
    def folder(self):
        return f"exp{self.number}_{self.name}"


EXPERIMENTS = (
    Experiment(
        1, "original", "finetune the original model", 1.0, "stretch", fcn=False
    ),
    Experiment(2, "fcn_1x", "FCN at the original size", 1.0, "stretch"),
    Experiment(3, "fcn_1.5x", "FCN at 1.5x", 1.5, None),
    Experiment(4, "fcn_2x", "FCN at 2x", 2.0, None),
    Experiment(5, "fcn_3x", "FCN at 3x", 3.0, None),
    Experiment(6, "fcn_1.5x_crop", "FCN at 1.5x, crop", 1.5, "crop"),
    Experiment(7, "fcn_1.5x_pad", "FCN at 1.5x, pad", 1.5, "pad"),
    Experiment(
        8, "fcn_1.5x_multicrop", "FCN at 1.5x, multi-crop", 1.5, "multicrop"
    ),
    Experiment(
        9,
        "fcn_1.5x_multicrop_skip",
        "FCN at 1.5x, multi-crop + skip connection",
        1.5,
        "multicrop",
        skip=True,
    ),
)


def get_experiment(number):
    return EXPERIMENTS[number - 1]


def best_fcn_row(rows, selection):
    """The result row of the FCN experiment (#2-#9) best on validation (the
    lower number on a tie), or None: model selection on validation, never on
    test. `selection` is the task's `(field, "max" | "min")`: the highest
    validation accuracy, or for score tasks the lowest validation loss."""
    fcn_rows = [row for row in rows if get_experiment(row["experiment"]).fcn]
    if not fcn_rows:
        return None
    key, mode = selection
    sign = 1 if mode == "max" else -1
    return max(
        fcn_rows, key=lambda row: (sign * float(row[key]), -row["experiment"])
    )


def preprocess_function(config):
    """The backbone's own `preprocess_input` (same for its FCN twin)."""
    return get_backbone(config.model).preprocess_input


def _to_fcn(config):
    # The FCN modules are installed into Keras by FCN_setup.py.
    return get_backbone(config.model).to_fcn


def _multicrop():
    try:
        from keras.applications import MultiCrop
    except ImportError as error:
        raise ImportError(
            "keras.applications.MultiCrop is missing: the FCN extensions are "
            "not installed in this Keras. Run `python FCN_setup.py install`."
        ) from error
    return MultiCrop


def _with_head_dropout(original, rate):
    """Inserts Dropout before the classifier (the last layer with weights:
    `predictions`, or MobileNet's 1x1 `conv_preds`), weights shared."""
    head = [layer for layer in original.layers if layer.weights][-1]

    def call(layer, *args, **kwargs):
        if layer is head:
            args = (keras.layers.Dropout(rate, name="head_dropout")(args[0]),)
        return layer(*args, **kwargs)

    return keras.models.clone_model(
        original, clone_function=lambda layer: layer, call_function=call
    )


def _with_float32_output(model):
    """Under a mixed-precision policy Keras' own applications output the
    half type; a float32 output, as the FCNs have, keeps the loss accurate."""
    if model.output.dtype == "float32":
        return model
    output = keras.layers.Activation(
        "linear", dtype="float32", name="output_float32"
    )(model.output)
    return keras.Model(model.inputs, output, name=model.name)


def build_model(experiment, original, config):
    """The model that `experiment` trains, starting from `original`.

    Args:
        experiment: an `Experiment`.
        original: experiment #1's starting model (Keras' application with an
            N-class head), with the starting weights loaded.
        config: the run's `Config`.

    Returns:
        #1: `original` (+ dropout before its head). #2-#9: its FCN twin,
        from the same weights; for multi-crop, wrapped in `MultiCrop` so
        that it takes batches of 3 crops per image.
    """
    if not experiment.fcn:
        if config.dropout > 0:
            original = _with_head_dropout(original, config.dropout)
        return _with_float32_output(original)
    try:
        fcn = _to_fcn(config)(
            original,
            pooling=config.fcn_pooling,
            classifier_activation=config.task_spec.output_activation,
            skip=experiment.skip,
            dropout=config.dropout,
        )
    except ValueError as error:
        if not experiment.skip or "skip" not in str(error):
            raise
        # NASNet: no stride-4 layer that every path passes through.
        raise UsageError(
            f"Experiment #{experiment.number} (skip connection) is not "
            f"defined for {config.model}: {error} Leave it out of "
            "`experiments`."
        ) from None
    if experiment.mode(config) == "multicrop":
        model = _multicrop()(
            fcn, pooling=config.task_spec.multicrop_pooling(config)
        )
        # A subclassed model: built now, as BackupAndRestore requires.
        model.build((None, 3, None, None, 3))
        return model
    return fcn


def inner_fcn(model):
    """The FCN inside a model built by `build_model` (unwraps `MultiCrop`)."""
    return getattr(model, "model", model)


def freeze(model, freeze_up_to, layer_names):
    """Freezes the leading backbone layers of `model`.

    Args:
        model: a model from `build_model` (a `MultiCrop` is unwrapped).
        freeze_up_to: 0 (nothing), a count of leading layers of experiment
            #1's model (as in the original notebook), or a layer name (frozen
            inclusive).
        layer_names: the layer names of experiment #1's model, in order. A
            count is turned into a name there, so that every experiment
            freezes the same backbone layers whatever its head looks like.

    Returns:
        The number of layers frozen.
    """
    if freeze_up_to == 0:
        return 0
    if isinstance(freeze_up_to, int):
        if freeze_up_to > len(layer_names):
            raise ValueError(
                f"`freeze_up_to` exceeds the {len(layer_names)} layers of the "
                f"model. Received: freeze_up_to={freeze_up_to}"
            )
        last = layer_names[freeze_up_to - 1]
    else:
        last = freeze_up_to
    layers = inner_fcn(model).layers
    names = [layer.name for layer in layers]
    if last not in names:
        raise ValueError(
            f"No layer named {last!r} in {model.name}; `freeze_up_to` takes a "
            f"backbone layer name such as {names[len(names) // 2]!r}. "
            f"Received: freeze_up_to={freeze_up_to!r}"
        )
    count = names.index(last) + 1
    for layer in layers[:count]:
        layer.trainable = False
    return count


# BatchNormalization momentum when training from random initialisation.
RANDOM_INIT_BN_MOMENTUM = 0.9


def build_experiment_model(
    experiment, config, num_classes, starting_weights, *, random_init=False
):
    """Experiment `experiment`'s model from the starting weights file, frozen
    as configured. Call it inside the strategy's scope.

    With `random_init`, BatchNormalization layers get momentum 0.9: with
    Keras' 0.99-0.999 their moving statistics hardly leave their initial
    values in a few hundred steps, and inference-mode predictions (validation,
    test) come out constant. Pretrained statistics need no such change.
    """
    original = build_original(config, num_classes)
    original.load_weights(starting_weights)
    layer_names = [layer.name for layer in original.layers]
    model = build_model(experiment, original, config)
    freeze(model, config.freeze_up_to, layer_names)
    if random_init:
        for layer in inner_fcn(model).layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = RANDOM_INIT_BN_MOMENTUM
    return model
