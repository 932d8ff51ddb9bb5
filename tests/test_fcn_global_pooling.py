"""`keras.applications.fcn.to_fcn`: every global-pooling family's FCN
equals Keras' own model at its native size, on real photos.

One member per family (random weights, BatchNorm calibrated on photos so
that the photos' logits differ); ConvNeXt and InceptionResNetV2 and the
rest of each family are marked `fcn_families` (.ci/steps/25-fcn-families.sh).
"""

import gc
import types

import numpy as np
import pytest
from PIL import Image

import keras
from keras.applications import fcn

from fcn_model_helpers import GLOBAL_POOLING_FAMILIES
from fcn_model_helpers import GLOBAL_POOLING_MEMBERS
from fcn_model_helpers import assert_close
from fcn_model_helpers import calibrate_batch_norm
from fcn_model_helpers import calibrated_original
from fcn_model_helpers import max_abs_diff
from fcn_model_helpers import photo_batch
from fcn_model_helpers import run

# The tests marked `backend_suite` run under every backend in `./run.sh
# backends` (tests/backend_suite.py): equality, minimum size and refusals;
# the score maps, round trips and skip branches are TensorFlow's here.

HEAVY = ("ConvNeXtTiny", "InceptionResNetV2")
# Under JAX and PyTorch, four families stand for the rest: plain residual
# blocks, depthwise convolutions, squeeze-and-excitation, and a Normalization
# layer in the model. The others add no layer type these lack, and each
# family costs about a minute of XLA compilation.
OTHER_BACKEND_FAMILIES = ("ResNet50", "MobileNet", "MobileNetV3Small", "EfficientNetV2B0")
TEST_IMAGE = "test_image.jpg"  # 427x640.


def _families():
    names = [
        f for f in GLOBAL_POOLING_FAMILIES
        if keras.backend.backend() == "tensorflow" or f in OTHER_BACKEND_FAMILIES
    ]
    return [
        pytest.param(f, marks=pytest.mark.fcn_families) if f in HEAVY else f
        for f in names
    ]


def build_calibrated(builder, preprocess, **kwargs):
    """Keras' model with random weights, logits out, BatchNorm statistics
    of real photos; and two native-size photos with its logits."""
    original = calibrated_original(builder, preprocess, **kwargs)
    rows, cols = original.input_shape[1:3]
    images = photo_batch(preprocess, rows, cols)
    return original, images, run(original, images)


def larger_photos(case):
    """Two photos above the minimum, not square: a map of several positions."""
    rows, cols = fcn.geometry(case.score_map).min_size
    return photo_batch(case.preprocess, rows + 32, cols + 96)


def assert_photos_differ(logits):
    # Else a comparison would test little (see calibrate_batch_norm).
    scale = max(1.0, float(np.max(np.abs(logits))))
    assert max_abs_diff(logits[0], logits[1]) > 1e-3 * scale


@pytest.fixture(scope="module", params=_families())
def case(request):
    family = request.param
    if family.startswith("NASNet") and keras.backend.backend() == "torch":
        pytest.skip("Keras' own NASNet refuses the torch backend")
    builder, preprocess, kwargs = GLOBAL_POOLING_FAMILIES[family]
    original, images, logits = build_calibrated(builder, preprocess, **kwargs)
    return types.SimpleNamespace(
        family=family,
        builder=builder,
        preprocess=preprocess,
        kwargs=kwargs,
        original=original,
        images=images,
        logits=logits,
        score_map=fcn.to_fcn(original, pooling=None),
        fcn=fcn.to_fcn(original),  # pooling="max"
    )


@pytest.mark.backend_suite
def test_equals_original_at_native_size(case):
    assert_photos_differ(case.logits)
    # One window position: the score map is 1x1 and holds the logits.
    score_map = run(case.score_map, case.images)
    assert score_map.shape[1:3] == (1, 1)
    assert_close(score_map[:, 0, 0], case.logits)
    assert case.fcn.output.shape == (None, 1000)
    assert_close(run(case.fcn, case.images), case.logits)


def test_score_map_on_non_square_photo(case):
    image = np.asarray(Image.open(TEST_IMAGE).convert("RGB"), "float32")
    score_map = run(case.score_map, case.preprocess(image[None]))
    # The final map of Keras' own backbone built for 427x640, slid over
    # by the native map's window. The FCN pads before stride-2 convs as
    # "same" does at every size; Keras' MobileNet pads (0, 1) whatever the
    # parity (one row less on odd sides): there, "same" gives ceil(427/32).
    kwargs = {k: v for k, v in case.kwargs.items() if k != "input_shape"}
    backbone = case.builder(
        include_top=False, weights=None, input_shape=image.shape, **kwargs
    )
    final_map = backbone.output.shape[1:3]
    if case.family == "MobileNet":
        final_map = (-(-427 // 32), -(-640 // 32))
    window = fcn.geometry(case.score_map).window
    rows, cols = (
        size - w + 1 for size, w in zip(final_map, window)
    )
    assert score_map.shape == (1, rows, cols, 1000)
    assert rows > 1 and cols > 1
    assert np.all(np.isfinite(score_map))
    assert max_abs_diff(score_map[0, 0, 0], score_map[0, -1, -1]) > 0


@pytest.mark.backend_suite
def test_minimum_size(case):
    geometry = fcn.geometry(case.score_map)
    assert geometry.native_size == case.original.input_shape[1:3]
    assert geometry.stride == 32
    rows, cols = geometry.min_size
    assert rows <= geometry.native_size[0]
    images = photo_batch(case.preprocess, rows, cols, count=1)
    assert run(case.score_map, images).shape == (1, 1, 1, 1000)
    small = photo_batch(case.preprocess, rows - 1, cols, count=1)
    with pytest.raises(ValueError, match=f"at least {rows}x{cols} pixels"):
        case.score_map(small)


# The round trip and the skip variant, in the quick suite for three
# families (plain, adapted Normalization, run-time paddings and ops);
# the others' are `fcn_families` (NASNet's 771 layers reload in a minute).
QUICK_EXTRAS = ("ResNet50", "EfficientNetB0", "MobileNetV3Small")


def _extras():
    return [
        f if f in QUICK_EXTRAS
        else pytest.param(f, marks=pytest.mark.fcn_families)
        for f in GLOBAL_POOLING_FAMILIES
    ]


@pytest.fixture(scope="module", params=_extras())
def extra_case(request):
    family = request.param
    builder, preprocess, kwargs = GLOBAL_POOLING_FAMILIES[family]
    original, _, _ = build_calibrated(builder, preprocess, **kwargs)
    return types.SimpleNamespace(
        family=family,
        preprocess=preprocess,
        original=original,
        score_map=fcn.to_fcn(original, pooling=None),
        fcn=fcn.to_fcn(original),
    )


def test_keras_round_trip(extra_case, tmp_path):
    case = extra_case
    path = str(tmp_path / "fcn.keras")
    case.fcn.save(path)
    loaded = keras.models.load_model(path)
    images = larger_photos(case)
    assert_close(run(loaded, images), run(case.fcn, images))
    assert fcn.geometry(loaded) == fcn.geometry(case.fcn)


def test_skip_variant_starts_as_plain_fcn(extra_case):
    case = extra_case
    if case.family == "NASNetMobile":  # Its cells read two earlier cells.
        with pytest.raises(ValueError, match="no layer at stride 4"):
            fcn.to_fcn(case.original, skip=True)
        return
    skip = fcn.to_fcn(case.original, skip=True)
    assert "skip_add" in {layer.name for layer in skip.layers}
    images = larger_photos(case)
    assert_close(run(skip, images), run(case.fcn, images))


@pytest.mark.backend_suite
def test_avg_pooling_and_activation():
    builder, preprocess, kwargs = GLOBAL_POOLING_FAMILIES["MobileNet"]
    original, images, logits = build_calibrated(builder, preprocess, **kwargs)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    avg = fcn.to_fcn(original, pooling="avg", classifier_activation="softmax")
    assert_close(run(avg, images), probabilities)
    # Keras' own softmax (a trailing Activation layer) is the FCN's.
    with_softmax = builder(weights=None, **kwargs)
    with_softmax.set_weights(original.get_weights())
    assert_close(
        run(fcn.to_fcn(with_softmax, pooling="avg"), images),
        run(with_softmax, images),
    )
    # On a larger image: the mean of the score map's logits, activated.
    images = photo_batch(preprocess, 288, 320)
    score_map = run(fcn.to_fcn(original, pooling=None), images)
    assert score_map.shape[1:3] == (3, 4)
    expected = keras.ops.softmax(score_map.mean(axis=(1, 2)))
    assert_close(run(avg, images), keras.ops.convert_to_numpy(expected))


def test_finetuned_resnet50():
    """A ResNet50 finetuned the usual way (include_top=False, pooling="avg",
    a new head) converts, after a training step, with its own activation."""
    preprocess = keras.applications.resnet50.preprocess_input
    base = keras.applications.ResNet50(
        include_top=False, weights=None, pooling="avg",
        input_shape=(224, 224, 3),
    )
    calibrate_batch_norm(base, photo_batch(preprocess, 224, 224, 4))
    x = keras.layers.Dropout(0.2, name="head_dropout")(base.output)
    x = keras.layers.Dense(
        3,
        activation="softmax",
        kernel_initializer=keras.initializers.RandomNormal(0.0, 1e-4, seed=0),
        name="scores",
    )(x)
    model = keras.Model(base.input, x)
    model.compile(optimizer=keras.optimizers.SGD(1e-4),
                  loss="sparse_categorical_crossentropy")
    images = photo_batch(preprocess, 224, 224, 4)
    model.train_on_batch(images, np.array([0, 1, 2, 0]))
    expected = run(model, images)
    assert_photos_differ(expected)
    fcn_model = fcn.to_fcn(model)
    assert fcn_model.get_layer("predictions").units == 3
    assert "score_activation" in {layer.name for layer in fcn_model.layers}
    assert_close(run(fcn_model, images), expected)
    # The weights are copied: training the FCN leaves the model as it was.
    fcn_model.get_layer("predictions").kernel.assign(
        np.zeros((2048, 3), "float32")
    )
    assert_close(run(model, images), expected)


def test_model_of_any_size_needs_input_size():
    model = keras.applications.MobileNetV3Small(
        weights=None, minimalistic=True, classifier_activation=None
    )
    with pytest.raises(ValueError, match="pass the size it was trained at"):
        fcn.to_fcn(model)
    converted = fcn.to_fcn(model, input_size=224, pooling=None)
    images = photo_batch(keras.applications.mobilenet_v3.preprocess_input,
                         224, 224)
    assert_close(run(converted, images)[:, 0, 0], run(model, images))
    with pytest.raises(ValueError, match=r"Received: input_size=\(150, 150\)"):
        fcn.to_fcn(
            keras.applications.MobileNet(weights=None, alpha=0.25),
            input_size=150,
        )


def _vit_like():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(16, 8, strides=8)(inputs)
    x = keras.layers.Reshape((16, 16))(x)
    x = keras.layers.MultiHeadAttention(2, 8)(x, x)
    x = keras.layers.GlobalAveragePooling1D(name="token_pool")(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x), name="vit")


def _nested():
    base = keras.applications.MobileNet(
        weights=None, alpha=0.25, include_top=False, pooling="avg",
        input_shape=(128, 128, 3),
    )
    inputs = keras.Input((128, 128, 3))
    outputs = keras.layers.Dense(2)(base(inputs))
    return keras.Model(inputs, outputs, name="nested")


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: keras.applications.VGG16(
                weights=None, input_shape=(64, 64, 3), classes=10
            ),
            "layer 'flatten' .* not a pooled 1x1 map",
        ),
        (_vit_like, "layer 'token_pool' .* not a per-position layer"),
        (
            lambda: keras.applications.MobileNet(
                weights=None, alpha=0.25, include_top=False, pooling="avg"
            ),
            "no Dense or 1x1 Conv2D",
        ),
        (_nested, "layer 'mobilenet_0.25_128' is a nested model"),
    ],
    ids=["vgg16", "vit", "no_head", "nested"],
)
def test_refused_in_one_line(make, message):
    with pytest.raises(ValueError, match=message) as error:
        fcn.to_fcn(make())
    assert "\n" not in str(error.value)
    assert "Received: model=" in str(error.value)


@pytest.mark.backend_suite
def test_flatten_of_a_map_is_refused():
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(8, 3, strides=16)(inputs)
    x = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = keras.layers.Conv2DTranspose(4, 2, strides=2, name="upsample")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    with pytest.raises(ValueError, match="layer 'flatten' .* reshapes"):
        fcn.to_fcn(model)


@pytest.mark.backend_suite
def test_bad_arguments():
    model = keras.applications.MobileNet(weights=None, alpha=0.25)
    with pytest.raises(ValueError, match="Received: pooling=mean"):
        fcn.to_fcn(model, pooling="mean")
    with pytest.raises(ValueError, match="Received: dropout=1"):
        fcn.to_fcn(model, dropout=1)


@pytest.mark.fcn_families
@pytest.mark.parametrize("member", list(GLOBAL_POOLING_MEMBERS))
def test_family_member_equals_original(member):
    builder, preprocess = GLOBAL_POOLING_MEMBERS[member]
    # MobileNetV3 takes any size unless told its ImageNet one.
    kwargs = {"input_shape": (224, 224, 3)} if "V3" in member else {}
    original, images, logits = build_calibrated(builder, preprocess, **kwargs)
    assert_photos_differ(logits)
    assert_close(run(fcn.to_fcn(original), images), logits)
    # The members are large: one at a time in memory, not a worker's sum.
    del original
    keras.backend.clear_session()
    gc.collect()
