"""The FCN's head on the backbone's final feature map, and its skip branch.

`fcn_top` is the original classifier's top as convolutions followed by
the `pooling` head (see `fcn_conversion` for what each pooling computes);
`skip_branch` adds the finer features of an early layer (`*_fcn_skip`);
`score_head` is the `pooling` head on the logits map (also `fcn.to_fcn`'s).
"""

from keras.src import activations
from keras.src import layers
from keras.src.applications.fcn_layers import AdaptiveAveragePooling2D
from keras.src.applications.fcn_layers import MinSizeZeroPadding2D

# The head's dtype policy, whatever the global one (see `fcn_top`).
HEAD_DTYPE = "float32"


def skip_branch(early, features):
    """Adds a skip connection from an early feature map to the final one.

    The skip branch (experiment #9 of the original distribution, redesigned):
    `skip_reduce`, a 1x1 conv with ReLU, halves the early map's channels;
    `skip_pool` average-pools it adaptively to the final map's rows and cols
    (the original's fixed 65x65 pool failed below 336 px; this works at every
    size the backbone accepts); `skip_project`, a 1x1 conv, maps it to the
    final map's channels; `skip_add` adds it to the final feature map, which
    then feeds the top as usual.

    `skip_project` starts at zero (kernel and bias), so a skip model starts
    out computing exactly its plain FCN, including the converted pretrained
    top, and learns how much of the finer features to use: the zero-init
    residual branch of Goyal et al. (2017). Its gradient is not zero, so it
    moves away from zero on the first step.
    """
    channels = features.shape[-1]
    reduced = max(8, early.shape[-1] // 2)
    x = layers.Conv2D(reduced, 1, activation="relu", name="skip_reduce")(early)
    x = AdaptiveAveragePooling2D(name="skip_pool")([x, features])
    x = layers.Conv2D(
        channels,
        1,
        kernel_initializer="zeros",
        bias_initializer="zeros",
        name="skip_project",
    )(x)
    return layers.Add(name="skip_add")([features, x])


def fcn_top(
    spec, x, *, pooling, classes, classifier_activation, dropout, window=None
):
    """The converted top and the head, on the final feature map `x`.

    `window`: `(rows, cols)` of the map the original flattens; by default
    `spec.flatten_size` square.
    """
    if spec.flatten_size is not None:
        window = window or (spec.flatten_size, spec.flatten_size)
        x = MinSizeZeroPadding2D(window, name="fc1_pad")(x)
        for name, units in spec.hidden_dense:
            x = layers.Conv2D(units, window, activation="relu", name=name)(x)
            window = (1, 1)
    elif pooling == "avg":
        # Averaging the 1x1 conv's logits = the 1x1 conv of averaged features.
        x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="top_dropout")(x)
    # From `predictions` on, float32 under any policy: a mixed-precision
    # model outputs float32 scores (softmax and loss stay accurate).
    x = layers.Conv2D(classes, 1, name="predictions", dtype=HEAD_DTYPE)(x)

    return score_head(
        x,
        pooling=pooling,
        classifier_activation=classifier_activation,
        averaged=spec.flatten_size is None,
    )


def score_head(x, *, pooling, classifier_activation, averaged=False):
    """The FCN's `pooling` head on the logits map `x` (float32 under any
    policy).

    `"avg"`: the logits averaged over the positions (`avg_pool`), then the
    activation; with `averaged`, `x` is already averaged (1x1) and is only
    flattened. `"max"`: the activation per position, then `max_pool`, the
    maximum per class. `None`: the activated score map.
    """
    activation = activations.get(classifier_activation)
    has_activation = activation is not activations.linear
    if pooling == "avg":
        if averaged:
            x = layers.Flatten(name="flatten", dtype=HEAD_DTYPE)(x)
        else:
            x = layers.GlobalAveragePooling2D(name="avg_pool", dtype=HEAD_DTYPE)(
                x
            )
    if has_activation:
        x = layers.Activation(
            classifier_activation, name="score_activation", dtype=HEAD_DTYPE
        )(x)
    if pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool", dtype=HEAD_DTYPE)(x)
    return x
