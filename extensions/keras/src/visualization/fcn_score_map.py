"""Overlay of an FCN score map on its image, as a heatmap."""

import numpy as np

from keras.src import ops


def overlay_score_map(
    image, score_map, class_index, ax=None, alpha=0.5, cmap="jet"
):
    """Draws `image` with the score map of one class over it, as a heatmap.

    The score map of an FCN model built with `pooling=None` has one score per
    position of its final feature map; it is stretched over the whole image
    (cell `(i, j)` of an `h x w` map covers rows `i*H/h .. (i+1)*H/h` and cols
    `j*W/w .. (j+1)*W/w`) and smoothed bilinearly, the usual class-activation
    display. Requires matplotlib.

    Example:

    ```python
    model = keras.applications.VGG16_fcn(pooling=None)
    scores = model.predict(keras.applications.vgg16_fcn.preprocess_input(
        image[None].astype("float32")))
    ax = keras.visualization.overlay_score_map(image, scores, class_index=403)
    ax.figure.savefig("heatmap.png")
    ```

    Args:
        image: the image the scores were computed for (before
            preprocessing): `(rows, cols, 3)` or `(rows, cols)` array,
            `uint8` in [0, 255] or float in [0, 1] or [0, 255], or a PIL image.
        score_map: the model's output for that image, `(1, h, w, classes)`
            or `(h, w, classes)`.
        class_index: the class whose scores are drawn.
        ax: the matplotlib `Axes` to draw on; by default a new figure's.
        alpha: opacity of the heatmap, in [0, 1].
        cmap: matplotlib colormap of the heatmap.

    Returns:
        The `Axes`; `ax.images[-1]` is the heatmap (e.g. for a colorbar).
    """
    import matplotlib.pyplot as plt  # Lazily: only this helper needs it.

    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(
            "`image` should be (rows, cols, channels) or (rows, cols). "
            f"Received: image.shape={image.shape}"
        )
    if image.dtype.kind == "f" and image.size and image.max() > 1:
        image = np.clip(image, 0, 255) / 255.0  # imshow takes floats in [0, 1].
    scores = np.asarray(ops.convert_to_numpy(score_map))
    if scores.ndim == 4 and scores.shape[0] == 1:
        scores = scores[0]
    if scores.ndim != 3:
        raise ValueError(
            "`score_map` should be the (1, h, w, classes) or (h, w, classes) "
            "output of an FCN model built with pooling=None. "
            f"Received: score_map.shape={np.shape(score_map)}"
        )
    classes = scores.shape[-1]
    if not (
        isinstance(class_index, (int, np.integer))
        and 0 <= class_index < classes
    ):
        raise ValueError(
            f"`class_index` should be an integer in [0, {classes}). "
            f"Received: class_index={class_index}"
        )
    if not 0 <= alpha <= 1:
        raise ValueError(
            f"`alpha` should be in [0, 1]. Received: alpha={alpha}"
        )

    if ax is None:
        _, ax = plt.subplots()
    rows, cols = image.shape[:2]
    extent = (0, cols, rows, 0)  # The same pixel frame for both layers.
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, extent=extent)
    ax.imshow(
        scores[:, :, class_index],
        cmap=cmap,
        alpha=alpha,
        extent=extent,
        interpolation="bilinear",
    )
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)
    ax.set_axis_off()
    return ax
