"""FCN_demo.ipynb run headless with the tiny profile, then the skip of
finished experiments, `force`, and the refusal to mix settings."""

import csv
import math
import os
import re

import nbformat
import pytest

import fcn_experiments
from fcn_experiments.evaluation import classification as scored_test_set
from fcn_experiments.models.experiments import EXPERIMENTS
from fcn_experiments.reporting import plots
from fcn_experiments.training import records as training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "FCN_demo.ipynb")


@pytest.fixture(scope="module")
def notebook_run(tiny_notebook_run):
    """The notebook executed once (tests/conftest.py); its output folder."""
    return tiny_notebook_run


def _tiny(out, **overrides):
    return fcn_experiments.make_config("tiny", output_dir=out, **overrides)


def test_notebook_holds_only_parameters_calls_and_plots():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    definitions = re.compile(r"^\s*(def|class)\s", re.MULTILINE)
    assert not any(definitions.search(cell.source) for cell in code)


def test_notebook_writes_nine_finite_results_and_the_figures(notebook_run):
    rows = fcn_experiments.read_results(notebook_run)
    assert [row["experiment"] for row in rows] == list(range(1, 10))
    for row in rows:
        for field in (
            "val_accuracy",
            "test_accuracy",
            "test_loss",
            "train_images_per_s",
            "wall_time_s",
        ):
            assert math.isfinite(row[field]), (row["experiment"], field)
        assert 0.0 <= row["test_accuracy"] <= 1.0
        assert row["weights"] == "random"
        assert row["epochs"] == 1
    sizes = {row["experiment"]: row["input_size"] for row in rows}
    assert sizes[1] == sizes[2] == 32 and sizes[5] == 96
    assert {rows[i]["resize_mode"] for i in (5, 6, 7)} == {
        "crop",
        "pad",
        "multicrop",
    }
    for name in (
        plots.ACCURACY_PNG,
        plots.CURVES_PNG,
        plots.SCORE_MAP_PNG,
        "results.md",
    ):
        path = os.path.join(notebook_run, name)
        assert os.path.getsize(path) > 1000, name
    executed = nbformat.read(
        os.path.join(notebook_run, "FCN_demo.executed.ipynb"), as_version=4
    )
    images = [
        output
        for cell in executed.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    # The three figures, then the heatmaps of the four test images that the
    # closing cell scores with the best FCN.
    assert len(images) == 3 + 4
    scored = executed.cells[-1].outputs[0]["data"]["text/markdown"]
    assert scored.count(".png |") == 4 and "p(degraded)" in scored


def test_per_image_predictions_and_their_statistics(notebook_run):
    rows = fcn_experiments.read_results(notebook_run)
    reference = None
    for row in rows:
        folder = os.path.join(notebook_run, EXPERIMENTS[row["experiment"] - 1].folder)
        with open(os.path.join(folder, scored_test_set.PREDICTIONS_FILE)) as f:
            predictions = list(csv.DictReader(f))
        assert len(predictions) == row["test_images"]
        # The table's accuracy is the file's.
        correct = sum(p["true_class"] == p["predicted_class"] for p in predictions)
        assert correct == round(row["test_accuracy"] * row["test_images"])
        for p in predictions:
            scores = [float(p[k]) for k in p if k.startswith("p_")]
            assert all(0.0 <= s <= 1.0 for s in scores)
            # Max-pooled heads' scores need not sum to 1; the prediction is
            # still the top score.
            top = max(range(len(scores)), key=scores.__getitem__)
            assert p["predicted_class"] == list(p)[3 + top][2:]
        paths = sorted(p["path"] for p in predictions)
        reference = reference or paths
        assert paths == reference  # The same test images for all nine.
        assert row["test_ci_low"] <= row["test_accuracy"] <= row["test_ci_high"]
        # Loss as Keras computes it from the same scores.
        assert math.isfinite(row["test_loss"]) and row["test_loss"] > 0
        assert 0.0 <= row["mcnemar_p_vs_1"] <= 1.0
    assert rows[0]["mcnemar_p_vs_1"] == 1.0
    assert "adam" in rows[0]["recipe"] or "sgd" in rows[0]["recipe"]


def test_rerun_skips_finished_experiments(notebook_run, capsys):
    results = [
        os.path.join(notebook_run, e.folder, training.RESULT_FILE)
        for e in EXPERIMENTS
    ]
    before = [os.stat(path).st_mtime_ns for path in results]
    accuracies = [
        row["test_accuracy"]
        for row in fcn_experiments.read_results(notebook_run)
    ]
    rows = fcn_experiments.run_experiments(
        _tiny(notebook_run), plots_to_make=False
    )
    assert [os.stat(path).st_mtime_ns for path in results] == before
    assert capsys.readouterr().out.count("skipped") == 9
    assert [row["test_accuracy"] for row in rows] == accuracies


def test_settings_change_is_refused(notebook_run):
    with pytest.raises(RuntimeError, match="epochs: 1 -> 2.*force=True"):
        fcn_experiments.run_experiments(
            _tiny(notebook_run, epochs=2, experiments=(3,)), plots_to_make=False
        )


def test_force_reruns_only_the_selected_experiments(notebook_run):
    folders = [os.path.join(notebook_run, e.folder) for e in EXPERIMENTS]
    before = [
        os.stat(os.path.join(f, training.RESULT_FILE)).st_mtime_ns
        for f in folders
    ]
    fcn_experiments.run_experiments(
        _tiny(notebook_run, experiments=(2,), force=True),
        plots_to_make=False,
        verbose=0,
    )
    after = [
        os.stat(os.path.join(f, training.RESULT_FILE)).st_mtime_ns
        for f in folders
    ]
    assert after[1] != before[1]
    assert after[:1] + after[2:] == before[:1] + before[2:]
    # The table still lists all nine: the others finished with these settings.
    assert len(fcn_experiments.read_results(notebook_run)) == 9
