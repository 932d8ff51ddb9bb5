"""A few test images of a run scored by its best FCN, with heatmaps: the
demo's example of `predict`."""

import dataclasses
import os

import numpy as np

from fcn_experiments import tasks
from fcn_experiments.data.listing import list_images
from fcn_experiments.errors import ModelSourceError

EXAMPLES_DIR = "predict_examples"


def score_test_examples(output_dir, *, count=4, rows=None, verbose=0):
    """Scores `count` test images with the run's best FCN on validation.

    The images are spread evenly over the sorted test set (so over its
    classes); their heatmaps go to `<output_dir>/predict_examples/`.

    Args:
        output_dir: a run's output folder.
        count: how many test images.
        rows: the run's result rows (default: its results.csv).

    Returns:
        `(source, scores)`: the `ModelSource` and an `ImageScore` per image.
    """
    from fcn_experiments.data.pipelines import resolve_folders
    from fcn_experiments.models.experiments import best_fcn_row
    from fcn_experiments.models.experiments import get_experiment
    from fcn_experiments.predict.images import predict_images
    from fcn_experiments.predict.model_source import config_of_folder
    from fcn_experiments.predict.model_source import resolve_model_source
    from fcn_experiments.reporting.results import read_results

    rows = rows if rows is not None else read_results(output_dir)
    selection = tasks.get(rows[0].get("task") if rows else None).selection
    row = best_fcn_row(rows, selection)
    if row is None:
        raise ModelSourceError(
            f"{output_dir} holds no finished FCN experiment (#2-#9) to score "
            "with. Run one first."
        )
    folder = os.path.join(output_dir, get_experiment(row["experiment"]).folder)
    config = dataclasses.replace(config_of_folder(folder), output_dir=output_dir)
    paths, _ = list_images([resolve_folders(config).test])
    picks = np.unique(np.linspace(0, len(paths) - 1, count).round().astype(int))
    source = resolve_model_source(folder)
    scores, _ = predict_images(
        source,
        [paths[i] for i in picks],
        heatmaps=os.path.join(output_dir, EXAMPLES_DIR),
        verbose=verbose,
    )
    return source, scores
