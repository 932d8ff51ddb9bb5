"""The score map of a trained FCN: its per-position class probabilities.

The one way the framework gets it (the `predict` heatmaps and the run's
score-map figure): taken from the FCN's own graph, so no model is rebuilt
and no weights are copied.
"""

from fcn_experiments.errors import ModelSourceError


def score_map_model(fcn):
    """The FCN with a second output: its per-position class probabilities.

    For `pooling="max"` heads that is the map the maximum is taken over;
    for `pooling="avg"` heads, the per-position logits (for GAP backbones
    the `predictions` 1x1 conv applied before the averaging) through the
    head's activation. Either way, what a `pooling=None` twin of the FCN
    with the same activation outputs.

    Returns:
        A `keras.Model` with outputs `[scores, score_map]`, the map
        `(batch, rows, cols, classes)`.
    """
    import keras

    names = {layer.name for layer in fcn.layers}
    if "max_pool" in names:
        score_map = fcn.get_layer("max_pool").input
    elif "avg_pool" in names:
        pool = fcn.get_layer("avg_pool")
        predictions = fcn.get_layer("predictions")
        x = pool.input
        if x.shape[-1] != predictions.filters:  # Features: a GAP backbone.
            x = predictions(x)
        if "score_activation" in names:
            x = fcn.get_layer("score_activation")(x)
        score_map = x
    else:
        raise ModelSourceError(
            f"{fcn.name} has no max_pool or avg_pool head layer: it is not "
            "an FCN from keras.applications.*_fcn, so it has no score map "
            "to draw. Score it without --heatmaps."
        )
    return keras.Model(fcn.inputs, [fcn.outputs[0], score_map])
