"""Docstring templates of the `*_fcn` modules' builders and `to_fcn`.

One text for the five backbones, filled in from each `BackboneSpec` by
`format_docs`, as Keras' applications reuse theirs.
"""


BUILDER_DOC = """Instantiates {name} as a fully convolutional network{skip}.

    The Keras `{name}` classifier with its top turned into convolutions:
    it takes images of any size from {min_size}x{min_size} up and scores
    every position of its final feature map. The module `fcn_conversion`
    documents the conversion and the exact head semantics.{skip_doc}

    Args:
        weights: `None` (random initialization), `"imagenet"` (Keras'
            ImageNet weights with the top: the file Keras caches in
            `$KERAS_HOME/models`, downloaded there as Keras does when
            missing; offline, the error says which file goes where), or the
            path to a weights file laid out like
            `keras.applications.{name}(include_top=True, classes=classes)`'s
            (legacy `.h5` or `.weights.h5`), converted on load. A file with
            ImageNet's 1000 classes also loads for another `classes`. With
            `classes != 1000`, everything but `predictions` keeps the loaded
            weights (the VGGs' `fc1` and `fc2` too).
        input_tensor: optional Keras tensor to use as image input.
        input_shape: `(rows, cols, 3)`, rows and cols may be `None` (the
            default: any size). Each must be at least {min_size}.
        pooling: `"max"` (default): the activation per position, then the
            global maximum per class. `None`: the activated score map
            `(batch, rows, cols, classes)`. `"avg"`: the logits averaged
            over the positions, then the activation; this equals the
            original {avg_note}. A regression head's score is the mean of
            the positions' (`"avg"`) or the best position's (`"max"`); a
            distribution head takes `"avg"` (per-bin maxima do not sum
            to 1).
        classes: number of classes; 1 with a linear activation for a
            regression head (one score, e.g. a mean opinion score), K
            with `"softmax"` for a score distribution over K bins (NIMA).
        classifier_activation: activation of the scores, e.g. `"softmax"`;
            `None` or `"linear"` for logits (a regression head's scores).
        dropout: rate of a Dropout before `predictions` (0: none).{extra_args}
        name: the model's name.

    Returns:
        A `keras.Model`.
"""

SKIP_DOC = """

    Skip variant: a branch from `{skip_layer}` is added to the final feature
    map (1x1 conv, adaptive average pooling to the final map's size, and a
    zero-initialised 1x1 projection, see `fcn_head.skip_branch`), so
    the model starts out computing exactly the plain FCN's scores."""

TO_FCN_DOC = """Turns a built `keras.applications.{name}` into its FCN twin.

    The original (`include_top=True`, any `classes`, possibly trained, e.g.
    with a Dropout inserted before `predictions`) is rebuilt as
    `{name}_fcn` (or `{name}_fcn_skip`) and its weights copied, the top's
    Dense kernels reshaped to convs. With the defaults the twin gives the
    same outputs as the original {avg_note}.

    Args:
        model: the original Keras model.
        pooling: `"avg"` (default), `"max"` or `None`, as for `{name}_fcn`.
        classifier_activation: `None` (default) takes the activation of the
            model's `predictions` layer (none for an original built with
            `classifier_activation="linear"`, e.g. a 1-unit regression
            head: the FCN outputs its scores); pass `"linear"` for logits.
        skip: `True` returns the skip variant, its skip branch freshly
            initialised (it starts equal to the plain FCN).
        dropout: rate of a Dropout before `predictions` (0: none).
        name: the FCN's name; default `<model name>_fcn` (`_fcn_skip`).

    Returns:
        A `keras.Model` with its own copy of the weights.
"""


def format_docs(spec, *, extra_args=""):
    """The docstrings of a backbone module's builders and `to_fcn`."""
    avg_note = (
        f"at its native size, {spec.default_size}x{spec.default_size}"
        if spec.flatten_size
        else "at any input size"
    )
    common = dict(
        name=spec.name,
        min_size=spec.min_size,
        avg_note=avg_note,
        extra_args=extra_args,
    )
    plain = BUILDER_DOC.format(skip="", skip_doc="", **common)
    skip = BUILDER_DOC.format(
        skip=" with a skip connection",
        skip_doc=SKIP_DOC.format(skip_layer=spec.skip_layer),
        **common,
    )
    convert = TO_FCN_DOC.format(name=spec.name, avg_note=avg_note)
    return plain, skip, convert
