"""Any global-pooling Keras classifier as an exact FCN: `to_fcn(model)`.

ResNet and ResNetV2, DenseNet, EfficientNet and EfficientNetV2, ConvNeXt,
MobileNet and MobileNetV3, NASNet and InceptionResNetV2 end in a global
pooling of the final feature map followed by a head that reads one vector:
Dense; Dropout then Dense; LayerNormalization then Dense; or 1x1
convolutions on the kept-dims pooled map, reshaped to a vector. `to_fcn`
turns such a model, as built by `keras.applications` or finetuned from it,
into its fully convolutional twin, with the same weights (copied):

- the global pooling becomes a window pooling (`window_pool`, average or
  max as the original's) of the final map's size at the native input
  size, at stride 1, 'valid': on a native-size image it covers the whole
  map, so the FCN equals the original; on a larger one it slides;
- the head runs at every window position: Dense acts on the last axis,
  LayerNormalization and BatchNormalization normalise the last axis, 1x1
  convolutions are per position, and the reshapes that only drop the 1x1
  spatial axes are left out;
- the head's last layer with weights gives the logits per position
  (renamed `predictions`, float32 under any policy); its activation (or a
  trailing `Activation` layer's) becomes the `pooling` head's activation,
  as in the `*_fcn` modules (`fcn_head.score_head`): `"max"` (default, the
  activation per position, then the maximum per class), `"avg"` (the
  logits averaged, then the activation) or `None` (the score map).

The backbone is cloned as it is, except the zero paddings that pad as a
"same" convolution would for the size the model was built at (EfficientNet,
MobileNet, MobileNetV3, NASNet): they compute that padding for each input's
actual size (`SamePadding2D`), as a model built for that size would.
Layers that pool over the whole map inside the backbone (the
squeeze-and-excitation blocks of EfficientNet and MobileNetV3) still do so
on a larger image: there the FCN's score at a position is close to, not
exactly, the original's on that window.

Images smaller than the smallest size whose final map holds the window are
refused in one line (`MinInputSize`). `geometry(fcn)` gives the native
size, that minimum and the score map's stride, measured on the built model.

`FAMILIES` lists the families (and their members) converted and tested.

A head that cannot run per position is refused in one line naming its
layer: a Flatten of a map larger than 1x1 into a Dense (VGG: use
`keras.applications.vgg16_fcn.to_fcn`), a transformer's token pooling, or
any layer between the global pooling and the logits that is not per
position.
"""

import dataclasses
import math

from keras.src import backend
from keras.src import layers
from keras.src import tree
from keras.src.applications.fcn_conversion import POOLINGS
from keras.src.applications.fcn_head import HEAD_DTYPE
from keras.src.applications.fcn_head import score_head
from keras.src.applications.fcn_head import skip_branch
from keras.src.applications.fcn_layers import MinInputSize
from keras.src.applications.fcn_layers import SamePadding2D
from keras.src.models import Functional
from keras.src.models import Sequential

GLOBAL_POOLINGS = {
    layers.GlobalAveragePooling2D: layers.AveragePooling2D,
    layers.GlobalMaxPooling2D: layers.MaxPooling2D,
}
# Layers of a head that act on each position alone (the last axis).
PER_POSITION = (
    layers.Dense,
    layers.Conv2D,
    layers.Dropout,
    layers.GaussianDropout,
    layers.GaussianNoise,
    layers.AlphaDropout,
    layers.Activation,
    layers.ReLU,
    layers.LeakyReLU,
    layers.ELU,
    layers.Softmax,
    layers.LayerNormalization,
    layers.BatchNormalization,
    layers.Rescaling,
    layers.Identity,
)
LOGIT_LAYERS = (layers.Dense, layers.Conv2D)
TRAILING_ACTIVATIONS = (layers.Activation, layers.Softmax)
SAME_PADDED = (
    layers.Conv2D,
    layers.DepthwiseConv2D,
    layers.SeparableConv2D,
    layers.MaxPooling2D,
    layers.AveragePooling2D,
)


# The `keras.applications` families `to_fcn` converts and tests: family
# name -> its builders' names (the first is the one the quick tests use).
FAMILIES = {
    "ResNet": ("ResNet50", "ResNet101", "ResNet152"),
    "ResNetV2": ("ResNet50V2", "ResNet101V2", "ResNet152V2"),
    "DenseNet": ("DenseNet121", "DenseNet169", "DenseNet201"),
    "EfficientNet": tuple(f"EfficientNetB{i}" for i in range(8)),
    "EfficientNetV2": (
        "EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2",
        "EfficientNetV2B3", "EfficientNetV2S", "EfficientNetV2M",
        "EfficientNetV2L",
    ),
    "ConvNeXt": (
        "ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge",
        "ConvNeXtXLarge",
    ),
    "MobileNet": ("MobileNet",),
    "MobileNetV3": ("MobileNetV3Small", "MobileNetV3Large"),
    "NASNet": ("NASNetMobile", "NASNetLarge"),
    "InceptionResNetV2": ("InceptionResNetV2",),
}


@dataclasses.dataclass(frozen=True)
class Geometry:
    """An FCN's sizes, measured on the built model.

    Attributes:
        native_size: `(rows, cols)` the original was built for.
        min_size: `(rows, cols)` of the smallest image it takes.
        window: `(rows, cols)` of the window pooling on the final map.
        stride: pixels between neighbouring score map positions.
        min_model_size: `(rows, cols)` of the smallest input whose final
            map is 1x1: the smallest size a model of the family can be
            built (and trained) at; its FCN has a 1x1 window.
    """

    native_size: tuple
    min_size: tuple
    window: tuple
    stride: int
    min_model_size: tuple


@dataclasses.dataclass
class _Plan:
    """What `to_fcn` found in the original (all checked)."""

    pool: layers.Layer
    head: list
    logits: layers.Layer
    activation: object
    native_size: tuple
    window: tuple
    same_padding: dict
    skip_layer: layers.Layer | None


def _refuse(model, what):
    raise ValueError(
        f"to_fcn converts classifiers that end in a global pooling followed "
        f"by per-position layers (ResNet, EfficientNet, ConvNeXt, ...); "
        f"{what}. Received: model={getattr(model, 'name', model)}"
    )


def _producer(tensor):
    return tensor._keras_history.operation


def _only_input(model, layer):
    nodes = layer._inbound_nodes
    if len(nodes) != 1 or len(nodes[0].input_tensors) != 1:
        _refuse(model, f"its layer '{layer.name}' has several inputs")
    return nodes[0].input_tensors[0]


def _collapses_1x1(layer):
    """Whether a Flatten or Reshape only drops or adds 1x1 spatial axes."""
    before = tuple(_only_shape(layer.input))
    after = tuple(_only_shape(layer.output))
    return before[-1] == after[-1] and math.prod(
        size for size in before[1:-1] if size is not None
    ) == math.prod(size for size in after[1:-1] if size is not None) == 1 and (
        None not in before[1:] and None not in after[1:]
    )


def _only_shape(tensor):
    return tensor.shape


def _last_axis(layer):
    """Whether a normalization layer normalises the last axis only."""
    axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    rank = len(layer.input.shape)
    return [a % rank for a in axis] == [rank - 1]


def _find_head(model):
    """The global pooling and the head after it, walking back from the
    output; refuses, naming the layer, where a head is not per position."""
    if not isinstance(model, Functional):
        _refuse(
            model,
            f"'{getattr(model, 'name', model)}' is not a functional Keras "
            "model (keras.Model(inputs, outputs))",
        )
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        _refuse(model, "the model has several inputs or outputs")
    head = []
    layer = _producer(model.outputs[0])
    while not isinstance(layer, tuple(GLOBAL_POOLINGS)):
        if isinstance(layer, layers.InputLayer):
            _refuse(model, "the model has no GlobalAveragePooling2D or "
                    "GlobalMaxPooling2D before its output")
        if isinstance(layer, (layers.Flatten, layers.Reshape)):
            if not _collapses_1x1(layer):
                _refuse(
                    model,
                    f"its layer '{layer.name}' ({type(layer).__name__}) "
                    f"reshapes a {tuple(layer.input.shape[1:])} tensor, not "
                    "a pooled 1x1 map (a VGG converts with "
                    "keras.applications.vgg16_fcn.to_fcn)",
                )
        elif isinstance(layer, (Functional, Sequential)):
            _refuse(
                model,
                f"its layer '{layer.name}' is a nested model: build the head "
                f"on its output (keras.Model({layer.name}.input, head("
                f"{layer.name}.output)))",
            )
        elif not isinstance(layer, PER_POSITION):
            _refuse(
                model,
                f"its layer '{layer.name}' ({type(layer).__name__}) is not "
                "a per-position layer after a global pooling",
            )
        elif isinstance(layer, layers.Conv2D) and (
            tuple(layer.kernel_size) != (1, 1) or tuple(layer.strides) != (1, 1)
        ):
            _refuse(model, f"its layer '{layer.name}' is a Conv2D of kernel "
                    f"{layer.kernel_size}, not 1x1")
        elif isinstance(
            layer, (layers.LayerNormalization, layers.BatchNormalization)
        ) and not _last_axis(layer):
            _refuse(model, f"its layer '{layer.name}' normalises axis "
                    f"{layer.axis}, not the channels")
        head.append(layer)
        layer = _producer(_only_input(model, layer))
    return layer, head[::-1]


def _split_logits(model, head):
    """The logits layer (the head's last Dense or 1x1 Conv2D) and the
    classifier activation (a trailing Activation's, else its own)."""
    logits = [i for i, layer in enumerate(head) if isinstance(layer, LOGIT_LAYERS)]
    if not logits:
        _refuse(model, "its head has no Dense or 1x1 Conv2D after the pooling")
    after = head[logits[-1] + 1 :]
    activations = [
        layer for layer in after if isinstance(layer, TRAILING_ACTIVATIONS)
    ]
    for layer in after:
        if not isinstance(
            layer, TRAILING_ACTIVATIONS + (layers.Flatten, layers.Reshape)
        ) or len(activations) > 1:
            _refuse(model, f"its layer '{layer.name}' after the logits "
                    "layer is not one activation or reshape")
    logits = head[logits[-1]]
    if activations:
        layer = activations[0]
        activation = (
            layer.activation if isinstance(layer, layers.Activation)
            else "softmax"
        )
    else:
        activation = logits.activation
    return logits, activation


def _native_size(model, input_size):
    built = tuple(model.inputs[0].shape[1:3])
    if input_size is not None:
        if isinstance(input_size, int):
            input_size = (input_size, input_size)
        input_size = tuple(input_size)
        if not (
            len(input_size) == 2
            and all(isinstance(s, int) and s > 0 for s in input_size)
            and all(b in (None, s) for b, s in zip(built, input_size))
        ):
            raise ValueError(
                "`input_size` should be the (rows, cols) the model was "
                f"trained at, and the size it was built for, {built}, where "
                f"known. Received: input_size={input_size}"
            )
        return input_size
    if None in built:
        raise ValueError(
            f"The model '{model.name}' takes any input size, so the window "
            "that reproduces its global pooling is unknown: pass the size "
            "it was trained at, e.g. input_size=224 (Keras' ImageNet "
            f"weights). Received: input_size=None"
        )
    return built


def _native_shapes(model, native_size):
    """Every layer's output shape at the native size, by layer id."""
    named = [
        layer
        for layer in model._operations
        if not isinstance(layer, layers.InputLayer)
        and len(layer._inbound_nodes) == 1
        and len(layer._inbound_nodes[0].outputs) == 1
    ]
    channels = model.inputs[0].shape[-1]
    shapes = {id(_producer(model.inputs[0])): (None, *native_size, channels)}
    if None not in tuple(model.inputs[0].shape[1:3]):
        return shapes | {id(l): tuple(l.output.shape) for l in named}
    probe = Functional(model.inputs, [layer.output for layer in named])
    specs = probe.compute_output_spec(
        backend.KerasTensor((1, *native_size, channels))
    )
    return shapes | {id(l): tuple(s.shape) for l, s in zip(named, specs)}


def _pad_consumer(layer):
    """`(kernel, strides)` of a 'valid', square conv or pooling, else None."""
    if not isinstance(layer, SAME_PADDED) or layer.padding != "valid":
        return None
    kernel = getattr(layer, "pool_size", None) or layer.kernel_size
    strides = tuple(layer.strides)
    if len(set(kernel)) != 1 or len(set(strides)) != 1:
        return None
    return kernel[0], strides[0]


def _same_padding(model, shapes):
    """`{id: (kernel, strides)}` of the ZeroPadding2D layers that pad as a
    "same" convolution would, at the native size, for their consumers (one
    kernel size and stride)."""
    found = {}
    for layer in model.layers:
        if not isinstance(layer, layers.ZeroPadding2D):
            continue
        consumers = {
            _pad_consumer(node.operation) for node in layer._outbound_nodes
        }
        if len(consumers) != 1 or None in consumers:
            continue
        k, s = consumers.pop()
        sizes = shapes[id(_producer(_only_input(model, layer)))][1:3]
        same = []
        for n in sizes:
            total = max((-(-n // s) - 1) * s + k - n, 0)
            same.append((total // 2, total - total // 2))
        if tuple(map(tuple, layer.padding)) == tuple(same):
            found[id(layer)] = (k, s)
    return found


def _merges(layer):
    """Whether a layer merges branches (a residual add, a concatenation),
    or activates the merge just before it (ResNet's `conv2_block3_out`)."""
    inputs = layer._inbound_nodes[0].input_tensors
    if len(inputs) > 1:
        return True
    producer = _producer(inputs[0])
    return isinstance(layer, layers.Activation) and len(
        producer._inbound_nodes[0].input_tensors
    ) > 1


def _skip_layer(model, shapes, native_size, pool):
    """The end of the stride-4 stage: among the layers at stride 4 that
    every path passes through (paddings aside), the last that merges
    branches, else the last."""
    operations = model._operations  # Layers and ops, in graph order.
    index = {id(layer): i for i, layer in enumerate(operations)}
    lowest_later = len(operations)  # Lowest parent index of later layers.
    candidates = []
    for i in range(len(operations) - 1, -1, -1):
        layer = operations[i]
        shape = shapes.get(id(layer), ())
        if (
            len(shape) == 4
            and shape[1]
            and lowest_later >= i
            and layer is not pool
            and not isinstance(layer, layers.ZeroPadding2D)
            and round(native_size[0] / shape[1]) == 4
        ):
            candidates.append(layer)  # Last first.
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                lowest_later = min(lowest_later, index[id(_producer(tensor))])
    merging = [layer for layer in candidates if _merges(layer)]
    return (merging or candidates or [None])[0]


def _plan(model, input_size, skip):
    if backend.image_data_format() != "channels_last":
        raise ValueError(
            "to_fcn supports the channels_last data format only. Received: "
            f"image_data_format={backend.image_data_format()}"
        )
    pool, head = _find_head(model)
    if len(pool.input.shape) != 4:
        _refuse(model, f"its pooling '{pool.name}' does not pool a 2D map")
    logits, activation = _split_logits(model, head)
    native_size = _native_size(model, input_size)
    shapes = _native_shapes(model, native_size)
    window = shapes[id(_producer(_only_input(model, pool)))][1:3]
    skip_layer = None
    if skip:
        skip_layer = _skip_layer(model, shapes, native_size, pool)
        if skip_layer is None:
            raise ValueError(
                f"The model '{model.name}' has no layer at stride 4 that "
                "every path passes through, where a skip branch could start; "
                "convert it without one. Received: skip=True"
            )
    return _Plan(
        pool=pool,
        head=head,
        logits=logits,
        activation=activation,
        native_size=tuple(native_size),
        window=tuple(window),
        same_padding=_same_padding(model, shapes),
        skip_layer=skip_layer,
    )


def _clone(layer, plan, split_activation):
    """The FCN's copy of one of the original's layers (fresh weights)."""
    if id(layer) in plan.same_padding:
        kernel_size, strides = plan.same_padding[id(layer)]
        return SamePadding2D(kernel_size, strides, name=layer.name)
    if layer is plan.pool:
        return GLOBAL_POOLINGS[type(layer)](
            pool_size=plan.window, strides=1, padding="valid",
            name="window_pool",
        )
    if isinstance(layer, Sequential):
        # Built for the original's size (ConvNeXt's stem and downsampling
        # blocks): rebuilt for any size.
        return Sequential(
            [inner.__class__.from_config(inner.get_config())
             for inner in layer.layers],
            name=layer.name,
        )
    config = layer.get_config()
    if layer is plan.logits:
        config.update(name="predictions", dtype=HEAD_DTYPE)
        if split_activation:
            config["activation"] = "linear"
    elif isinstance(
        layer, (layers.LayerNormalization, layers.BatchNormalization)
    ) and layer in plan.head:
        config["axis"] = -1  # The channels, now of a 4D map.
    return layer.__class__.from_config(config)


def _copy_weights(pairs, model):
    for source, target in pairs:
        shapes = [tuple(v.shape) for v in source.weights]
        wanted = [tuple(v.shape) for v in target.weights]
        if shapes != wanted:  # A layer whose config does not rebuild it.
            raise ValueError(
                f"Layer '{source.name}' of '{model.name}' has weights of "
                f"shapes {shapes}, its copy in the FCN {wanted}. "
                f"Received: model={model.name}"
            )
        for source_variable, target_variable in zip(
            source.weights, target.weights
        ):
            target_variable.assign(source_variable.value)
        if isinstance(target, layers.Normalization):
            target.finalize_state()  # Its mean and variance from the copy.


def _rebuild(model, plan, *, pooling, classifier_activation, skip, dropout,
             name):
    dropped = {
        id(layer)
        for layer in plan.head[plan.head.index(plan.logits) + 1 :]
    } | {
        id(layer)
        for layer in plan.head
        if isinstance(layer, (layers.Flatten, layers.Reshape))
    }
    # The logits layer's own activation moves to the head, unless a
    # trailing Activation (dropped here) is the classifier's.
    split = not any(
        isinstance(layer, TRAILING_ACTIVATIONS)
        for layer in plan.head[plan.head.index(plan.logits) + 1 :]
    )
    inputs = layers.Input(
        shape=(None, None, model.inputs[0].shape[-1]), name="input_layer"
    )
    check = MinInputSize(name="min_input_size", model_name=name)
    pairs, state = [], {"original": None, "early": None}

    def operation_fn(layer):
        state["original"] = layer
        if id(layer) in dropped:
            return layer  # Never called: `call_fn` passes its input on.
        clone = _clone(layer, plan, split)
        if getattr(layer, "weights", None):
            pairs.append((layer, clone))
        return clone

    def call_fn(clone, *args, **kwargs):
        original = state["original"]
        if id(original) in dropped:
            return args[0]
        if original is plan.pool and skip:
            args = (skip_branch(state["early"], args[0]),)
        if original is plan.logits and dropout:
            args = (layers.Dropout(dropout, name="fcn_dropout")(args[0]),)
        outputs = clone(*args, **kwargs)
        if original is plan.skip_layer:
            state["early"] = outputs
        return outputs

    logits = tree.flatten(
        model._run_through_graph(
            check(inputs), operation_fn=operation_fn, call_fn=call_fn
        )
    )[0]
    _copy_weights(pairs, model)
    if classifier_activation is None:
        classifier_activation = plan.activation
    outputs = score_head(
        logits, pooling=pooling, classifier_activation=classifier_activation
    )
    return Functional(inputs, outputs, name=name), check


def _map_size(features, channels, rows, cols):
    """The final map's (rows, cols) for an input size, or None if too small."""
    try:
        spec = features.compute_output_spec(
            backend.KerasTensor((1, rows, cols, channels))
        )
    except Exception:  # Negative sizes fail in the layer that meets them.
        return None
    size = tuple(spec.shape[1:3])
    return None if any(s is None or s < 1 for s in size) else size


def _min_size(features, channels, native_size, window):
    """The smallest rows and cols whose final map holds the window."""
    found = []
    for axis in (0, 1):
        low, high = 1, native_size[axis]
        while low < high:
            middle = (low + high) // 2
            size = list(native_size)
            size[axis] = middle
            shape = _map_size(features, channels, *size)
            if shape is not None and shape[axis] >= window[axis]:
                high = middle
            else:
                low = middle + 1
        found.append(low)
    return tuple(found)


def to_fcn(
    model,
    pooling="max",
    classifier_activation=None,
    skip=False,
    dropout=0.0,
    name=None,
    input_size=None,
):
    """Turns a global-pooling Keras classifier into its exact FCN twin.

    The module docstring says what is converted and how. The weights are
    copied: training the FCN leaves `model` as it was.

    Args:
        model: a functional model ending in `GlobalAveragePooling2D` or
            `GlobalMaxPooling2D` and a per-position head, e.g.
            `keras.applications.ResNet50(...)`, or one finetuned from
            `include_top=False, pooling="avg"` with a new Dense.
        pooling: `"max"` (default), `"avg"` or `None` (the score map).
        classifier_activation: activation of the scores; `None` takes the
            model's own (its logits layer's, or a trailing Activation's).
        skip: adds the skip branch (`fcn_head.skip_branch`) from the last
            layer at stride 4 that every path passes through; refused in
            one line where there is none (NASNet).
        dropout: rate of a Dropout (`fcn_dropout`) before the logits.
        name: the FCN's name (default: the model's, `_fcn` appended).
        input_size: `(rows, cols)` or an int: the size the model was
            trained at, needed only where it was built for any size
            (`keras.applications.MobileNetV3Small()`).

    Returns:
        A `keras.Model` taking images of any size from `geometry(fcn)
        .min_size` up.
    """
    if pooling not in POOLINGS:
        raise ValueError(
            "The `pooling` argument should be 'max' (per-position activation, "
            "then global max), 'avg' (average logits, then activation) or "
            f"None (the score map). Received: pooling={pooling}"
        )
    if not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
        raise ValueError(
            "The `dropout` argument should be a rate in [0, 1). "
            f"Received: dropout={dropout}"
        )
    plan = _plan(model, input_size, skip)
    name = name or f"{model.name}_fcn{'_skip' if skip else ''}"
    fcn, check = _rebuild(
        model,
        plan,
        pooling=pooling,
        classifier_activation=classifier_activation,
        skip=skip,
        dropout=dropout,
        name=name,
    )
    features = Functional(fcn.inputs, fcn.get_layer("window_pool").input)
    check.min_size = _min_size(
        features, fcn.inputs[0].shape[-1], plan.native_size, plan.window
    )
    check.native_size = plan.native_size
    return fcn


def geometry(fcn):
    """The `Geometry` of an FCN made by `to_fcn` (or loaded from its save).

    The stride is measured: the final map's growth between the native size
    and twice it.
    """
    try:
        check = fcn.get_layer("min_input_size")
        window = tuple(fcn.get_layer("window_pool").pool_size)
    except ValueError:
        raise ValueError(
            f"The model '{fcn.name}' was not made by keras.applications.fcn."
            f"to_fcn. Received: fcn={fcn.name}"
        ) from None
    features = Functional(fcn.inputs, fcn.get_layer("window_pool").input)
    channels = fcn.inputs[0].shape[-1]
    rows, cols = check.native_size
    min_size, check.min_size = check.min_size, None  # Measures below it.
    try:
        small = _map_size(features, channels, rows, cols)
        large = _map_size(features, channels, 2 * rows, cols)
        min_model_size = _min_size(features, channels, (rows, cols), (1, 1))
    finally:
        check.min_size = min_size
    return Geometry(
        native_size=(rows, cols),
        min_size=tuple(min_size),
        window=window,
        stride=2 ** round(math.log2(rows / (large[0] - small[0]))),
        min_model_size=min_model_size,
    )
