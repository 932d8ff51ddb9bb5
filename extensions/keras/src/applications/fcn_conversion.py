"""Fully convolutional (FCN) twins of Keras' ImageNet classifiers.

Written once here, used by `vgg16_fcn`, `vgg19_fcn`, `inception_v3_fcn`,
`xception_fcn` and `mobilenet_v2_fcn`, which only describe their backbone
(a `BackboneSpec`) and hold the builders.

An FCN model is the Keras classifier with its fully connected top turned into
convolutions. It accepts any input size at or above the backbone's minimum
and scores every position of the final feature map.

Conversion (exact: the kernels are reshaped, never retrained):
- VGG16 / VGG19: `fc1` `(7*7*512, 4096)` becomes a 7x7 conv, `fc2` and
  `predictions` become 1x1 convs. A channels-last `Flatten` is a C-order
  reshape, so `fc1`'s kernel reshaped to `(7, 7, 512, 4096)` is exactly the
  conv kernel. An HxW input gives (H//32 - 6) x (W//32 - 6) positions, one at
  224x224. Inputs from 32 up to 223 give a final feature map smaller than the
  7x7 window `fc1` needs: it is zero-padded, centred, to 7x7 and scored as one
  position. (The original cannot take these sizes at all; zeros are what its
  ReLU features hold where nothing fires, so this is the natural extension,
  not an equivalence.) `to_fcn` of a VGG built for another input size,
  whose `fc1` reads an r x c map, makes `fc1` an r x c conv.
- InceptionV3, Xception, MobileNetV2: the `predictions` Dense that follows
  global average pooling becomes a 1x1 conv on the feature map.
The backbone is built by Keras' own builder (`include_top=False`), with one
change: where MobileNetV2's size is unknown when it is built, its padding
before stride-2 convs (which Keras fixes for even sizes then) is computed
for each input's actual size (`SamePadding2D`), so that it too equals the
original at any size, odd ones included.

Head (`pooling`), `classifier_activation` being e.g. softmax:
- `"avg"`: the per-position logits are averaged, then activated. For the
  global-average-pooling backbones this equals the original model at any
  input size; it is computed as the 1x1 conv of the averaged features (the
  same thing, the conv being linear, and as cheap as the original). For the
  VGGs it equals the original at 224x224.
- `"max"`: the arrangement of the FCN paper and of the original distribution:
  the activation per position, then the global maximum per class.
- `None`: the activated score map, `(batch, rows, cols, classes)`.
The layer named `predictions` outputs logits per position (except for the
global-average-pooling backbones with `pooling="avg"`, see above), so
`keras.Model(model.input, model.get_layer("predictions").output)` is the
logit score map.

Skip variant (`*_fcn_skip`, the original distribution's experiment #9): see
`fcn_head.skip_branch`. The branch starts at stride 4 where a stage ends there:
VGG's `block2_pool`, Xception's block 2 output (`block3_sepconv1_act`),
MobileNetV2's `block_2_add`; InceptionV3's earliest named stage is `mixed0`,
at stride 8.

Weights: `"imagenet"` uses Keras' own ImageNet file (with the top), cached
in `$KERAS_HOME/models` or downloaded as Keras does (`fcn_weights`); a path
loads a file laid out like the original Keras model, legacy `.h5` or
`.weights.h5`. Either is loaded
into a freshly built original (Keras' own builder, `include_top=True`) and
converted by `fcn_weight_copy.copy_weights`, the same function `to_fcn` uses.

Mixed precision: under a global `mixed_float16` / `mixed_bfloat16` policy
the backbone, the skip branch and VGG's `fc1`/`fc2` compute in the policy's
dtype; `predictions` and the head after it compute in float32, so every
model outputs float32 (the Keras mixed-precision guide's advice).

Model code uses `keras.layers` and `keras.ops` only (backend-neutral);
only the `channels_last` data format is supported.
"""

import dataclasses
import json
import os
from typing import Callable

from keras.src import activations
from keras.src import backend
from keras.src import layers
from keras.src.applications import fcn_weights
from keras.src.applications import imagenet_utils
from keras.src.applications.fcn_head import fcn_top
from keras.src.applications.fcn_head import skip_branch
from keras.src.applications.fcn_layers import SamePadding2D
from keras.src.applications.fcn_weight_copy import copy_weights
from keras.src.applications.fcn_weight_copy import get_layer
from keras.src.applications.fcn_weight_copy import load_original_weights
from keras.src.models import Functional
from keras.src.models.cloning import clone_model
from keras.src.ops import operation_utils

POOLINGS = ("avg", "max", None)


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """What differs between the backbones: one per `*_fcn` module.

    Attributes:
        name: the Keras application's name, e.g. `"VGG16"`.
        keras_builder: Keras' own builder, e.g. `keras.applications.VGG16`.
            It builds the FCN's backbone (`include_top=False`) and, to load a
            weights file, the original (`include_top=True`).
        default_size: the original's native input size.
        min_size: the smallest input size accepted.
        feature_layer: the layer whose output the original's top reads.
        skip_layer: the early layer the skip branch starts from.
        flatten_size: the final feature map size that the original flattens
            at its native size (7 for VGG), or `None` for global average
            pooling. (`to_fcn` takes it from the original it converts.)
        hidden_dense: `(name, units)` of the Dense layers between the
            flattened features and `predictions` (VGG's `fc1`, `fc2`).
        kwargs_from_model: returns the builder arguments (e.g. MobileNetV2's
            `alpha`) that an already-built original was made with.
        same_padding: `{name: (kernel_size, strides)}` of the backbone's
            `ZeroPadding2D` layers that pad as a "same" convolution would,
            for sizes fixed when Keras builds it; in a model of unknown
            size they are replaced by `SamePadding2D` (MobileNetV2).
        imagenet_file: the `fcn_weights.KerasFile` of Keras' ImageNet
            weights with the top, where there is one file.
        imagenet_file_for: where the file depends on the builder arguments
            or the input shape (MobileNetV2's `alpha` and size):
            `(input_shape, **backbone_kwargs) -> fcn_weights.KerasFile`.
        builder_args: the names of the builders' arguments that go on to
            Keras' builder (MobileNetV2's `("alpha",)`).
    """

    name: str
    keras_builder: Callable
    default_size: int
    min_size: int
    feature_layer: str
    skip_layer: str
    flatten_size: int | None = None
    hidden_dense: tuple = ()
    kwargs_from_model: Callable = lambda model: {}
    same_padding: dict = dataclasses.field(default_factory=dict)
    imagenet_file: fcn_weights.KerasFile | None = None
    imagenet_file_for: Callable | None = None
    builder_args: tuple = ()

    @property
    def top_layer_names(self):
        return tuple(name for name, _ in self.hidden_dense) + ("predictions",)

    def imagenet_weights(self, input_shape=None, **backbone_kwargs):
        """The `fcn_weights.KerasFile` Keras loads for `weights="imagenet"`
        (with the top) for this input shape and builder arguments."""
        if self.imagenet_file_for is not None:
            return self.imagenet_file_for(input_shape, **backbone_kwargs)
        return self.imagenet_file


CLASS_INDEX_FILE = fcn_weights.keras_file(imagenet_utils.CLASS_INDEX_PATH)


# ------------------------------------------------------------------ checks


def check_arguments(
    spec, *, weights, pooling, classes, classifier_activation, dropout
):
    # A local file only: `file_utils.exists` would query remote paths.
    is_file = isinstance(weights, (str, os.PathLike)) and os.path.isfile(
        weights
    )
    if not (weights is None or weights == "imagenet" or is_file):
        raise ValueError(
            "The `weights` argument should be either `None` (random "
            "initialization), 'imagenet' (pre-training on ImageNet, cached in "
            "$KERAS_HOME/models or downloaded) or the path to an existing weights file laid "
            f"out like keras.applications.{spec.name}'s. "
            f"Received: weights={weights}"
        )
    if pooling not in POOLINGS:
        raise ValueError(
            "The `pooling` argument should be 'max' (per-position activation, "
            "then global max), 'avg' (average logits, then activation) or "
            f"None (the score map). Received: pooling={pooling}"
        )
    if not (isinstance(classes, int) and classes > 0):
        raise ValueError(
            "The `classes` argument should be a positive integer. "
            f"Received: classes={classes}"
        )
    activations.get(classifier_activation)  # Raises on an unknown name.
    if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
        raise ValueError(
            "The `dropout` argument should be a rate in [0, 1). "
            f"Received: dropout={dropout}"
        )


def check_input_shape(spec, *, builder_name, input_shape, input_tensor, weights):
    """Returns the `(rows, cols, channels)` input shape, checked."""
    if backend.image_data_format() != "channels_last":
        raise ValueError(
            f"{builder_name} supports the channels_last data format only; "
            "call keras.config.set_image_data_format('channels_last'). "
            f"Received: image_data_format={backend.image_data_format()}"
        )
    if input_shape is None:
        if input_tensor is not None:
            input_shape = tuple(input_tensor.shape[1:])
        else:
            input_shape = (None, None, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] is None:
        raise ValueError(
            "`input_shape` should be (rows, cols, channels), rows and cols "
            "may be None. Received: "
            f"input_shape={input_shape}"
        )
    if weights is not None and input_shape[-1] != 3:
        raise ValueError(
            "Pretrained weights need 3 input channels; pass weights=None for "
            f"another number. Received: input_shape={input_shape}"
        )
    if any(
        size is not None and size < spec.min_size for size in input_shape[:2]
    ):
        raise ValueError(
            f"{builder_name} needs input images of at least "
            f"{spec.min_size}x{spec.min_size} pixels. "
            f"Received: input_shape={input_shape}"
        )
    return input_shape


# ------------------------------------------------------------------ model


def build_model(
    spec,
    *,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    dropout,
    skip,
    name,
    backbone_kwargs,
    window=None,
):
    """Builds the FCN with freshly initialised weights."""
    if input_tensor is None:
        img_input = layers.Input(shape=input_shape)
    elif not backend.is_keras_tensor(input_tensor):
        img_input = layers.Input(tensor=input_tensor, shape=input_shape)
    else:
        img_input = input_tensor
    backbone = spec.keras_builder(
        include_top=False,
        weights=None,
        input_tensor=img_input,
        **backbone_kwargs,
    )
    if spec.same_padding and None in img_input.shape[1:3]:
        backbone = _with_same_padding(spec, backbone)
    x = backbone.get_layer(spec.feature_layer).output
    if skip:
        x = skip_branch(backbone.get_layer(spec.skip_layer).output, x)
    x = fcn_top(
        spec,
        x,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout=dropout,
        window=window,
    )
    if input_tensor is not None:
        inputs = operation_utils.get_source_inputs(input_tensor)
    else:
        inputs = img_input
    return Functional(inputs, x, name=name)


def _with_same_padding(spec, backbone):
    """`backbone` rebuilt with `spec.same_padding`'s layers computing the
    padding at run time (fresh weights, as all of a new backbone's)."""

    def clone(layer):
        if layer.name in spec.same_padding:
            kernel_size, strides = spec.same_padding[layer.name]
            return SamePadding2D(kernel_size, strides, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    return clone_model(
        backbone, input_tensors=backbone.input, clone_function=clone
    )


def build_fcn(
    spec,
    *,
    builder_name,
    skip,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    dropout,
    name,
    backbone_kwargs=None,
):
    """What every `*_fcn` and `*_fcn_skip` builder does.

    `backbone_kwargs` go to Keras' builder (`spec.builder_args`, e.g.
    `alpha`); with `weights="imagenet"` they and the input shape pick
    Keras' ImageNet file (`spec.imagenet_weights`).
    """
    backbone_kwargs = backbone_kwargs or {}
    check_arguments(
        spec,
        weights=weights,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout=dropout,
    )
    input_shape = check_input_shape(
        spec,
        builder_name=builder_name,
        input_shape=input_shape,
        input_tensor=input_tensor,
        weights=weights,
    )
    if weights == "imagenet":  # Before building: a missing file fails fast.
        weights_path = fcn_weights.get_keras_file(
            spec.imagenet_weights(input_shape, **backbone_kwargs),
            f"{builder_name}(weights='imagenet')",
        )
    model = build_model(
        spec,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout=dropout,
        skip=skip,
        name=name,
        backbone_kwargs=backbone_kwargs,
    )
    if weights is not None:
        # A file of the user's may hold the model's own classes (an
        # original they trained) or ImageNet's 1000 (then `predictions`
        # starts fresh); Keras' ImageNet file holds 1000.
        imagenet = weights == "imagenet"
        load_original_weights(
            spec,
            model,
            path=weights_path if imagenet else os.fspath(weights),
            file_classes=1000 if imagenet else classes,
            classes=classes,
            channels=3 if imagenet else input_shape[-1],
            backbone_kwargs=backbone_kwargs,
        )
    return model


def to_fcn(
    spec,
    model,
    *,
    pooling="avg",
    classifier_activation=None,
    skip=False,
    dropout=0.0,
    name=None,
):
    """Turns an original Keras model of `spec`'s family into its FCN twin.

    The classes come from the model's `predictions` layer;
    `classifier_activation=None` takes its activation too.
    """
    for layer_name in (spec.feature_layer,) + spec.top_layer_names[:-1]:
        get_layer(spec, model, layer_name)  # Fails before building.
    predictions = get_layer(spec, model, "predictions", layers.Dense)
    window = None
    if spec.flatten_size is not None:
        # An original built for another size flattens another map: its fc1
        # becomes a conv of that window (7x7 at 224x224).
        features = get_layer(spec, model, spec.feature_layer)
        window = tuple(features.output.shape[1:3])
    if classifier_activation is None:
        classifier_activation = predictions.activation
    check_arguments(
        spec,
        weights=None,
        pooling=pooling,
        classes=predictions.units,
        classifier_activation=classifier_activation,
        dropout=dropout,
    )
    fcn = build_model(
        spec,
        input_tensor=None,
        input_shape=(None, None, model.inputs[0].shape[-1]),
        pooling=pooling,
        classes=predictions.units,
        classifier_activation=classifier_activation,
        dropout=dropout,
        skip=skip,
        name=name or f"{model.name}_fcn{'_skip' if skip else ''}",
        backbone_kwargs=spec.kwargs_from_model(model),
        window=window,
    )
    copy_weights(spec, model, fcn)
    return fcn


# ------------------------------------------------------- ImageNet classes


def decode_predictions(preds, top=5):
    if imagenet_utils.CLASS_INDEX is None:
        path = fcn_weights.get_keras_file(
            CLASS_INDEX_FILE, "decode_predictions", alternative=None
        )
        with open(path) as f:
            # What Keras' own decode_predictions caches after downloading.
            imagenet_utils.CLASS_INDEX = json.load(f)
    return imagenet_utils.decode_predictions(preds, top=top)


decode_predictions.__doc__ = (
    imagenet_utils.decode_predictions.__doc__
    + "\n    imagenet_class_index.json is cached in $KERAS_HOME/models or "
    "downloaded, as by Keras' own decode_predictions; an offline failure is "
    "one line within seconds.\n"
)
