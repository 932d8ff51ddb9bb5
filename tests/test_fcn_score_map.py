"""The score-map heatmap overlay writes a real PNG."""

import numpy as np
import pytest
from PIL import Image

import keras

from fcn_model_helpers import FAMILIES


@pytest.fixture(scope="module")
def rocket_and_scores():
    image = np.asarray(Image.open("test_image.jpg").convert("RGB"))
    module = FAMILIES["MobileNetV2"][1]
    model = module.MobileNetV2_fcn(
        weights=None, alpha=0.35, classes=4, pooling=None
    )
    scores = model.predict_on_batch(
        module.preprocess_input(image[None].astype("float32"))
    )
    return image, scores


def test_overlay_writes_png(rocket_and_scores, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    image, scores = rocket_and_scores
    assert 1 < scores.shape[1] < scores.shape[2]  # A 427x640 photo.
    ax = keras.visualization.overlay_score_map(
        image, scores, class_index=2, alpha=0.6
    )
    heatmap = ax.images[-1].get_array()
    np.testing.assert_array_equal(heatmap, scores[0, :, :, 2])
    assert ax.images[-1].get_extent() == [0, image.shape[1], image.shape[0], 0]

    path = tmp_path / "heatmap.png"
    ax.figure.savefig(path)
    with_heatmap = np.asarray(Image.open(path).convert("RGB"))
    assert Image.open(path).format == "PNG"

    ax.images[-1].set_alpha(0.0)  # The same figure without the heatmap.
    ax.figure.savefig(tmp_path / "plain.png")
    plain = np.asarray(Image.open(tmp_path / "plain.png").convert("RGB"))
    assert with_heatmap.shape == plain.shape
    assert np.abs(with_heatmap.astype(int) - plain).mean() > 1
    matplotlib.pyplot.close(ax.figure)


def test_overlay_checks_its_arguments(rocket_and_scores):
    image, scores = rocket_and_scores
    overlay = keras.visualization.overlay_score_map
    with pytest.raises(ValueError, match="class_index=4"):
        overlay(image, scores, class_index=4)
    with pytest.raises(ValueError, match=r"score_map.shape=\(1, 4\)"):
        overlay(image, scores.max(axis=(1, 2)), class_index=0)
