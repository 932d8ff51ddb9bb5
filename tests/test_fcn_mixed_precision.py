"""FCN models under a global mixed-precision policy.

Every builder and `to_fcn` works under `mixed_float16` and `mixed_bfloat16`:
the backbone and the FCN's own layers compute in the policy's dtype, the
head (`predictions` on) in float32, so the scores come out float32. The
scores equal the float32 model's within a stated tolerance.

Tolerance (as `assert_close`: max abs diff / max(1, max |float32 scores|)):
bfloat16 keeps 8 significant bits (rounding 2^-9 = 2e-3 per value), float16
11 (2.4e-4); errors add up over a deep backbone. Measured on the TF CPU with
random weights: up to 8e-3 (bfloat16) and 1e-3 (float16). Stated: 3e-2
and 4e-3.
"""

import numpy as np
import pytest

import keras

from fcn_model_helpers import FAMILIES
from fcn_model_helpers import ONE_STEP_EAGERLY
from fcn_model_helpers import assert_close
from fcn_model_helpers import build_original
from fcn_model_helpers import photos
from fcn_model_helpers import run

pytestmark = pytest.mark.backend_suite

# Half precision against float32, on models whose BatchNorm statistics come
# from real photos (their outputs differ by photo): the max difference
# relative to the output scale, and the least correlation of the outputs.
# Measured on MobileNetV2 (random weights, 2026-12-03): mixed_float16 0.02-0.03
# and 0.9998; mixed_bfloat16 0.17-0.19 and 0.986 (bf16 keeps 8 bits of
# mantissa, and ~50 random-gain layers compound its rounding).
TOLERANCE = {"mixed_float16": 0.1, "mixed_bfloat16": 0.5}
MIN_CORRELATION = {"mixed_float16": 0.999, "mixed_bfloat16": 0.95}
CUSTOM_LAYERS = ("MinSizeZeroPadding2D", "SamePadding2D", "AdaptiveAveragePooling2D")
# `./run.sh test` checks MobileNetV2 (small); the backend suite all five.
CASES = [
    pytest.param(
        family,
        policy,
        marks=[] if family == "MobileNetV2" else [pytest.mark.backends_only],
    )
    for family in FAMILIES
    for policy in TOLERANCE
]


@pytest.fixture
def global_policy():
    """Sets the global dtype policy; puts float32 back afterwards."""
    yield keras.mixed_precision.set_global_policy
    keras.mixed_precision.set_global_policy("float32")


def _compute_dtype(policy):
    return keras.mixed_precision.DTypePolicy(policy).compute_dtype


@pytest.mark.parametrize("family, policy", CASES)
def test_builders_and_to_fcn_under_mixed_policy(family, policy, global_policy):
    _, module, kwargs = FAMILIES[family]
    spec = module.SPEC
    original = build_original(family)  # float32
    # Odd, non-square: MobileNetV2's run-time padding and VGG's fc1 padding.
    images = photos(family, spec.min_size + 9, spec.min_size + 31)
    reference = run(module.to_fcn(original, pooling=None), images)

    global_policy(policy)
    score_map = module.to_fcn(original, pooling=None)
    built_skip = getattr(module, f"{spec.name}_fcn_skip")(
        weights=None, classes=3, pooling="avg", **kwargs
    )

    compute = _compute_dtype(policy)
    for model in (score_map, built_skip):
        assert model.output.dtype == "float32"
        assert model.get_layer("predictions").compute_dtype == "float32"
        convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
        assert convs[0].compute_dtype == compute
        for layer in model.layers:
            if type(layer).__name__ in CUSTOM_LAYERS:
                # Computes in the policy's dtype: no float32 constants
                # promoting its output.
                assert layer.compute_dtype == compute
                assert layer.output.dtype == compute
    custom = {type(l).__name__ for l in built_skip.layers}
    assert "AdaptiveAveragePooling2D" in custom

    actual = run(score_map, images)
    assert actual.dtype == np.float32
    assert_close(actual, reference, TOLERANCE[policy])
    correlation = np.corrcoef(actual.ravel(), reference.ravel())[0, 1]
    assert correlation >= MIN_CORRELATION[policy]
    scores = run(built_skip, images)
    assert scores.shape == (2, 3) and scores.dtype == np.float32
    assert np.all(np.isfinite(scores))


@pytest.mark.parametrize("policy", list(TOLERANCE))
def test_fit_step_under_mixed_policy(policy, global_policy):
    """A training step: float32 variables move, the loss is finite
    (mixed_float16 trains through Keras' loss-scaling optimizer)."""
    original = build_original("MobileNetV2", classes=3)
    global_policy(policy)
    fcn = FAMILIES["MobileNetV2"][1].to_fcn(
        original, pooling="max", classifier_activation="softmax"
    )
    optimizer = keras.optimizers.SGD(0.01)
    if policy == "mixed_float16":
        # What compile would wrap it in, but starting at a scale whose first
        # step does not overflow float16 (2**15 skips the first steps).
        optimizer = keras.optimizers.LossScaleOptimizer(
            optimizer, initial_scale=2**7
        )
    fcn.compile(
        optimizer,
        "sparse_categorical_crossentropy",
        run_eagerly=ONE_STEP_EAGERLY,
    )
    head = fcn.get_layer("predictions").kernel
    assert head.dtype == "float32"
    before = keras.ops.convert_to_numpy(head)
    history = fcn.fit(
        photos("MobileNetV2", 41, 63), np.array([0, 2]), batch_size=2, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    assert not np.array_equal(keras.ops.convert_to_numpy(head), before)
