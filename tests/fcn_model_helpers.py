"""Shared by the FCN model tests: the five families, photos, random weights."""

import json
import os

import h5py
import numpy as np
import skimage.data
from PIL import Image

import keras
from keras.applications import fcn
from keras.src.applications import inception_v3_fcn
from keras.src.applications import mobilenet_v2_fcn
from keras.src.applications import vgg16_fcn
from keras.src.applications import vgg19_fcn
from keras.src.applications import xception_fcn
from keras.src.legacy.saving import legacy_h5_format

# name: (Keras' builder, FCN module, builder kwargs). The modules are the
# installed sources (their SPEC is not public; test_fcn_public_api checks
# the public names). MobileNetV2 is small with alpha=0.35; the other
# families have no size knob.
FAMILIES = {
    "VGG16": (keras.applications.VGG16, vgg16_fcn, {}),
    "VGG19": (keras.applications.VGG19, vgg19_fcn, {}),
    "InceptionV3": (keras.applications.InceptionV3, inception_v3_fcn, {}),
    "Xception": (keras.applications.Xception, xception_fcn, {}),
    "MobileNetV2": (
        keras.applications.MobileNetV2,
        mobilenet_v2_fcn,
        {"alpha": 0.35},
    ),
}
GAP_FAMILIES = ["InceptionV3", "Xception", "MobileNetV2"]
# `run_eagerly` for a test's single training step: tracing costs more than
# one step, except under JAX, whose eager gradient compiles each operation
# on its own (MobileNetV2's step: 34 s eagerly, 9 s jitted).
ONE_STEP_EAGERLY = keras.backend.backend() != "jax"
PHOTOS = ("coffee", "chelsea", "astronaut", "rocket")


# Global-pooling families (`keras.applications.fcn.to_fcn`): name ->
# (Keras' builder, its preprocess_input, builder kwargs). One member per
# family; the rest of each family is `GLOBAL_POOLING_MEMBERS`.
_apps = keras.applications
GLOBAL_POOLING_FAMILIES = {
    "ResNet50": (_apps.ResNet50, _apps.resnet50.preprocess_input, {}),
    "ResNet50V2": (_apps.ResNet50V2, _apps.resnet_v2.preprocess_input, {}),
    "DenseNet121": (_apps.DenseNet121, _apps.densenet.preprocess_input, {}),
    "EfficientNetB0": (
        _apps.EfficientNetB0, _apps.efficientnet.preprocess_input, {}
    ),
    "EfficientNetV2B0": (
        _apps.EfficientNetV2B0, _apps.efficientnet_v2.preprocess_input, {}
    ),
    "MobileNet": (
        _apps.MobileNet, _apps.mobilenet.preprocess_input, {"alpha": 0.25}
    ),
    "MobileNetV3Small": (
        _apps.MobileNetV3Small, _apps.mobilenet_v3.preprocess_input,
        {"input_shape": (224, 224, 3)},
    ),
    "NASNetMobile": (_apps.NASNetMobile, _apps.nasnet.preprocess_input, {}),
    "ConvNeXtTiny": (_apps.ConvNeXtTiny, _apps.convnext.preprocess_input, {}),
    "InceptionResNetV2": (
        _apps.InceptionResNetV2,
        _apps.inception_resnet_v2.preprocess_input,
        {},
    ),
}
# The rest of each family (`fcn.FAMILIES`): name -> (builder,
# preprocess_input).
_PREPROCESS = {
    "ResNet": _apps.resnet,
    "ResNetV2": _apps.resnet_v2,
    "DenseNet": _apps.densenet,
    "EfficientNet": _apps.efficientnet,
    "EfficientNetV2": _apps.efficientnet_v2,
    "ConvNeXt": _apps.convnext,
    "MobileNet": _apps.mobilenet,
    "MobileNetV3": _apps.mobilenet_v3,
    "NASNet": _apps.nasnet,
    "InceptionResNetV2": _apps.inception_resnet_v2,
}
GLOBAL_POOLING_MEMBERS = {
    name: (getattr(_apps, name), _PREPROCESS[family].preprocess_input)
    for family, names in fcn.FAMILIES.items()
    for name in names
    if name not in GLOBAL_POOLING_FAMILIES
}


def photo_batch(preprocess_input, rows, cols, count=2):
    """Real photos resized to rows x cols, through `preprocess_input`."""
    images = [
        np.asarray(
            Image.fromarray(getattr(skimage.data, name)())
            .convert("RGB")
            .resize((cols, rows))
        )
        for name in PHOTOS[:count]
    ]
    return preprocess_input(np.stack(images).astype("float32"))


def native_size(family):
    return FAMILIES[family][1].SPEC.default_size


def photos(family, rows, cols, count=2):
    """Real photos resized to rows x cols, preprocessed for `family`."""
    return photo_batch(FAMILIES[family][1].preprocess_input, rows, cols, count)


def randomize_batch_norm(model, seed=0):
    """Gives every BatchNormalization non-trivial statistics and scales."""
    rng = np.random.default_rng(seed)
    values = {  # InceptionV3's BatchNormalization has no gamma (scale=False).
        "gamma": lambda shape: rng.uniform(0.5, 1.5, shape),
        "beta": lambda shape: rng.normal(0.0, 0.2, shape),
        "moving_mean": lambda shape: rng.normal(0.0, 0.2, shape),
        "moving_variance": lambda shape: rng.uniform(0.5, 1.5, shape),
    }
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            for variable in layer.weights:
                variable.assign(
                    values[variable.name](variable.shape).astype("float32")
                )


def calibrate_batch_norm(model, images, seed=0):
    """Random BatchNorm scales and offsets, with moving statistics that
    normalise `images`' activations: one training-mode pass at momentum 0.

    `randomize_batch_norm`'s statistics ignore the activations: through
    MobileNetV2's BatchNorms the input's signal fades under the offsets,
    and its output is the same for every image (to 1e-7, at 64 and at 224
    px). Calibrated, every layer sees activations of unit variance, and the
    outputs differ from image to image.
    """
    rng = np.random.default_rng(seed)
    norms = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    momentums = [layer.momentum for layer in norms]
    for layer in norms:
        if layer.gamma is not None:
            layer.gamma.assign(
                rng.uniform(0.5, 1.5, layer.gamma.shape).astype("float32")
            )
        if layer.beta is not None:
            layer.beta.assign(
                rng.normal(0.0, 0.2, layer.beta.shape).astype("float32")
            )
        layer.momentum = 0.0
    call_once(model, images, training=True)
    for layer, momentum in zip(norms, momentums):
        layer.momentum = momentum


def calibrated_original(builder, preprocess_input, **kwargs):
    """Keras' model from `builder` with random weights, logits out, and
    BatchNorm statistics of four real photos at its native size."""
    original = builder(weights=None, classifier_activation=None, **kwargs)
    rows, cols = original.input_shape[1:3]
    calibrate_batch_norm(original, photo_batch(preprocess_input, rows, cols, 4))
    return original

def build_original(family, classes=1000, **kwargs):
    """Keras' own model with random weights and logits output."""
    builder, _, family_kwargs = FAMILIES[family]
    model = builder(
        weights=None,
        classes=classes,
        classifier_activation=None,
        **family_kwargs,
        **kwargs,
    )
    # Statistics from real photos: with random ones MobileNetV2 gives every
    # image the same output (to 1e-7), and a comparison would test little.
    rows, cols = model.input_shape[1:3]
    rows, cols = rows or native_size(family), cols or native_size(family)
    calibrate_batch_norm(model, photos(family, rows, cols, count=4))
    return model


def save_legacy_h5(model, path):
    """Writes `model`'s weights as Keras' ImageNet files are: legacy HDF5."""
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


def max_abs_diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def assert_close(actual, expected, tolerance=1e-5):
    """Max abs diff <= tolerance, relative to the scale when above 1.

    With `FCN_DIFFS_FILE` set (the backend suite sets it), each comparison
    is also logged there as a JSON line: test, scaled diff, tolerance.
    """
    expected = np.asarray(expected)
    scale = max(1.0, float(np.max(np.abs(expected))))
    assert np.asarray(actual).shape == expected.shape
    diff = max_abs_diff(actual, expected)
    if os.environ.get("FCN_DIFFS_FILE"):
        with open(os.environ["FCN_DIFFS_FILE"], "a") as f:
            test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
            f.write(
                json.dumps(
                    {"test": test, "diff": diff / scale, "tolerance": tolerance}
                )
                + "\n"
            )
    assert diff <= tolerance * scale


def call_once(model, images, training=False):
    """`model(images)` once, as a NumPy array; in training mode BatchNorm's
    moving statistics update as in an eager call.

    Eagerly: under TensorFlow and PyTorch one call is cheaper than tracing.
    Under JAX as one jitted stateless call, because eagerly JAX compiles
    every operation on its own: 3-4x slower for MobileNetV2 or InceptionV3
    (10.4 s against 2.4 s for one training-mode call on a 2-core Xeon).
    """
    if keras.backend.backend() != "jax" or not model.built:
        # An unbuilt model (a MultiCrop wrapper) builds in its first call.
        return keras.ops.convert_to_numpy(model(images, training=training))
    import jax

    @jax.jit
    def call(trainable, non_trainable, images):
        return model.stateless_call(
            trainable, non_trainable, images, training=training
        )

    outputs, non_trainable = call(
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        images,
    )
    for variable, value in zip(model.non_trainable_variables, non_trainable):
        variable.assign(value)
    return keras.ops.convert_to_numpy(outputs)


def run(model, images):
    """One evaluation in inference mode (see `call_once`)."""
    return call_once(model, images)
