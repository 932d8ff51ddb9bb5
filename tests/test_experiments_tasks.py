"""Score tasks in the framework (issue 19): `task="regression"` from each
split folder's scores.csv and `task="distribution"` from distributions.csv,
trained end to end on crops of real photos (upscaled by known factors), the
metrics and their intervals checked against SciPy, bad tables refused
before anything trains."""

import csv
import math
import os

import numpy as np
import pytest
import scipy.stats
from PIL import Image

from fcn_experiments import tasks
from fcn_experiments.cli import build_parser
from fcn_experiments.config import make_config
from fcn_experiments.data.bundled import SOURCES
from fcn_experiments.data.bundled import degrade
from fcn_experiments.data.bundled import load_rgb
from fcn_experiments.evaluation import score_statistics
from fcn_experiments.evaluation.predictions import PREDICTIONS_FILE
from fcn_experiments.models.experiments import get_experiment
from fcn_experiments.reporting import results
from fcn_experiments.runner import run_experiments

BINS = 5


def _bins(factor):
    """A 5-bin vote distribution peaked at the factor's place in 1..4."""
    centre = (factor - 1.0) / 3.0 * (BINS - 1)
    weights = np.exp(-0.5 * (np.arange(BINS) - centre) ** 2)
    return np.round(100 * weights / weights.sum()).astype(int)


def write_scored_folder(directory, count, seed):
    """`count` crops of skimage photos, each upscaled by a factor in 1..4
    (1: as it is), with scores.csv and distributions.csv."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(directory, "img"), exist_ok=True)
    photos = [load_rgb(name) for name, _ in SOURCES[:4]]
    factors = np.round(np.linspace(1.0, 4.0, count), 2)
    rows = []
    for i, factor in enumerate(rng.permutation(factors)):
        photo = photos[i % len(photos)]
        h, w = int(rng.integers(40, 64)), int(rng.integers(40, 72))
        y = int(rng.integers(0, photo.shape[0] - h))
        x = int(rng.integers(0, photo.shape[1] - w))
        crop = photo[y : y + h, x : x + w]
        if factor > 1.0:
            crop = degrade(crop, "resample", float(factor))
        name = f"img/{i:03d}.png"
        Image.fromarray(crop).save(os.path.join(directory, name))
        rows.append((name, float(factor)))
    rows.sort()
    with open(os.path.join(directory, "scores.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "score"])
        writer.writerows(rows)
    with open(os.path.join(directory, "distributions.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename"] + [f"p{k}" for k in range(1, BINS + 1)])
        for name, factor in rows:
            writer.writerow([name, *_bins(factor)])
    return dict(rows)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("scored")
    truth = {}
    for split, count, seed in (("train", 32, 0), ("test", 16, 1)):
        for name, score in write_scored_folder(
            str(root / split), count, seed
        ).items():
            truth[os.path.join(str(root / split), name)] = score
    return root, truth


def _config(root, out, **overrides):
    return make_config(
        "tiny",
        train_dir=str(root / "train"),
        test_dir=str(root / "test"),
        output_dir=str(out),
        **{"fcn_pooling": "avg", **overrides},
    )


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def regression_run(scored, tmp_path_factory):
    root, truth = scored
    out = tmp_path_factory.mktemp("regression_run")
    config = _config(root, out, task="regression", score_range=(1, 4),
                     experiments=(1, 8))
    rows = run_experiments(config, verbose=0)
    return config, rows, truth


def test_regression_run_writes_scores_and_metrics_that_scipy_confirms(
    regression_run,
):
    config, rows, truth = regression_run
    assert [row["experiment"] for row in rows] == [1, 8]
    for row in rows:
        assert row["task"] == "regression"
        folder = os.path.join(config.output_dir, get_experiment(row["experiment"]).folder)
        predictions = _read_csv(os.path.join(folder, PREDICTIONS_FILE))
        assert len(predictions) == row["test_images"] == 16
        true = np.array([float(p["true_score"]) for p in predictions])
        predicted = np.array([float(p["predicted_score"]) for p in predictions])
        # The true scores are the table's, image by image.
        np.testing.assert_allclose(
            true, [truth[p["path"]] for p in predictions], atol=1e-6
        )
        if np.unique(predicted).size > 1:
            assert row["test_srcc"] == pytest.approx(
                scipy.stats.spearmanr(true, predicted).statistic, abs=1e-5
            )
            assert row["test_plcc"] == pytest.approx(
                scipy.stats.pearsonr(true, predicted).statistic, abs=1e-5
            )
            assert row["test_krcc"] == pytest.approx(
                scipy.stats.kendalltau(true, predicted).statistic, abs=1e-5
            )
            assert row["test_srcc_low"] <= row["test_srcc"] <= row["test_srcc_high"]
        assert row["test_rmse"] == pytest.approx(
            math.sqrt(np.mean((true - predicted) ** 2)), abs=1e-5
        )
        # MSE on the very predictions written (6 decimals in the file).
        assert row["test_loss"] == pytest.approx(
            np.mean((true - predicted) ** 2), rel=1e-3, abs=1e-4
        )
        # The threshold is the middle of score_range: 2.5.
        assert row["score_threshold"] == 2.5
        assert row["test_threshold_accuracy"] == pytest.approx(
            np.mean((true > 2.5) == (predicted > 2.5))
        )
        assert "val_accuracy" not in row


def test_regression_paired_bootstrap_against_experiment_1(regression_run):
    config, rows, _ = regression_run
    by_number = {row["experiment"]: row for row in rows}
    assert by_number[1]["srcc_diff_vs_1"] == 0.0
    scores = {}
    for number in (1, 8):
        folder = os.path.join(config.output_dir, get_experiment(number).folder)
        predictions = _read_csv(os.path.join(folder, PREDICTIONS_FILE))
        scores[number] = {
            p["path"]: (float(p["true_score"]), float(p["predicted_score"]))
            for p in predictions
        }
    order = sorted(scores[1])
    true = [scores[1][k][0] for k in order]
    a = [scores[8][k][1] for k in order]
    b = [scores[1][k][1] for k in order]
    if np.unique(a).size < 2 or np.unique(b).size < 2:
        pytest.skip("a tiny model predicted one score: no SRCC to compare")
    expected = score_statistics.paired_bootstrap_difference(true, a, b, seed=0)
    row = by_number[8]
    assert row["srcc_diff_vs_1"] == pytest.approx(expected.estimate)
    assert (row["srcc_diff_low"], row["srcc_diff_high"]) == pytest.approx(
        (expected.low, expected.high)
    )
    assert row["srcc_diff_vs_1"] == pytest.approx(
        scipy.stats.spearmanr(true, a).statistic
        - scipy.stats.spearmanr(true, b).statistic,
        abs=1e-5,
    )


def test_regression_results_files_and_plots(regression_run):
    config, rows, _ = regression_run
    read = results.read_results(config.output_dir)
    assert [r["experiment"] for r in read] == [1, 8]
    assert read[1]["test_srcc"] == pytest.approx(rows[1]["test_srcc"], abs=1e-9,
                                                 nan_ok=True)
    with open(os.path.join(config.output_dir, "results.md")) as f:
        markdown = f.read()
    assert "test SRCC" in markdown and "SRCC - #1 (95%)" in markdown
    assert "paired bootstrap" in markdown
    for name in ("srcc_by_experiment.png", "predicted_vs_true.png",
                 "training_curves.png", "score_map.png"):
        assert os.path.getsize(os.path.join(config.output_dir, name)) > 1000


def test_regression_models_have_one_linear_output_pooled_as_configured(
    regression_run,
):
    import keras

    config, _, _ = regression_run
    for number in (1, 8):
        folder = os.path.join(config.output_dir, get_experiment(number).folder)
        model = keras.saving.load_model(os.path.join(folder, "best.keras"),
                                        compile=False)
        inner = getattr(model, "model", model)
        assert inner.output_shape[-1] == 1
        names = [layer.name for layer in inner.layers]
        assert "score_activation" not in names  # linear: no activation layer
        if number == 8:
            assert model.pooling == "avg"  # fcn_pooling, carried to the crops
            assert inner.get_layer("avg_pool")  # the FCN's own pooling


def test_distribution_run_uses_emd_and_reports_mean_scores(scored, tmp_path):
    root, truth = scored
    config = _config(root, tmp_path, task="distribution", experiments=(8,))
    rows = run_experiments(config, verbose=0)
    for row in rows:
        assert row["task"] == "distribution"
        folder = os.path.join(tmp_path, get_experiment(row["experiment"]).folder)
        predictions = _read_csv(os.path.join(folder, PREDICTIONS_FILE))
        q = np.array([[float(p[f"p_p{k}"]) for k in range(1, BINS + 1)]
                      for p in predictions])
        np.testing.assert_allclose(q.sum(axis=1), 1, atol=1e-5)
        np.testing.assert_allclose(
            [float(p["predicted_score"]) for p in predictions],
            q @ np.arange(1, BINS + 1), atol=1e-5)
        # The true score is the mean of the table's distribution.
        for p in predictions:
            votes = _bins(truth[p["path"]])
            assert float(p["true_score"]) == pytest.approx(
                votes @ np.arange(1, BINS + 1) / votes.sum(), abs=1e-5)
        # EMD (r=2) per image, by the CDF formula, and its mean.
        true = np.array([_bins(truth[p["path"]]) for p in predictions], float)
        true /= true.sum(axis=1, keepdims=True)
        cdf_gap = np.cumsum(true, axis=1) - np.cumsum(q, axis=1)
        per_image = np.sqrt(np.mean(cdf_gap**2, axis=1))
        np.testing.assert_allclose(
            [float(p["emd"]) for p in predictions], per_image, atol=1e-5)
        assert row["test_emd"] == pytest.approx(per_image.mean(), abs=1e-5)
        # The test loss is Keras' EMD of the same predictions.
        assert row["test_loss"] == pytest.approx(per_image.mean(), abs=1e-4)
    with open(os.path.join(tmp_path, "results.md")) as f:
        assert "| EMD |" in f.read()


def test_score_tasks_leave_classification_fingerprints_unchanged(tmp_path):
    classification = make_config("tiny", output_dir=str(tmp_path))
    assert "task" not in classification.fingerprint()
    regression = make_config("tiny", output_dir=str(tmp_path), task="regression")
    fingerprint = regression.fingerprint()
    assert fingerprint["task"] == "regression"
    # The bundled dataset's scores (log2 of its factors) are the default
    # range.
    assert fingerprint["score_range"] == [0.0, 3.0]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(task="ranking"), "`task` must be one of"),
        (dict(task="distribution"), "bundled dataset has one score"),
        (dict(task="regression", score_range=(4, 1)), "LOW < HIGH"),
        (dict(task="regression", score_threshold="five"), "finite number"),
        (dict(task="regression", regression_loss="l1"), "regression_loss"),
        (dict(task="regression", num_classes=2), "num_classes"),
    ],
)
def test_bad_task_settings_are_one_line_errors(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message) as raised:
        make_config("tiny", output_dir=str(tmp_path), **overrides)
    assert "\n" not in str(raised.value)


def test_distribution_refuses_max_pooling(scored, tmp_path):
    root, _ = scored
    with pytest.raises(ValueError, match="fcn_pooling='avg'"):
        _config(root, tmp_path, task="distribution", fcn_pooling="max")


def _copy_tree(root, tmp_path):
    import shutil

    target = tmp_path / "data"
    shutil.copytree(root, target)
    return target


def _edit_table(folder, edit):
    path = os.path.join(folder, "scores.csv")
    rows = _read_csv(path)
    rows = edit(rows)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["filename", "score"])
        writer.writeheader()
        writer.writerows(rows)


def _set(index, **values):
    def edit(rows):
        rows[index].update(values)
        return rows

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set(3, score="nan"), "not a finite number"),
        (_set(3, filename="img/missing.png"), "missing.png"),
        (lambda rows: rows + [rows[0]], "listed again|duplicate"),
        (_set(3, score="7.5"), "outside|range"),
        (lambda rows: [dict(r, score="2.0") for r in rows], "same score"),
    ],
    ids=["nan", "missing file", "duplicate", "out of range", "one score"],
)
def test_bad_score_tables_stop_the_run_before_training(
    scored, tmp_path, edit, message
):
    root, _ = scored
    data = _copy_tree(root, tmp_path)
    _edit_table(str(data / "train"), edit)
    out = tmp_path / "out"
    config = _config(data, out, task="regression", score_range=(1, 4),
                     experiments=(2,))
    with pytest.raises(ValueError, match=message) as raised:
        run_experiments(config, verbose=0)
    assert "\n" not in str(raised.value)
    assert not os.path.exists(
        os.path.join(str(out), get_experiment(2).folder, "training_log.csv")
    )


def test_missing_or_misshapen_table_names_the_file(scored, tmp_path):
    root, _ = scored
    data = _copy_tree(root, tmp_path)
    os.remove(data / "test" / "scores.csv")
    with pytest.raises(ValueError, match="scores.csv") as raised:
        tasks.get("regression").label_columns(str(data / "test"))
    assert "task='classification'" in str(raised.value)
    path = data / "train" / "scores.csv"
    rows = _read_csv(path)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "score", "votes"])
        writer.writerows([r["filename"], r["score"], 3] for r in rows)
    with pytest.raises(ValueError, match="one score column"):
        tasks.get("regression").label_columns(str(data / "train"))
    # A distribution's bins are the other table's columns.
    assert tasks.get("distribution").label_columns(str(data / "train")) == [
        f"p{k}" for k in range(1, BINS + 1)]


def test_notebook_runs_a_regression_on_the_bundled_data(tmp_path):
    import json

    import papermill

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = str(tmp_path)
    papermill.execute_notebook(
        os.path.join(root, "FCN_demo.ipynb"),
        os.path.join(out, "executed.ipynb"),
        parameters={"PROFILE": "tiny", "TASK": "regression",
                    "EXPERIMENTS": [1, 3], "OUTPUT_DIR": out},
        kernel_name="python3",
        cwd=root,
        progress_bar=False,
    )
    rows = results.read_results(out)
    assert [row["experiment"] for row in rows] == [1, 3]
    assert {row["task"] for row in rows} == {"regression"}
    with open(os.path.join(out, "executed.ipynb")) as f:
        text = json.dumps(json.load(f)["cells"])
    # The score table, what its intervals mean, and the two score figures.
    assert "test SRCC" in text and "paired bootstrap" in text
    assert text.count("image/png") >= 3


def test_cli_takes_the_task_flags():
    args = build_parser().parse_args(
        ["run", "--task", "regression", "--score-range", "1", "10",
         "--score-threshold", "5", "--regression-loss", "huber"]
    )
    assert args.task == "regression"
    assert args.score_range == [1.0, 10.0]
    assert args.score_threshold == 5.0
    assert args.regression_loss == "huber"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--task", "ranking"])


def test_a_bad_table_is_one_line_from_the_command_line(scored, tmp_path, capsys):
    """The table is checked before anything reads it (the threshold is the
    median of the training scores here): one line, no traceback."""
    from fcn_experiments import cli

    root, _ = scored
    data = _copy_tree(root, tmp_path)
    _edit_table(str(data / "train"), _set(3, score="nan"))
    status = cli.main(
        ["run", "--profile", "tiny", "--task", "regression",
         "--train-dir", str(data / "train"), "--test-dir", str(data / "test"),
         "--output-dir", str(tmp_path / "out"), "--experiments", "2",
         "--fcn-pooling", "avg", "--quiet"]
    )
    err = capsys.readouterr().err.strip()
    assert status == 1
    assert err.startswith("error: ") and "not a finite number" in err
    assert "\n" not in err and "Traceback" not in err
