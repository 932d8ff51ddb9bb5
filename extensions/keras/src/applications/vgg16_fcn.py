"""VGG16 as a fully convolutional network (see `fcn_conversion`)."""

from keras.src.applications import fcn_conversion
from keras.src.applications import fcn_docstrings
from keras.src.applications import fcn_weights
from keras.src.applications import vgg16
from keras.src.applications.fcn_conversion import (
    decode_predictions as decode_predictions,
)
from keras.src.applications.vgg16 import preprocess_input as preprocess_input

IMAGENET_WEIGHTS = fcn_weights.keras_file(vgg16.WEIGHTS_PATH)

SPEC = fcn_conversion.BackboneSpec(
    name="VGG16",
    keras_builder=vgg16.VGG16,
    default_size=224,
    min_size=32,
    feature_layer="block5_pool",
    skip_layer="block2_pool",  # Stride 4, 128 channels.
    flatten_size=7,
    hidden_dense=(("fc1", 4096), ("fc2", 4096)),
    imagenet_file=IMAGENET_WEIGHTS,
)


def VGG16_fcn(
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling="max",
    classes=1000,
    classifier_activation="softmax",
    dropout=0.0,
    name="vgg16_fcn",
):
    return fcn_conversion.build_fcn(
        SPEC,
        builder_name="VGG16_fcn",
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


def VGG16_fcn_skip(
    weights="imagenet",
    input_tensor=None,
    input_shape=None,
    pooling="max",
    classes=1000,
    classifier_activation="softmax",
    dropout=0.0,
    name="vgg16_fcn_skip",
):
    return fcn_conversion.build_fcn(
        SPEC,
        builder_name="VGG16_fcn_skip",
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


VGG16_fcn.__doc__, VGG16_fcn_skip.__doc__, to_fcn.__doc__ = (
    fcn_docstrings.format_docs(SPEC)
)
