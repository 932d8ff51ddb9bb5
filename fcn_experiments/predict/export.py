"""Exporting a trained FCN for serving: `.keras`, SavedModel or ONNX.

All three take preprocessed `float32` images `(batch, height, width, 3)`
(the backbone's `preprocess_input`, named in the `<OUT>.json` written
beside them) and give the model's class scores; height and width are
dynamic for FCNs. The `.keras` file reloads with `keras.saving.load_model`
wherever the FCN extensions are installed (their layers are registered
Keras serializables). SavedModel and ONNX go through Keras' own
`model.export` (ONNX by tf2onnx under TensorFlow), so they need no Keras at
serving time.
"""

import os

import numpy as np

from fcn_experiments.errors import UsageError
from fcn_experiments.predict.model_source import write_info

FORMATS = ("keras", "saved_model", "onnx")
_KERAS_FORMAT = {"saved_model": "tf_saved_model", "onnx": "onnx"}


def _input_shape(model):
    """`model`'s input shape, batch first; `MultiCrop` (a subclassed model)
    takes `(batch, crops, H, W, C)` with any number of crops."""
    import keras

    if isinstance(model, keras.applications.MultiCrop):
        return (None, None, *model.model.input_shape[1:])
    return (None, *model.input_shape[1:])


def _input_signature(model):
    import keras

    return [keras.InputSpec(shape=_input_shape(model), dtype="float32")]


def export_keras_model(model, out, format):
    """Exports any Keras model taking images; returns the path written.

    Args:
        model: a Keras model; unknown input dimensions stay dynamic.
        out: `.keras` file (`"keras"`), SavedModel folder, or `.onnx` file.
        format: one of `FORMATS`.
    """
    if format not in FORMATS:
        raise UsageError(
            f"`format` must be one of {FORMATS}. Received: format={format!r}"
        )
    if format == "keras":
        if not out.endswith(".keras"):
            raise UsageError(
                "A Keras model file must end in .keras. "
                f"Received: OUT={out!r}"
            )
        model.save(out)
        return out
    if format == "onnx" and not out.endswith(".onnx"):
        raise UsageError(
            f"An ONNX file must end in .onnx. Received: OUT={out!r}"
        )
    if format == "onnx":
        # Keras' ONNX export refuses a model that was never called.
        shape = [1] + [d or 64 for d in _input_shape(model)[1:]]
        if len(shape) == 5:
            shape[1] = 3  # Three crops, not 64.
        model(np.zeros(shape, "float32"), training=False)
    model.export(
        out,
        format=_KERAS_FORMAT[format],
        input_signature=_input_signature(model),
        verbose=False,
    )
    return out


def export_model(source, out, format):
    """Exports a `ModelSource`'s model and writes `<out>.json` beside it.

    Returns:
        The path of the exported file or folder.
    """
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    written = export_keras_model(source.model, out, format)
    write_info(written, source)
    return written
