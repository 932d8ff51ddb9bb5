"""Xception as a fully convolutional network (see `fcn_conversion`)."""

from keras.src.applications import fcn_conversion
from keras.src.applications import fcn_docstrings
from keras.src.applications import fcn_weights
from keras.src.applications import xception
from keras.src.applications.fcn_conversion import (
    decode_predictions as decode_predictions,
)
from keras.src.applications.xception import preprocess_input as preprocess_input

IMAGENET_WEIGHTS = fcn_weights.keras_file(xception.WEIGHTS_PATH)

SPEC = fcn_conversion.BackboneSpec(
    name="Xception",
    keras_builder=xception.Xception,
    default_size=299,
    min_size=71,
    feature_layer="block14_sepconv2_act",
    skip_layer="block3_sepconv1_act",  # Block 2 output: stride 4, 128 ch.
    imagenet_file=IMAGENET_WEIGHTS,
)


def Xception_fcn(
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling="max",
    classes=1000,
    classifier_activation="softmax",
    dropout=0.0,
    name="xception_fcn",
):
    return fcn_conversion.build_fcn(
        SPEC,
        builder_name="Xception_fcn",
        skip=False,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout=dropout,
        name=name,
    )


def Xception_fcn_skip(
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling="max",
    classes=1000,
    classifier_activation="softmax",
    dropout=0.0,
    name="xception_fcn_skip",
):
    return fcn_conversion.build_fcn(
        SPEC,
        builder_name="Xception_fcn_skip",
        skip=True,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        dropout=dropout,
        name=name,
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


Xception_fcn.__doc__, Xception_fcn_skip.__doc__, to_fcn.__doc__ = (
    fcn_docstrings.format_docs(SPEC)
)
