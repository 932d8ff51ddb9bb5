"""`weights="imagenet"` and `decode_predictions` fetch Keras' files the Keras
way: the cache in `$KERAS_HOME/models`, else a download (here from an HTTP
server on 127.0.0.1; `network_guard` fails a test that tries anything else).

The served weights file is made from a random-init MobileNetV2 (alpha 0.35)
in the layout of Keras' own file; the builders load it as ImageNet's.
"""

import inspect
import json
import socket

import numpy as np
import pytest

import keras
from keras.src.applications import fcn_conversion
from keras.src.applications import fcn_weights
from keras.src.applications import imagenet_utils
from keras.src.applications import mobilenet_v2_fcn

from fcn_model_helpers import FAMILIES
from fcn_model_helpers import assert_close
from fcn_model_helpers import save_legacy_h5
from weights_mirror import closed_port
from weights_mirror import keras_home  # noqa: F401 (fixture)
from weights_mirror import mirror  # noqa: F401 (fixture)
from weights_mirror import network_guard  # noqa: F401 (fixture)

KERAS_FILES = {  # The exact names Keras' own builders download.
    "VGG16": "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    "VGG19": "vgg19_weights_tf_dim_ordering_tf_kernels.h5",
    "InceptionV3": "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
    "Xception": "xception_weights_tf_dim_ordering_tf_kernels.h5",
    "MobileNetV2": (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224.h5"
    ),
}
SIZE = 96  # A size Keras has MobileNetV2 files for: the builder picks it.
MOBILENET = mobilenet_v2_fcn.imagenet_weights_file(0.35, (SIZE, SIZE, 3))


@pytest.fixture(scope="module")
def original():
    keras.utils.set_random_seed(3)
    return keras.applications.MobileNetV2(
        weights=None,
        alpha=0.35,
        input_shape=(SIZE, SIZE, 3),
        classifier_activation=None,
    )


@pytest.fixture(scope="module")
def weights_file(original, tmp_path_factory):
    """The bytes of a Keras-layout (legacy HDF5) ImageNet weights file."""
    path = tmp_path_factory.mktemp("served") / MOBILENET.file_name
    save_legacy_h5(original, path)
    return path.read_bytes()


def build(builder=mobilenet_v2_fcn.MobileNetV2_fcn):
    return builder(
        weights="imagenet",
        alpha=0.35,
        input_shape=(SIZE, SIZE, 3),
        pooling="avg",
        classifier_activation=None,
    )


def assert_names_everything(message, keras_file, folder):
    assert keras_file.file_name in message
    assert str(folder) in message
    assert keras_file.origin in message
    assert "\n" not in message


def test_file_names_and_urls_are_keras_own():
    from keras.src.applications import mobilenet_v2
    from keras.src.applications import vgg16

    assert MOBILENET.file_name == (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5"
    )
    origin = mobilenet_v2.BASE_WEIGHT_PATH + MOBILENET.file_name
    assert MOBILENET.origin == origin
    assert FAMILIES["VGG16"][1].IMAGENET_WEIGHTS.origin == vgg16.WEIGHTS_PATH
    # The hashes are Keras' own literals, as its modules pass them.
    for family, (builder, module, _) in FAMILIES.items():
        if family == "MobileNetV2":
            continue
        keras_module = inspect.getmodule(builder)
        file = module.IMAGENET_WEIGHTS
        assert f'file_hash="{file.file_hash}"' in inspect.getsource(
            keras_module
        ), family
    assert fcn_conversion.CLASS_INDEX_FILE.file_hash in inspect.getsource(
        imagenet_utils
    )


def test_first_call_downloads_and_caches_then_no_request(
    mirror, keras_home, original, weights_file
):
    mirror.serve(MOBILENET, weights_file)
    fcn = build()
    assert mirror.count(MOBILENET) == 1
    cached = keras_home / "models" / MOBILENET.file_name
    assert cached.read_bytes() == weights_file
    for model in (fcn, original):  # The loaded weights are the served ones.
        assert_close(
            model.get_layer("predictions").kernel.numpy().ravel(),
            original.get_layer("predictions").kernel.numpy().ravel(),
            0,
        )

    # A second call, and Keras' own builder, use the cache.
    fcn_weights.get_keras_file(MOBILENET, "again")
    keras_own = keras.applications.MobileNetV2(
        weights="imagenet", alpha=0.35, input_shape=(SIZE, SIZE, 3)
    )
    assert mirror.count(MOBILENET) == 1
    assert_close(
        keras_own.get_layer("Conv1").kernel.numpy(),
        original.get_layer("Conv1").kernel.numpy(),
        0,
    )


def test_download_failing_its_hash_is_not_cached(
    mirror, keras_home, weights_file
):
    mirror.serve(MOBILENET, weights_file)  # Registers the good hash...
    corrupted = bytearray(weights_file)
    corrupted[len(corrupted) // 2] ^= 0xFF
    mirror.files["/" + MOBILENET.path] = bytes(corrupted)  # ...serves junk.
    with pytest.raises(fcn_weights.WeightsUnavailableError) as error:
        build()
    message = str(error.value)
    assert "hash" in message and "removed" in message
    assert_names_everything(message, MOBILENET, keras_home / "models")
    assert not (keras_home / "models" / MOBILENET.file_name).exists()
    assert mirror.count(MOBILENET) == 1  # No retry.


def test_cached_file_failing_its_hash_is_downloaded_again(
    mirror, keras_home, weights_file
):
    # As Keras does; MobileNetV2 stands for a family with a published hash.
    mirror.serve(MOBILENET, weights_file)
    (keras_home / "models").mkdir()
    cached = keras_home / "models" / MOBILENET.file_name
    cached.write_bytes(weights_file[: len(weights_file) // 2])
    assert fcn_weights.get_keras_file(MOBILENET, "test") == str(cached)
    assert mirror.count(MOBILENET) == 1
    assert cached.read_bytes() == weights_file


def test_download_cut_short_is_not_cached(mirror, keras_home, weights_file):
    mirror.serve(MOBILENET, weights_file)
    mirror.cut_short["/" + MOBILENET.path] = len(weights_file) // 3
    with pytest.raises(fcn_weights.WeightsUnavailableError) as error:
        fcn_weights.get_keras_file(MOBILENET, "test")
    assert "retrieval incomplete" in str(error.value)
    assert not (keras_home / "models" / MOBILENET.file_name).exists()


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("suffix", ["_fcn", "_fcn_skip"])
def test_dead_server_is_one_clear_line(
    family, suffix, keras_home, network_guard, monkeypatch
):
    # Every builder: fails before building, naming Keras' own file and URL.
    monkeypatch.setattr(
        fcn_weights, "BASE_URL", f"http://127.0.0.1:{closed_port()}/"
    )
    module = FAMILIES[family][1]
    builder = getattr(module, f"{module.SPEC.name}{suffix}")
    with pytest.raises(fcn_weights.WeightsUnavailableError) as error:
        builder(weights="imagenet", **FAMILIES[family][2])
    message = str(error.value)
    file = (
        module.imagenet_weights_file(0.35)
        if family == "MobileNetV2"
        else module.IMAGENET_WEIGHTS
    )
    assert file.file_name == KERAS_FILES[family]
    assert_names_everything(message, file, keras_home / "models")
    assert f"{module.SPEC.name}{suffix}(weights='imagenet')" in message
    assert "Connection refused" in message
    assert "weights=<path" in message
    assert not (keras_home / "models" / file.file_name).exists()


def test_server_that_never_answers_times_out(
    keras_home, network_guard, monkeypatch
):
    # Accepts connections (the kernel's backlog) and never replies.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        monkeypatch.setattr(fcn_weights, "BASE_URL", url)
        monkeypatch.setattr(fcn_weights, "TIMEOUT", 0.5)
        with pytest.raises(fcn_weights.WeightsUnavailableError) as error:
            build()
    assert "did not answer within 0.5 s" in str(error.value)
    assert socket.getdefaulttimeout() is None  # Restored.
    assert not (keras_home / "models" / MOBILENET.file_name).exists()


def test_offline_missing_or_broken_file_touches_no_network(
    keras_home, network_guard
):
    what = "test(weights='imagenet')"
    with pytest.raises(fcn_weights.WeightsUnavailableError) as error:
        fcn_weights.get_keras_file(MOBILENET, what, offline=True)
    message = str(error.value)
    assert "offline" in message and "not in" in message
    assert_names_everything(message, MOBILENET, keras_home / "models")

    vgg16 = FAMILIES["VGG16"][1].IMAGENET_WEIGHTS
    (keras_home / "models").mkdir()
    (keras_home / "models" / vgg16.file_name).write_bytes(b"truncated")
    with pytest.raises(fcn_weights.WeightsUnavailableError) as error:
        fcn_weights.get_keras_file(vgg16, what, offline=True)
    message = str(error.value)
    assert "broken download" in message and "Delete it" in message
    assert_names_everything(message, vgg16, keras_home / "models")
    assert (keras_home / "models" / vgg16.file_name).exists()  # Yours.


def test_decode_predictions_downloads_the_class_index_once(
    mirror, keras_home, monkeypatch
):
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    content = json.dumps(index).encode()
    mirror.serve(fcn_conversion.CLASS_INDEX_FILE, content, "md5")
    predictions = np.zeros((1, 1000), "float32")
    predictions[0, [7, 3]] = [0.9, 0.1]
    for _ in range(2):
        monkeypatch.setattr(imagenet_utils, "CLASS_INDEX", None)
        decoded = keras.applications.vgg16_fcn.decode_predictions(
            predictions, top=2
        )
        assert [(name, label) for name, label, _ in decoded[0]] == [
            ("n00000007", "class_7"),
            ("n00000003", "class_3"),
        ]
    assert mirror.count(fcn_conversion.CLASS_INDEX_FILE) == 1
    cached = keras_home / "models" / "imagenet_class_index.json"
    assert cached.read_bytes() == content


def test_decode_predictions_offline_is_one_clear_line(
    keras_home, network_guard, monkeypatch
):
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX", None)
    monkeypatch.setattr(
        fcn_weights, "BASE_URL", f"http://127.0.0.1:{closed_port()}/"
    )
    with pytest.raises(fcn_weights.WeightsUnavailableError) as error:
        mobilenet_v2_fcn.decode_predictions(np.zeros((1, 1000)))
    message = str(error.value)
    assert_names_everything(
        message, fcn_conversion.CLASS_INDEX_FILE, keras_home / "models"
    )
    assert message.startswith("decode_predictions needs")
