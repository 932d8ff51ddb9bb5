"""The FCN's own layers: centred padding to fc1's window, adaptive pooling."""

import numpy as np
import pytest

import keras
import tensorflow as tf
from keras.src.applications.fcn_layers import AdaptiveAveragePooling2D
from keras.src.applications.fcn_layers import MinSizeZeroPadding2D
from keras.src.applications.fcn_layers import SamePadding2D
from keras.src.applications.imagenet_utils import correct_pad


def reference_adaptive_average(x, rows, cols):
    """PyTorch's AdaptiveAvgPool2d windows, written out with loops."""
    out = np.zeros((x.shape[0], rows, cols, x.shape[3]), x.dtype)
    for i in range(rows):
        r0, r1 = (i * x.shape[1]) // rows, -(-(i + 1) * x.shape[1] // rows)
        for j in range(cols):
            c0, c1 = (j * x.shape[2]) // cols, -(-(j + 1) * x.shape[2] // cols)
            out[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    return out


def dynamic_model(layer, inputs):
    """`layer` in a graph whose rows and cols are unknown when traced."""
    specs = [tf.TensorSpec((None, None, None, np.shape(x)[-1])) for x in inputs]
    tensors = [keras.Input((None, None, np.shape(x)[-1])) for x in inputs]
    model = keras.Model(
        tensors, layer(tensors if len(tensors) > 1 else tensors[0])
    )
    graph = tf.function(
        lambda *x: model(list(x) if len(x) > 1 else x[0]), input_signature=specs
    )
    return lambda *x: graph(*x).numpy()


@pytest.mark.parametrize(
    "in_size, out_size",
    [
        ((56, 56), (7, 7)),
        ((13, 17), (4, 5)),
        ((5, 6), (5, 6)),
        ((9, 2), (3, 1)),
    ],
)
def test_adaptive_average_pooling(in_size, out_size):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, *in_size, 3)).astype("float32")
    reference = np.zeros((2, *out_size, 1), "float32")
    expected = reference_adaptive_average(x, *out_size)
    eager = AdaptiveAveragePooling2D()([x, reference])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(eager), expected, atol=1e-6
    )
    model = dynamic_model(AdaptiveAveragePooling2D(), [x, reference])
    np.testing.assert_allclose(model(x, reference), expected, atol=1e-6)


def test_min_size_padding_is_centred_and_only_where_needed():
    layer = MinSizeZeroPadding2D(7)
    model = dynamic_model(layer, [np.zeros((1, 1, 1, 2))])
    x = np.arange(1, 1 + 3 * 4 * 2, dtype="float32").reshape(1, 3, 4, 2)
    padded = model(x)
    assert padded.shape == (1, 7, 7, 2)
    np.testing.assert_array_equal(
        padded[:, 2:5, 1:5], x
    )  # 2 + 2 and 1 + 2 zeros
    assert padded.sum() == x.sum()
    wide = np.ones((1, 2, 9, 2), "float32")
    assert model(wide).shape == (1, 7, 9, 2)
    big = np.ones((1, 8, 9, 2), "float32")
    np.testing.assert_array_equal(model(big), big)
    assert layer.compute_output_shape((None, 3, None, 2)) == (None, 7, None, 2)


def test_same_padding_is_keras_correct_pad_at_run_time():
    # What Keras' MobileNetV2 pads before a 3x3 stride-2 conv when it knows
    # the size, now for sizes known only at run time.
    model = dynamic_model(SamePadding2D(3, 2), [np.zeros((1, 1, 1, 1))])
    for rows, cols in [(8, 9), (7, 7), (12, 5)]:
        expected = correct_pad(keras.Input((rows, cols, 1)), 3)
        x = np.ones((1, rows, cols, 1), "float32")
        padded = model(x)[0, :, :, 0]
        for axis, (before, after) in enumerate(expected):
            assert padded.shape[axis] == x.shape[axis + 1] + before + after
        top, left = expected[0][0], expected[1][0]
        assert padded[top : top + rows, left : left + cols].sum() == rows * cols
        assert padded.sum() == rows * cols
