"""`MultiCrop`: one prediction per image from a model run on several crops.

`fcn_image_dataset_from_directory(..., resize_mode="multicrop")` yields
images of shape `(batch, 3, S, S, C)`: three crops that together cover the
image. `MultiCrop(model)` runs `model` on all of them as one batch of
`batch * 3` images and pools the three predictions of each image into one,
so a multi-crop model trains and evaluates with plain `fit` / `evaluate`.
Max pooling (the default) carries the FCN's global max pooling over
positions on to the crops: a class scores as high as its best crop.
For quality scores, average pooling gives a regression head's mean score
over the crops, and keeps a distribution head's output a distribution.
"""

from keras.src import ops
from keras.src.models import Model
from keras.src.saving import object_registration
from keras.src.saving import serialization_lib

POOLINGS = ("max", "avg")


@object_registration.register_keras_serializable(package="fcn")
class MultiCrop(Model):
    """Runs `model` on every crop and pools the crops' predictions.

    Example:

    ```python
    train = keras.utils.fcn_image_dataset_from_directory(
        "data/train", image_size=224, resize_mode="multicrop")
    fcn = keras.applications.MobileNetV2(...)  # any (B, H, W, C) model
    model = keras.applications.MultiCrop(fcn)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train.map(lambda x, y: (preprocess_input(x), y)))
    ```

    Args:
        model: A Keras model mapping `(batch, H, W, C)` images to
            predictions `(batch, ...)`.
        pooling: How the crops' predictions are combined: `"max"` (default)
            or `"avg"`. Predictions are pooled as they come out of `model`
            (probabilities stay unnormalized under `"max"`, as after global
            max pooling; Keras' crossentropy losses normalize them, the
            Earth Mover's Distance does not: use `"avg"` for score
            distributions).

    Input shape: `(batch, crops, H, W, C)`.
    Output shape: `(batch, ...)`, that of `model`'s predictions.
    """

    def __init__(self, model, pooling="max", **kwargs):
        if not isinstance(model, Model):
            raise ValueError(
                "`model` must be a Keras model mapping images to predictions. "
                f"Received: model={model!r}"
            )
        if pooling not in POOLINGS:
            raise ValueError(
                f"`pooling` must be one of {POOLINGS}. Received: pooling={pooling!r}"
            )
        super().__init__(**kwargs)
        self.model = model
        self.pooling = pooling

    def call(self, inputs, training=None):
        shape = ops.shape(inputs)
        images = ops.reshape(inputs, (-1, *shape[2:]))
        predictions = self.model(images, training=training)
        predictions = ops.reshape(
            predictions, (-1, shape[1], *ops.shape(predictions)[1:])
        )
        if self.pooling == "max":
            return ops.max(predictions, axis=1)
        return ops.mean(predictions, axis=1)

    def compute_output_shape(self, input_shape):
        output_shape = self.model.compute_output_shape(
            (None, *input_shape[2:])
        )
        return (input_shape[0], *output_shape[1:])

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "model": serialization_lib.serialize_keras_object(self.model),
            "pooling": self.pooling,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        model = serialization_lib.deserialize_keras_object(
            config.pop("model"), custom_objects=custom_objects
        )
        return cls(model, **config)
