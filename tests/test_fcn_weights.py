"""Cached ImageNet weights, weights files, `to_fcn` input checks.

(The download path: test_fcn_weights_download.py.)

MobileNetV2 (alpha 0.35) stands for the five families here: the weight
loading is shared code, and its ImageNet file is small. Nothing touches the
network: `no_network` makes any connection attempt fail the test.
"""

import hashlib
import json
import socket
import warnings

import numpy as np
import pytest

import keras
from keras.src.applications import fcn_weights
from keras.src.applications import imagenet_utils
from keras.src.applications import mobilenet_v2_fcn

from fcn_model_helpers import FAMILIES
from fcn_model_helpers import assert_close
from fcn_model_helpers import build_original
from fcn_model_helpers import photos
from fcn_model_helpers import run
from fcn_model_helpers import save_legacy_h5

MOBILENET_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224.h5"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def original():
    return build_original("MobileNetV2")


def features_of(model, images):
    features = keras.Model(model.inputs, model.get_layer("out_relu").output)
    return run(features, images)


def test_cached_imagenet_weights_are_used(original, keras_home, no_network):
    # Keras publishes no hash for MobileNetV2's files, so a file made from a
    # random model under the exact name stands for the real one.
    (keras_home / "models").mkdir()
    save_legacy_h5(original, keras_home / "models" / MOBILENET_FILE)
    images = photos("MobileNetV2", 224, 224)

    fcn = keras.applications.MobileNetV2_fcn(
        weights="imagenet",
        alpha=0.35,
        pooling="avg",
        classifier_activation=None,
    )
    assert_close(run(fcn, images), run(original, images))

    # classes != 1000: everything but the new `predictions` is ImageNet's.
    fcn = keras.applications.MobileNetV2_fcn(
        weights="imagenet", alpha=0.35, classes=5
    )
    assert fcn.output.shape == (None, 5)
    assert fcn.get_layer("predictions").kernel.shape == (1, 1, 1280, 5)
    assert_close(features_of(fcn, images), features_of(original, images))


def test_imagenet_layout_file_loads_for_other_classes(original, tmp_path):
    path = tmp_path / "imagenet_layout.weights.h5"
    original.save_weights(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fcn = mobilenet_v2_fcn.MobileNetV2_fcn_skip(
            weights=path, alpha=0.35, classes=7
        )
    # Keras warns about the 7-class layout it tries first and refuses.
    assert not [w for w in caught if "nested container" in str(w.message)]
    images = photos("MobileNetV2", 224, 224)
    assert run(fcn, images).shape == (2, 7)
    assert_close(features_of(fcn, images), features_of(original, images))


def test_weights_file_of_another_layout_is_refused(original, tmp_path):
    path = tmp_path / "alpha_0.35.h5"
    save_legacy_h5(original, path)
    with pytest.raises(ValueError, match="is not laid out like"):
        mobilenet_v2_fcn.MobileNetV2_fcn(weights=str(path), alpha=0.5)


def test_cached_class_index_is_used(keras_home, no_network, monkeypatch):
    # Ours is not Keras' file: its hash stands in for the published one.
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX", None)
    (keras_home / "models").mkdir()
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    path = keras_home / "models" / "imagenet_class_index.json"
    path.write_text(json.dumps(index))
    monkeypatch.setitem(
        fcn_weights.KNOWN_HASHES,
        path.name,
        hashlib.md5(path.read_bytes()).hexdigest(),
    )
    predictions = np.zeros((1, 1000), "float32")
    predictions[0, 7] = 0.9
    predictions[0, 3] = 0.1
    decoded = keras.applications.vgg16_fcn.decode_predictions(
        predictions, top=2
    )
    assert [(name, label) for name, label, _ in decoded[0]] == [
        ("n00000007", "class_7"),
        ("n00000003", "class_3"),
    ]


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"weights": "no/such/file.h5"}, "weights=no/such/file.h5"),
        ({"pooling": "sum"}, "pooling=sum"),
        ({"classes": 0}, "classes=0"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"input_shape": (None, None)}, r"input_shape=\(None, None\)"),
        (
            {"input_shape": (64, 64, 1), "weights": "imagenet"},
            "3 input channels",
        ),
        ({"alpha": 0.6, "weights": "imagenet"}, "alpha=0.6"),
    ],
)
def test_bad_arguments(arguments, message, keras_home):
    arguments = {"weights": None, "alpha": 0.35, **arguments}
    with pytest.raises(ValueError, match=message):
        mobilenet_v2_fcn.MobileNetV2_fcn(**arguments)


def test_to_fcn_refuses_other_families(original):
    from keras.src.applications import inception_v3_fcn
    from keras.src.applications import vgg16_fcn

    for module, layer in [
        (vgg16_fcn, "block5_pool"),
        (inception_v3_fcn, "mixed10"),
    ]:
        with pytest.raises(ValueError, match=f"no layer named '{layer}'"):
            module.to_fcn(original)


def test_to_fcn_refuses_a_changed_top(original):
    features = original.get_layer("out_relu").output
    x = keras.layers.GlobalAveragePooling2D()(features)
    x = keras.layers.Dense(16, name="extra")(x)
    x = keras.layers.Dense(4, name="predictions")(x)
    changed = keras.Model(original.inputs, x)
    with pytest.raises(ValueError, match=r"no place for: \['extra'\]"):
        mobilenet_v2_fcn.to_fcn(changed)


def test_to_fcn_with_dropout_before_predictions(original):
    # The experiments' finetuned original: a new head behind a Dropout.
    x = original.get_layer("out_relu").output
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    x = keras.layers.Dense(4, activation="softmax", name="predictions")(x)
    finetuned = keras.Model(original.inputs, x)
    images = photos("MobileNetV2", 224, 224)

    fcn = mobilenet_v2_fcn.to_fcn(finetuned, dropout=0.3)
    assert fcn.get_layer("top_dropout").rate == 0.3
    assert_close(run(fcn, images), run(finetuned, images))
    assert fcn.name == f"{finetuned.name}_fcn"
    fcn = mobilenet_v2_fcn.to_fcn(finetuned, pooling="max", skip=True)
    assert fcn.name == f"{finetuned.name}_fcn_skip"
    assert fcn.output.shape == (None, 4)
    assert run(fcn, images).shape == (2, 4)


def test_input_tensor():
    inputs = keras.Input((None, None, 3))
    fcn = mobilenet_v2_fcn.MobileNetV2_fcn(
        weights=None, alpha=0.35, classes=3, input_tensor=inputs, pooling=None
    )
    assert fcn.inputs[0] is inputs
    assert fcn.name == "mobilenetv2_0.35_fcn"
    assert fcn.predict_on_batch(np.zeros((1, 96, 128, 3), "float32")).shape == (
        1,
        3,
        4,
        3,
    )


def test_saved_fcn_reloads(tmp_path):
    fcn = mobilenet_v2_fcn.MobileNetV2_fcn_skip(
        weights=None, alpha=0.35, classes=3
    )
    project = fcn.get_layer("skip_project")
    project.kernel.assign(np.full(project.kernel.shape, 0.01, "float32"))
    fcn.save(tmp_path / "fcn.keras")
    reloaded = keras.models.load_model(tmp_path / "fcn.keras")
    images = photos("MobileNetV2", 100, 140)
    assert_close(run(reloaded, images), run(fcn, images), 0)


def test_public_names():
    import tensorflow as tf

    for family, (_, module, _) in FAMILIES.items():
        public = getattr(keras.applications, module.__name__.rsplit(".", 1)[1])
        for name in (f"{family}_fcn", f"{family}_fcn_skip"):
            assert getattr(keras.applications, name) is getattr(module, name)
            assert getattr(public, name) is getattr(module, name)
        for name in ("to_fcn", "preprocess_input", "decode_predictions"):
            assert getattr(public, name) is getattr(module, name)
    assert (
        tf.keras.applications.vgg16_fcn.VGG16_fcn
        is keras.applications.VGG16_fcn
    )
    assert keras.visualization.overlay_score_map.__module__.endswith(
        "fcn_score_map"
    )
