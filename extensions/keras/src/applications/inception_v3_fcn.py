"""InceptionV3 as a fully convolutional network (see `fcn_conversion`)."""

from keras.src.applications import fcn_conversion
from keras.src.applications import fcn_docstrings
from keras.src.applications import fcn_weights
from keras.src.applications import inception_v3
from keras.src.applications.fcn_conversion import (
    decode_predictions as decode_predictions,
)
from keras.src.applications.inception_v3 import preprocess_input as preprocess_input

IMAGENET_WEIGHTS = fcn_weights.keras_file(inception_v3.WEIGHTS_PATH)

SPEC = fcn_conversion.BackboneSpec(
    name="InceptionV3",
    keras_builder=inception_v3.InceptionV3,
    default_size=299,
    min_size=75,
    feature_layer="mixed10",
    # The first Inception block, stride 8, 256 channels: the earliest named
    # stage (Keras numbers the layers before it anew in every session).
    skip_layer="mixed0",
    imagenet_file=IMAGENET_WEIGHTS,
)


def InceptionV3_fcn(
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling="max",
    classes=1000,
    classifier_activation="softmax",
    dropout=0.0,
    name="inception_v3_fcn",
):
    return fcn_conversion.build_fcn(
        SPEC,
        builder_name="InceptionV3_fcn",
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


def InceptionV3_fcn_skip(
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling="max",
    classes=1000,
    classifier_activation="softmax",
    dropout=0.0,
    name="inception_v3_fcn_skip",
):
    return fcn_conversion.build_fcn(
        SPEC,
        builder_name="InceptionV3_fcn_skip",
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


InceptionV3_fcn.__doc__, InceptionV3_fcn_skip.__doc__, to_fcn.__doc__ = (
    fcn_docstrings.format_docs(SPEC)
)
