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
from fcn_model_helpers import assert_close
from fcn_model_helpers import build_original
from fcn_model_helpers import max_abs_diff
from fcn_model_helpers import native_size
from fcn_model_helpers import photos
from fcn_model_helpers import save_legacy_h5

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
        logits=original.predict_on_batch(images),
        score_map=module.to_fcn(original, pooling=None),
    )


@pytest.fixture(scope="module")
def skip_fcn(case):
    return case.module.to_fcn(case.original, pooling=None, skip=True)


def builder(case, skip=False):
    return getattr(case.module, f"{case.spec.name}_fcn{'_skip' if skip else ''}")


def family_kwargs(case):
    return FAMILIES[case.family][2]


def test_to_fcn_matches_original_at_native_size(case):
    fcn = case.module.to_fcn(case.original)  # pooling="avg"
    assert fcn.output.shape == (None, 1000)
    assert_close(fcn.predict_on_batch(case.images), case.logits)


def test_score_map_matches_original_at_native_size(case):
    # The per-position 1x1 convs (and VGG's 7x7 fc1) carry the weights:
    # their logits averaged over the positions are the original's logits.
    score_map = case.score_map.predict_on_batch(case.images)
    if case.spec.flatten_size:
        assert score_map.shape[1:3] == (1, 1)
    assert_close(score_map.mean(axis=(1, 2)), case.logits)


@pytest.mark.parametrize("rows, cols", [(192, 288)])
def test_gap_models_match_original_at_non_square_size(case, rows, cols):
    if case.family not in GAP_FAMILIES:
        pytest.skip("the VGGs equal their original at 224x224 only")
    original = build_original(case.family, input_shape=(rows, cols, 3))
    original.set_weights(case.original.get_weights())
    images = photos(case.family, rows, cols)
    fcn = case.module.to_fcn(case.original)
    assert_close(fcn.predict_on_batch(images), original.predict_on_batch(images))


@pytest.mark.parametrize("suffix, skip", [(".h5", False), (".weights.h5", True)])
def test_weights_path_matches_original(case, tmp_path, suffix, skip):
    # Legacy HDF5 as Keras' ImageNet files, and Keras 3's own format; the
    # second one through the skip builder, which starts equal to the plain.
    path = str(tmp_path / f"original{suffix}")
    if suffix == ".h5":
        save_legacy_h5(case.original, path)
    else:
        case.original.save_weights(path)
    fcn = builder(case, skip)(
        weights=path, pooling="avg", classifier_activation=None,
        **family_kwargs(case),
    )  # fmt: skip
    assert_close(fcn.predict_on_batch(case.images), case.logits)


def test_score_map_shape_at_any_size(case):
    rows, cols = 448, 320
    score_map = case.score_map.predict_on_batch(photos(case.family, rows, cols, 1))
    if case.spec.flatten_size:
        # One score per 224x224 window at stride 32.
        expected = (1, rows // 32 - 6, cols // 32 - 6, 1000)
    else:
        # One score per position of Keras' own feature map.
        features = FAMILIES[case.family][0](
            include_top=False, weights=None, input_shape=(rows, cols, 3),
            **family_kwargs(case),
        )  # fmt: skip
        expected = (1, *features.output.shape[1:3], 1000)
    assert score_map.shape == expected


def test_minimum_size(case):
    minimum = case.spec.min_size
    with pytest.raises(ValueError, match=f"at least {minimum}x{minimum}"):
        builder(case)(weights=None, input_shape=(minimum - 1, 300, 3))
    score_map = case.score_map.predict_on_batch(photos(case.family, minimum, minimum, 1))
    assert score_map.shape[0] == 1 and score_map.shape[-1] == 1000
    assert np.all(np.isfinite(score_map))
    if case.spec.flatten_size:
        # 32..223 px: the final map, smaller than fc1's 7x7, is padded to 7x7.
        for size in (minimum, 100, 223):
            images = photos(case.family, size, size, 1)
            assert case.score_map.predict_on_batch(images).shape == (1, 1, 1, 1000)


def test_heads(case):
    """avg: mean logits, then activation; max: activation, then max."""
    if case.family not in ("VGG16", "MobileNetV2"):
        pytest.skip("the head is shared code: one VGG and one GAP family")
    images = photos(case.family, 256, 320)
    logits = case.score_map.predict_on_batch(images)
    assert logits.shape[1] * logits.shape[2] > 1
    softmax = lambda x: keras.ops.convert_to_numpy(keras.ops.softmax(x))  # noqa: E731
    expected = {
        "avg": softmax(logits.mean(axis=(1, 2))),
        "max": softmax(logits).max(axis=(1, 2)),
        None: softmax(logits),
    }
    for pooling in ("avg", "max", None):
        if case.family == "VGG16" and pooling == "avg":
            continue  # VGG's avg head: test_to_fcn_matches_original_at_native_size.
        fcn = case.module.to_fcn(
            case.original, pooling=pooling, classifier_activation="softmax"
        )
        assert_close(fcn.predict_on_batch(images), expected[pooling])


def test_skip_variant_starts_equal_to_plain_fcn(case, skip_fcn):
    assert set(SKIP_LAYERS) <= {layer.name for layer in skip_fcn.layers}
    native = native_size(case.family)
    for rows, cols in [(native, native), (native * 3 // 2, native * 3 // 2 + 32)]:
        images = photos(case.family, rows, cols, 1)
        expected = case.score_map.predict_on_batch(images)
        actual = skip_fcn.predict_on_batch(images)
        assert actual.shape == expected.shape
        assert max_abs_diff(actual, expected) == 0.0


def test_skip_branch_is_live_at_every_size(case, skip_fcn):
    project = skip_fcn.get_layer("skip_project")
    rng = np.random.default_rng(1)
    kernel = rng.normal(0, 0.05, project.kernel.shape).astype("float32")
    project.kernel.assign(kernel)
    try:
        native = native_size(case.family)
        for size in (case.spec.min_size, native, native * 3 // 2):
            images = photos(case.family, size, size, 1)
            plain = case.score_map.predict_on_batch(images)
            skipped = skip_fcn.predict_on_batch(images)
            assert skipped.shape == plain.shape
            assert max_abs_diff(skipped, plain) > 0
    finally:
        project.kernel.assign(np.zeros_like(kernel))
