"""Copying an original Keras classifier's weights into its FCN twin.

`copy_weights` converts exactly: the backbone's weights are copied as they
are, the top's Dense kernels reshaped to the conv kernels (a channels-last
`Flatten` is a C-order reshape). `load_original_weights` loads a weights
file laid out like the original (Keras' ImageNet file, or one the user
saved) into a freshly built original, then copies it.
"""

import math
import warnings

from keras.src import layers
from keras.src import ops
from keras.src.models import Functional


def get_layer(spec, model, name, kind=None):
    try:
        layer = model.get_layer(name)
    except ValueError:
        layer = None
    if layer is None or (kind is not None and not isinstance(layer, kind)):
        raise ValueError(
            f"to_fcn converts models built by keras.applications.{spec.name}"
            f"(include_top=True, ...) (its layers may be retrained, `classes` "
            f"may differ, a Dropout may precede 'predictions'); the model "
            f"'{model.name}' has no {kind.__name__ if kind else 'layer'} "
            f"named '{name}'. Received: model={model.name}"
        )
    return layer


def _backbone_layers(spec, model):
    """The layers with weights between the input and the feature layer.

    Listed in the order of a model of the feature map alone, the same for
    the original and the FCN: their graphs up to there are identical, and
    InceptionV3's layer names are not (Keras numbers them per session).
    """
    features = get_layer(spec, model, spec.feature_layer).output
    backbone = Functional(model.inputs, features)
    return [layer for layer in backbone.layers if layer.weights]


def copy_weights(spec, original, fcn, *, skip_predictions=False):
    """Copies an original model's weights into its FCN twin, converting.

    Dense kernels of the top are reshaped to the conv kernels (exact). With
    `skip_predictions`, `predictions` keeps its fresh weights (a new number
    of classes); the skip branch always does.
    """
    sources = _backbone_layers(spec, original)
    targets = _backbone_layers(spec, fcn)
    if len(sources) != len(targets):
        raise ValueError(
            f"The model '{original.name}' has {len(sources)} layers with "
            f"weights up to '{spec.feature_layer}', "
            f"keras.applications.{spec.name} has {len(targets)}: it is not a "
            f"{spec.name}. Received: model={original.name}"
        )
    pairs = list(zip(sources, targets))
    top = [
        n
        for n in spec.top_layer_names
        if not (skip_predictions and n == "predictions")
    ]
    for name in top:
        pairs.append(
            (get_layer(spec, original, name, layers.Dense), fcn.get_layer(name))
        )

    converted = {id(source) for source, _ in pairs}
    left = [
        layer.name
        for layer in original.layers
        if layer.weights
        and id(layer) not in converted
        and not (skip_predictions and layer.name == "predictions")
    ]
    if left:
        raise ValueError(
            f"The model '{original.name}' has layers with weights that its "
            f"FCN twin has no place for: {left}. to_fcn converts "
            f"keras.applications.{spec.name}(include_top=True, ...) as built; "
            f"change its top only through `classes`. "
            f"Received: model={original.name}"
        )
    for source, target in pairs:
        shapes = [tuple(v.shape) for v in source.weights]
        wanted = [tuple(v.shape) for v in target.weights]
        converting = source.name in spec.top_layer_names
        if len(shapes) != len(wanted) or any(
            (math.prod(s) != math.prod(w)) if converting else (s != w)
            for s, w in zip(shapes, wanted)
        ):
            raise ValueError(
                f"Layer '{source.name}' of '{original.name}' has weights of "
                f"shapes {shapes}, its FCN twin '{target.name}' needs "
                f"{wanted}: the model is not a keras.applications.{spec.name} "
                f"as the FCN builds it. Received: model={original.name}"
            )
        # Variable to variable, no NumPy round trip (VGG's fc1 is 400 MB).
        for source_variable, target_variable in zip(
            source.weights, target.weights
        ):
            target_variable.assign(
                ops.reshape(source_variable.value, target_variable.shape)
            )


def load_original_weights(
    spec, fcn, *, path, file_classes, classes, channels, backbone_kwargs
):
    """Loads a weights file laid out like the original into the FCN `fcn`.

    The file is loaded by Keras into the original it was saved from, built
    afresh with `file_classes` classes, then converted. When that fails and
    `classes` is not 1000, the ImageNet layout is tried too, keeping
    `predictions` fresh.
    """
    layouts = [file_classes] + ([1000] if file_classes != 1000 else [])
    errors = []
    for layout_classes in layouts:
        original = spec.keras_builder(
            include_top=True,
            weights=None,
            input_shape=(spec.default_size, spec.default_size, channels),
            classes=layout_classes,
            classifier_activation=None,
            **backbone_kwargs,
        )
        try:
            # Keras warns before it raises on a mismatched layout ("Skipping
            # nested container ..."): only the warnings of the layout that
            # loads are the user's concern.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                original.load_weights(path)
        except ValueError as e:
            errors.append(f"as {layout_classes} classes: {e}")
            continue
        except OSError as e:
            raise OSError(
                f"Cannot read the weights file {path}: {e}. Pass a legacy "
                ".h5 or a .weights.h5 file saved from "
                f"keras.applications.{spec.name}."
            ) from e
        for warning in caught:
            warnings.warn_explicit(warning.message, warning.category,
                                   warning.filename, warning.lineno)
        copy_weights(
            spec, original, fcn, skip_predictions=layout_classes != classes
        )
        return
    raise ValueError(
        f"The weights file {path} is not laid out like "
        f"keras.applications.{spec.name}(include_top=True, classes={classes}"
        f"{''.join(f', {k}={v}' for k, v in backbone_kwargs.items())}) "
        f"{'or like its ImageNet file ' if len(layouts) > 1 else ''}"
        f"(tried {'; '.join(errors)}). Pass a file saved from that model "
        "(model.save_weights) or Keras' ImageNet weights file. "
        f"Received: weights={path}"
    )
