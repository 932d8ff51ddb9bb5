"""The Keras layers that FCN models add to Keras' own (channels-last).

- `MinSizeZeroPadding2D`: zero-pads a feature map, centred, up to a
  minimum size (VGG's 7x7 `fc1` then scores inputs below 224x224);
- `SamePadding2D`: pads as a "same" convolution would for the size at run
  time (MobileNetV2 of unknown size, see `BackboneSpec.same_padding`);
- `AdaptiveAveragePooling2D`: average-pools one map to the size of another
  (the skip branch, `fcn_head.skip_branch`);
- `MinInputSize`: refuses images smaller than a model's minimum, in one
  line (`fcn.to_fcn`'s models, whose pooling window needs that size).

They are registered as `keras_fcn>ClassName`, so saved `.keras` models that
hold them load wherever the FCN extensions are installed.
"""

from keras.src import layers
from keras.src import ops
from keras.src.saving import object_registration


def _int_or_tensor_max(a, b):
    return max(a, b) if isinstance(a, int) else ops.maximum(a, b)


@object_registration.register_keras_serializable(package="keras_fcn")
class MinSizeZeroPadding2D(layers.Layer):
    """Zero-pads rows and columns, centred, up to `min_size` where smaller.

    Lets VGG's 7x7 `fc1` score inputs below 224x224: a final feature map of
    1x1 to 6x6 becomes 7x7. Maps already large enough pass unchanged.
    `min_size` is an int or `(rows, cols)`.
    """

    def __init__(self, min_size, **kwargs):
        super().__init__(**kwargs)
        if isinstance(min_size, int):
            min_size = (min_size, min_size)
        self.min_size = tuple(min_size)

    def call(self, inputs):
        sizes = ops.shape(inputs)[1:3]
        if all(isinstance(size, int) for size in sizes):
            if all(size >= m for size, m in zip(sizes, self.min_size)):
                return inputs
        paddings = [[0, 0]]
        for size, min_size in zip(sizes, self.min_size):
            missing = _int_or_tensor_max(min_size - size, 0)
            paddings.append([missing // 2, missing - missing // 2])
        return ops.pad(inputs, paddings + [[0, 0]])

    def compute_output_shape(self, input_shape):
        batch, rows, cols, channels = input_shape
        rows, cols = (
            None if size is None else max(size, min_size)
            for size, min_size in zip((rows, cols), self.min_size)
        )
        return (batch, rows, cols, channels)

    def get_config(self):
        return {**super().get_config(), "min_size": self.min_size}


@object_registration.register_keras_serializable(package="keras_fcn")
class SamePadding2D(layers.Layer):
    """Zero-pads as a "same" convolution would, for the size at run time.

    Keras' MobileNetV2 pads before its stride-2 convolutions by amounts fixed
    when it is built (`imagenet_utils.correct_pad`), assuming even sizes when
    they are unknown. This layer computes TensorFlow's "same" padding of a
    `kernel_size` x `kernel_size` convolution with `strides` from the actual
    size, which is what `correct_pad` gives for a known size: a model of
    unknown size then pads every input as a model built for it would.
    """

    def __init__(self, kernel_size, strides, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = kernel_size
        self.strides = strides

    def _paddings(self, size):
        k, s = self.kernel_size, self.strides
        total = _int_or_tensor_max(((size + s - 1) // s - 1) * s + k - size, 0)
        return [total // 2, total - total // 2]

    def call(self, inputs):
        shape = ops.shape(inputs)
        paddings = [self._paddings(size) for size in shape[1:3]]
        return ops.pad(inputs, [[0, 0], *paddings, [0, 0]])

    def compute_output_shape(self, input_shape):
        batch, rows, cols, channels = input_shape
        rows, cols = (
            None if size is None else size + sum(self._paddings(size))
            for size in (rows, cols)
        )
        return (batch, rows, cols, channels)

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "strides": self.strides,
        }


def _adaptive_pooling_matrix(in_size, out_size, dtype):
    """`(out_size, in_size)` averaging weights of adaptive average pooling.

    Output cell `i` averages inputs `[floor(i * in / out), ceil((i + 1) * in /
    out))`, as PyTorch's `AdaptiveAvgPool`; the windows cover every input.
    """
    out_index = ops.expand_dims(ops.arange(out_size), 1)
    in_index = ops.expand_dims(ops.arange(in_size), 0)
    start = (out_index * in_size) // out_size
    stop = ((out_index + 1) * in_size + out_size - 1) // out_size
    inside = ops.cast(
        ops.logical_and(in_index >= start, in_index < stop), dtype
    )
    return inside / ops.sum(inside, axis=1, keepdims=True)


@object_registration.register_keras_serializable(package="keras_fcn")
class AdaptiveAveragePooling2D(layers.Layer):
    """Average-pools `inputs[0]` to the rows and cols of `inputs[1]`.

    Adaptive, so it works at every input size: the output size is read at
    run time from the reference tensor, never fixed when the model is built.
    """

    def call(self, inputs):
        features, reference = inputs
        in_shape = ops.shape(features)
        out_shape = ops.shape(reference)
        rows = _adaptive_pooling_matrix(
            in_shape[1], out_shape[1], features.dtype
        )
        cols = _adaptive_pooling_matrix(
            in_shape[2], out_shape[2], features.dtype
        )
        pooled = ops.einsum("ih,bhwc->biwc", rows, features)
        return ops.einsum("jw,biwc->bijc", cols, pooled)

    def compute_output_shape(self, input_shapes):
        features, reference = input_shapes
        return (features[0], reference[1], reference[2], features[3])


@object_registration.register_keras_serializable(package="keras_fcn")
class MinInputSize(layers.Layer):
    """Passes images of at least `min_size` `(rows, cols)` through unchanged;
    raises a one-line `ValueError` for a smaller one whose size is known
    (eagerly, or when a model is traced for it).

    `model_name` names the model in the message; `min_size=None` checks
    nothing. `native_size` records the size the model was trained at (for
    `fcn.geometry`).
    """

    def __init__(
        self, min_size=None, native_size=None, model_name="The model", **kwargs
    ):
        super().__init__(**kwargs)
        self.min_size = None if min_size is None else tuple(min_size)
        self.native_size = None if native_size is None else tuple(native_size)
        self.model_name = model_name

    def _check(self, shape):
        if self.min_size is None:
            return
        sizes = tuple(shape[1:3])
        if any(
            isinstance(size, int) and size < minimum
            for size, minimum in zip(sizes, self.min_size)
        ):
            rows, cols = self.min_size
            raise ValueError(
                f"{self.model_name} needs input images of at least "
                f"{rows}x{cols} pixels. Received: image size="
                f"{sizes[0]}x{sizes[1]}"
            )

    def call(self, inputs):
        self._check(tuple(inputs.shape))
        return inputs

    def compute_output_shape(self, input_shape):
        self._check(tuple(input_shape))
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "min_size": self.min_size,
            "native_size": self.native_size,
            "model_name": self.model_name,
        }
