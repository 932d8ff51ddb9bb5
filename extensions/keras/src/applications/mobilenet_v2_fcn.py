"""MobileNetV2 as a fully convolutional network (see `fcn_conversion`).

Unlike the other backbones, the ImageNet file depends on `alpha` and on the
input size Keras trained it at (96, 128, 160, 192 or 224): a square input
shape of one of those sizes picks its file, any other shape (the default,
`(None, None, 3)`, included) the 224 file.
"""

from keras.src import layers
from keras.src.applications import fcn_conversion
from keras.src.applications import fcn_docstrings
from keras.src.applications import fcn_weight_copy
from keras.src.applications import fcn_weights
from keras.src.applications import mobilenet_v2
from keras.src.applications.fcn_conversion import (
    decode_predictions as decode_predictions,
)
from keras.src.applications.mobilenet_v2 import preprocess_input as preprocess_input

IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
IMAGENET_SIZES = (96, 128, 160, 192, 224)


def _alpha_of(model):
    # `block_16_project` has _make_divisible(320 * alpha, 8) filters, which
    # is 320 * alpha for every ImageNet alpha; another alpha whose filters
    # were rounded fails the shape check of the weight copy, by layer name.
    filters = fcn_weight_copy.get_layer(
        SPEC, model, "block_16_project", layers.Conv2D
    ).filters
    return {"alpha": filters / 320}


def imagenet_weights_file(alpha, input_shape=None):
    """The `fcn_weights.KerasFile` of the ImageNet weights Keras loads."""
    if alpha not in IMAGENET_ALPHAS:
        raise ValueError(
            "ImageNet weights exist for alpha in "
            f"{', '.join(map(str, IMAGENET_ALPHAS))} only; pass weights=None "
            f"or a path for another alpha. Received: alpha={alpha}"
        )
    rows, cols = (input_shape or (None, None))[:2]
    rows = rows if rows == cols and rows in IMAGENET_SIZES else 224
    file_name = (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_"
        f"{float(alpha)}_{rows}.h5"
    )
    return fcn_weights.keras_file(mobilenet_v2.BASE_WEIGHT_PATH + file_name)


SPEC = fcn_conversion.BackboneSpec(
    name="MobileNetV2",
    keras_builder=mobilenet_v2.MobileNetV2,
    default_size=224,
    min_size=32,
    feature_layer="out_relu",
    skip_layer="block_2_add",  # Stride 4, 24 * alpha channels.
    kwargs_from_model=_alpha_of,
    # Before the stride-2 depthwise convs: exact at odd sizes too.
    same_padding={f"block_{i}_pad": (3, 2) for i in (1, 3, 6, 13)},
    imagenet_file_for=lambda input_shape, alpha: imagenet_weights_file(
        alpha, input_shape
    ),
    builder_args=("alpha",),
)


def MobileNetV2_fcn(
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling="max",
    classes=1000,
    classifier_activation="softmax",
    dropout=0.0,
    alpha=1.0,
    name=None,
):
    return fcn_conversion.build_fcn(
        SPEC,
        builder_name="MobileNetV2_fcn",
        skip=False,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout=dropout,
        name=name or f"mobilenetv2_{alpha:0.2f}_fcn",
        backbone_kwargs={"alpha": alpha},
    )


def MobileNetV2_fcn_skip(
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling="max",
    classes=1000,
    classifier_activation="softmax",
    dropout=0.0,
    alpha=1.0,
    name=None,
):
    return fcn_conversion.build_fcn(
        SPEC,
        builder_name="MobileNetV2_fcn_skip",
        skip=True,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout=dropout,
        name=name or f"mobilenetv2_{alpha:0.2f}_fcn_skip",
        backbone_kwargs={"alpha": alpha},
    )


def to_fcn(
    model,
    pooling="avg",
    classifier_activation=None,
    skip=False,
    dropout=0.0,
    name=None,
):
    return fcn_conversion.to_fcn(
        SPEC,
        model,
        pooling=pooling,
        classifier_activation=classifier_activation,
        skip=skip,
        dropout=dropout,
        name=name,
    )


MobileNetV2_fcn.__doc__, MobileNetV2_fcn_skip.__doc__, to_fcn.__doc__ = (
    fcn_docstrings.format_docs(
        SPEC,
        extra_args="""
        alpha: width multiplier of MobileNetV2 (as in Keras' builder); the
            ImageNet weights exist for 0.35, 0.5, 0.75, 1.0, 1.3 and 1.4.""",
    )
)
