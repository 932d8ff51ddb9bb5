"""FCN twins equal Keras' own models; any size; skip variants.

Random weights (BatchNorm with non-trivial statistics), real photos, no
network. Each family's original is built once per module (`case`), and
VGG-sized models only as often as the equivalence proof needs.
"""

import types

import numpy as np
import pytest

import keras

from fcn_model_helpers import FAMILIES
from fcn_model_helpers import GAP_FAMILIES
from fcn_model_helpers import ONE_STEP_EAGERLY
from fcn_model_helpers import assert_close
from fcn_model_helpers import build_original
from fcn_model_helpers import max_abs_diff
from fcn_model_helpers import native_size
from fcn_model_helpers import photos
from fcn_model_helpers import run
from fcn_model_helpers import save_legacy_h5

# Runs under every backend in `./run.sh backends` (tests/backend_suite.py).
pytestmark = pytest.mark.backend_suite

SKIP_LAYERS = ("skip_reduce", "skip_pool", "skip_project", "skip_add")


@pytest.fixture(scope="module", params=list(FAMILIES))
def case(request):
    """One family: its original, its logit score map FCN, native photos."""
    family = request.param
    original = build_original(family)
    module = FAMILIES[family][1]
    size = native_size(family)
    images = photos(family, size, size)
    return types.SimpleNamespace(
        family=family,
        module=module,
        spec=module.SPEC,
        original=original,
        images=images,
        logits=run(original, images),
        score_map=module.to_fcn(original, pooling=None),
    )


def builder(case, skip=False):
    return getattr(
        case.module, f"{case.spec.name}_fcn{'_skip' if skip else ''}"
    )


def family_kwargs(case):
    return FAMILIES[case.family][2]


def test_to_fcn_matches_original(case):
    fcn = case.module.to_fcn(case.original)  # pooling="avg"
    assert fcn.output.shape == (None, 1000)
    # The photos give different logits, so the comparison can fail.
    assert max_abs_diff(case.logits[0], case.logits[1]) > 1e-3 * max(
        1.0, float(np.max(np.abs(case.logits)))
    )
    assert_close(run(fcn, case.images), case.logits)
    if case.family in GAP_FAMILIES:
        # Global average pooling models: equal at any size, e.g. non-square
        # and odd (MobileNetV2's stride-2 padding depends on the parity).
        rows, cols = 193, 251
        original = build_original(case.family, input_shape=(rows, cols, 3))
        original.set_weights(case.original.get_weights())
        images = photos(case.family, rows, cols)
        assert_close(run(fcn, images), run(original, images))


def test_score_map_matches_original_at_native_size(case):
    # The per-position 1x1 convs (and VGG's 7x7 fc1) carry the weights:
    # their logits averaged over the positions are the original's logits.
    score_map = run(case.score_map, case.images)
    if case.spec.flatten_size:
        assert score_map.shape[1:3] == (1, 1)
    assert_close(score_map.mean(axis=(1, 2)), case.logits)


@pytest.mark.parametrize(
    "suffix, skip", [(".h5", False), (".weights.h5", True)]
)
def test_weights_path_matches_original(case, tmp_path, suffix, skip):
    # Legacy HDF5 as Keras' ImageNet files, and Keras 3's own format; the
    # second one through the skip builder, which starts equal to the plain.
    path = str(tmp_path / f"original{suffix}")
    if suffix == ".h5":
        save_legacy_h5(case.original, path)
    else:
        case.original.save_weights(path)
    fcn = builder(case, skip)(
        weights=path,
        pooling="avg",
        classifier_activation=None,
        **family_kwargs(case),
    )
    assert_close(run(fcn, case.images), case.logits)

    if case.family == "VGG16" and suffix == ".weights.h5":
        # The ImageNet layout (1000 classes) for 7 classes: all but the new
        # `predictions` loaded, VGG's fc1 and fc2 included.
        del fcn
        fcn = builder(case)(weights=path, classes=7, pooling=None)
        assert fcn.output.shape == (None, None, None, 7)
        fc2 = keras.Model(fcn.inputs, fcn.get_layer("fc2").output)
        original_fc2 = keras.Model(
            case.original.inputs, case.original.get_layer("fc2").output
        )
        assert_close(
            run(fc2, case.images)[:, 0, 0], run(original_fc2, case.images)
        )


def test_score_map_shape_at_any_size(case):
    rows, cols = 448, 320
    score_map = run(case.score_map, photos(case.family, rows, cols, 1))
    if case.spec.flatten_size:
        # One score per 224x224 window at stride 32.
        expected = (1, rows // 32 - 6, cols // 32 - 6, 1000)
    else:
        # One score per position of Keras' own feature map.
        features = FAMILIES[case.family][0](
            include_top=False,
            weights=None,
            input_shape=(rows, cols, 3),
            **family_kwargs(case),
        )
        expected = (1, *features.output.shape[1:3], 1000)
    assert score_map.shape == expected


def test_minimum_size(case):
    minimum = case.spec.min_size
    with pytest.raises(ValueError, match=f"at least {minimum}x{minimum}"):
        builder(case)(weights=None, input_shape=(minimum - 1, 300, 3))
    sizes = (minimum, 100, 223) if case.spec.flatten_size else (minimum,)
    for size in sizes:
        score_map = run(case.score_map, photos(case.family, size, size, 1))
        assert score_map.shape[0] == 1 and score_map.shape[-1] == 1000
        assert np.all(np.isfinite(score_map))
        if case.spec.flatten_size:
            # Below 224 the final map, smaller than fc1's 7x7, is padded to
            # 7x7: one position.
            assert score_map.shape == (1, 1, 1, 1000)


def test_max_head(case):
    """pooling="max": the activation per position, then the maximum."""
    images = photos(case.family, 256, 320)
    logits = run(case.score_map, images)
    assert logits.shape[1] * logits.shape[2] > 1
    fcn = case.module.to_fcn(
        case.original, pooling="max", classifier_activation="softmax"
    )
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(logits)).max(
        axis=(1, 2)
    )
    assert_close(run(fcn, images), expected)


def test_skip_variant_starts_equal_to_plain_fcn_and_learns(case):
    """Builds and runs at 1x and 1.5x (and the minimum), any backbone."""
    skip_fcn = case.module.to_fcn(case.original, pooling=None, skip=True)
    assert set(SKIP_LAYERS) <= {layer.name for layer in skip_fcn.layers}
    native = native_size(case.family)
    sizes = [(native, native), (native * 3 // 2, native * 3 // 2 + 32)]
    batches = [photos(case.family, rows, cols, 1) for rows, cols in sizes]
    plain = [run(case.score_map, images) for images in batches]
    for images, expected in zip(batches, plain):
        # Equal up to float rounding: the Add changes how TF fuses ops.
        assert_close(run(skip_fcn, images), expected)

    # Once `skip_project` is not zero, the branch counts, at every size.
    minimum = case.spec.min_size
    batches.append(photos(case.family, minimum, minimum, 1))
    plain.append(run(case.score_map, batches[-1]))
    project = skip_fcn.get_layer("skip_project")
    rng = np.random.default_rng(1)
    project.kernel.assign(
        rng.normal(0, 0.05, project.kernel.shape).astype("float32")
    )
    for images, expected in zip(batches, plain):
        actual = run(skip_fcn, images)
        assert actual.shape == expected.shape
        assert max_abs_diff(actual, expected) > 1e-4


@pytest.mark.backends_only  # About a minute on 2 cores: not in `./run.sh test`.
def test_one_fit_step(case):
    """One SGD step of the FCN at an odd, non-square size: finite loss, and
    the first conv and the head both move."""
    fcn = case.module.to_fcn(
        case.original, pooling="max", classifier_activation="softmax"
    )
    fcn.compile(
        keras.optimizers.SGD(0.01),
        "sparse_categorical_crossentropy",
        run_eagerly=ONE_STEP_EAGERLY,
    )
    first = next(layer for layer in fcn.layers if layer.weights)
    watched = [first.kernel, fcn.get_layer("predictions").kernel]
    before = [keras.ops.convert_to_numpy(v) for v in watched]
    minimum = case.spec.min_size
    images = photos(case.family, minimum + 7, minimum + 21)
    history = fcn.fit(images, np.array([1, 2]), batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    for variable, old in zip(watched, before):
        assert not np.array_equal(keras.ops.convert_to_numpy(variable), old)


def test_vgg_built_for_another_size():
    # fc1 of a VGG16 built for 64x96 reads a 2x3 map: it becomes a 2x3 conv.
    original = build_original("VGG16", classes=10, input_shape=(64, 96, 3))
    fcn = FAMILIES["VGG16"][1].to_fcn(original)
    assert fcn.get_layer("fc1").kernel.shape == (2, 3, 512, 4096)
    images = photos("VGG16", 64, 96)
    assert_close(run(fcn, images), run(original, images))
    score_map = FAMILIES["VGG16"][1].to_fcn(original, pooling=None)
    assert run(score_map, photos("VGG16", 128, 160, 1)).shape == (1, 3, 3, 10)
    assert run(score_map, photos("VGG16", 32, 32, 1)).shape == (1, 1, 1, 10)
