"""`predict` and `export` of score models: Keras' own MobileNetV2 (alpha
0.35, random weights) with one linear output (regression) or a softmax over
10 bins (distribution), converted by `to_fcn`, saved as `.keras` with its
`.json`, scored by the CLI on real photos and compared with the model's own
outputs on the same pixels (the training loaders' native mode)."""

import csv
import json
import os

import numpy as np
import pytest

import keras
import tensorflow as tf

from fcn_experiments import cli
from fcn_experiments.config import Config
from fcn_experiments.evaluation import score_statistics
from fcn_experiments.models.experiments import get_experiment
from fcn_experiments.models.score_map import score_map_model
from fcn_experiments.predict.heatmaps import heatmap_of
from fcn_experiments.predict.images import predict_images
from fcn_experiments.predict.model_source import ModelSource
from fcn_experiments.predict.model_source import ModelSourceError
from fcn_experiments.predict.model_source import resolve_model_source
from fcn_experiments.predict.model_source import save_best_model
from fcn_experiments.predict.model_source import write_info
from fcn_experiments.predict.reports import scores_markdown
from fcn_model_helpers import calibrate_batch_norm
from fcn_model_helpers import photos
from loader_test_images import photo

SIZE = 48  # The shorter side predict gives each image.
BINS = 10
PHOTOS = ("rocket", "coffee", "chelsea_portrait", "motorcycle_wide")
# predict's graph (preprocessing inside its tf.function, images batched by
# shape) and Keras' predict_on_batch of one image fuse float32 ops
# differently: their outputs were measured up to 5e-5 apart on an AMD EPYC
# and 1.2e-4 on an Intel Xeon with AMX, whose oneDNN kernels sum in another
# order (the scores spread over several units).
TOLERANCE = 3e-4


def _fcn(classes, activation, seed):
    keras.utils.set_random_seed(seed)
    original = keras.applications.MobileNetV2(
        include_top=True,
        weights=None,
        input_shape=(32, 32, 3),
        classes=classes,
        classifier_activation=activation,
        alpha=0.35,
    )
    # With Keras' default statistics a random MobileNetV2 gives every image
    # the same output: that would test nothing.
    calibrate_batch_norm(original, photos("MobileNetV2", 32, 32, count=4), seed)
    return keras.applications.mobilenet_v2_fcn.to_fcn(original, pooling="avg")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """`{task: (fcn, path of its .keras)}`, each with its `.json`."""
    folder = tmp_path_factory.mktemp("models")
    built = {}
    for task, classes, activation, names in (
        ("regression", 1, "linear", ["score"]),
        ("distribution", BINS, "softmax", [str(k) for k in range(1, 11)]),
    ):
        model = _fcn(classes, activation, seed=len(built))
        path = str(folder / f"{task}.keras")
        model.save(path)
        write_info(
            path,
            ModelSource(model, "mobilenet_v2", SIZE, names, task, task=task),
        )
        built[task] = model, path
    return built


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A folder of real photos of several aspect ratios, and a corrupt file."""
    folder = tmp_path_factory.mktemp("to_score")
    photo_dir = folder / "photos"
    photo_dir.mkdir()
    for name in PHOTOS:
        photo(name).save(photo_dir / f"{name}.png")
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    return str(photo_dir), str(corrupt)


@pytest.fixture(scope="module")
def native_outputs(models, images):
    """`{task: {file name: the model's own output}}` on the pixels of the
    training loaders' native mode at SIZE."""
    folder, _ = images
    dataset = keras.utils.fcn_image_dataset_from_directory(
        folder,
        labels=None,
        image_size=SIZE,
        resize_mode="native",
        batch_size=None,
        shuffle=False,
    )
    preprocess = keras.applications.mobilenet_v2.preprocess_input
    outputs = {task: {} for task in models}
    for path, image in zip(dataset.file_paths, dataset.as_numpy_iterator()):
        assert min(image.shape[:2]) == SIZE
        for task, (model, _) in models.items():
            x = preprocess(image[None].astype("float32"))
            outputs[task][os.path.basename(path)] = model.predict_on_batch(x)[0]
    assert len(outputs["regression"]) == len(PHOTOS)
    return outputs


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _predict_cli(model_path, images, tmp_path, *extra):
    folder, corrupt = images
    output = str(tmp_path / "scores.csv")
    heatmaps = str(tmp_path / "heatmaps")
    status = cli.main(
        ["predict", model_path, folder, corrupt, "--output", output,
         "--heatmaps", heatmaps, "--batch-size", "2", "--quiet", *extra]
    )
    with open(output, newline="") as f:
        header = next(csv.reader(f))
    return status, header, {
        os.path.basename(row["path"]): row for row in _read_csv(output)
    }


def test_regression_scores_are_the_models_own_outputs(
    models, images, native_outputs, tmp_path
):
    status, header, rows = _predict_cli(
        models["regression"][1], images, tmp_path
    )
    assert status == 1  # The corrupt file.
    assert header == [
        "path", "width", "height", "score", "scales", "error", "heatmap"
    ]
    expected = native_outputs["regression"]
    for name, output in expected.items():
        row = rows[name]
        assert row["error"] == "" and row["scales"] == "1"
        assert abs(float(row["score"]) - float(output[0])) <= TOLERANCE, name
        assert os.path.isfile(row["heatmap"])
    scores = [float(rows[name]["score"]) for name in expected]
    # Raw outputs, not normalized (which gave 1.0 for every image).
    assert len(set(scores)) == len(scores) and 1.0 not in scores
    bad = rows["corrupt.png"]
    assert bad["score"] == "" and "corrupt.png" in bad["error"]


def test_distribution_score_is_the_mean_over_bins(
    models, images, native_outputs, tmp_path
):
    status, header, rows = _predict_cli(
        models["distribution"][1], images, tmp_path
    )
    assert status == 1
    bins = [f"p_{k}" for k in range(1, BINS + 1)]
    assert header == (
        ["path", "width", "height", "score", "std"]
        + bins
        + ["scales", "error", "heatmap"]
    )
    values = np.arange(1, BINS + 1)
    for name, output in native_outputs["distribution"].items():
        row = rows[name]
        p = output / output.sum()
        got = np.array([float(row[b]) for b in bins])
        np.testing.assert_allclose(got, p, atol=TOLERANCE)
        score, std = float(row["score"]), float(row["std"])
        assert abs(score - float(p @ values)) <= TOLERANCE
        expected_std = np.sqrt(p @ (values - p @ values) ** 2)
        # Its far bins' small probabilities weigh up to (K - 1)^2: the
        # graphs' differences come out larger (1.6e-4 was measured).
        assert abs(std - expected_std) <= 5 * TOLERANCE
        # The written bins give the written score (6 decimals each).
        assert abs(score - float(got @ values)) <= 3e-5
        assert os.path.isfile(row["heatmap"])
    assert rows["corrupt.png"]["std"] == "" and rows["corrupt.png"]["error"]


def test_multi_scale_averages_raw_scores(models, images):
    folder, _ = images
    files = [os.path.join(folder, f"{name}.png") for name in PHOTOS[:3]]
    for task in models:
        source = resolve_model_source(models[task][1])
        assert source.task == task
        single = {}
        for scale in (1.0, 1.5):
            scored, _ = predict_images(
                source, files, scales=(scale,), batch_size=2, verbose=0
            )
            single[scale] = np.array([row.score for row in scored])
        scored, stats = predict_images(
            source, files, scales=(1.0, 1.5), batch_size=2, verbose=0
        )
        assert stats["failed"] == 0 and stats["traces"] == 1
        both = np.array([row.score for row in scored])
        assert not np.allclose(single[1.0], single[1.5])
        np.testing.assert_allclose(
            both, (single[1.0] + single[1.5]) / 2, atol=1e-6
        )


def test_heatmaps_of_score_models(models):
    """Regression: the map of the score (its average over positions is the
    score: a linear head). Distribution: the per-position mean score."""
    x = photos("MobileNetV2", 64, 96, count=1)
    model, _ = models["regression"]
    score, score_map = score_map_model(model)(x, training=False)
    score = keras.ops.convert_to_numpy(score)[0]
    drawn, index, title = heatmap_of(
        "regression", keras.ops.convert_to_numpy(score_map)[0], score, ["score"]
    )
    assert drawn.shape == (2, 3, 1) and index == 0
    # Pooling then the 1x1 conv, or the conv then pooling: float32 apart.
    assert abs(float(drawn.mean()) - float(score[0])) <= TOLERANCE
    assert title == f"score {float(score[0]):.3f}"
    model, _ = models["distribution"]
    p, score_map = score_map_model(model)(x, training=False)
    p = keras.ops.convert_to_numpy(p)[0].astype("float64")
    score_map = keras.ops.convert_to_numpy(score_map)[0]
    drawn, index, title = heatmap_of("distribution", score_map, p / p.sum(), [])
    expected = score_map @ np.arange(1, BINS + 1) / score_map.sum(axis=-1)
    np.testing.assert_allclose(drawn[..., 0], expected, atol=TOLERANCE)
    assert index == 0
    assert title.startswith(
        f"score {score_statistics.distribution_mean(p / p.sum()):.2f} ± "
    )


def test_task_of_a_keras_file_and_its_json(models, images, tmp_path, capsys):
    _, path = models["regression"]
    with open(path + ".json") as f:
        assert json.load(f)["task"] == "regression"
    bare = str(tmp_path / "bare.keras")
    models["regression"][0].save(bare)
    # No .json: nothing inferred, and a 1-output classifier makes no sense.
    with pytest.raises(ModelSourceError, match="Pass --backbone"):
        resolve_model_source(bare)
    source = resolve_model_source(
        bare, backbone="mobilenet_v2", size=SIZE, task="regression"
    )
    assert source.task == "regression" and source.class_names == ["score"]
    assert resolve_model_source(
        bare, backbone="mobilenet_v2", size=SIZE
    ).task == "classification"
    # A .json from before tasks: classification, and --task cannot change it.
    old = str(tmp_path / "old.keras")
    models["distribution"][0].save(old)
    with open(models["distribution"][1] + ".json") as f:
        info = json.load(f)
    del info["task"]
    with open(old + ".json", "w") as f:
        json.dump(info, f)
    assert resolve_model_source(old).task == "classification"
    folder, _ = images
    output = str(tmp_path / "s.csv")
    assert cli.main(["predict", old, folder, "--task", "distribution",
                     "--output", output, "--quiet"]) == 2
    assert "was trained with task='classification'" in capsys.readouterr().err
    with pytest.raises(ModelSourceError, match="a regression model has one"):
        _load_with_task(models["distribution"][1], "regression", tmp_path)


def _load_with_task(path, task, tmp_path):
    """`path`'s model, without its `.json`, loaded with `task`."""
    copy = str(tmp_path / "no_json.keras")
    keras.saving.load_model(path, compile=False).save(copy)
    return resolve_model_source(
        copy, backbone="mobilenet_v2", size=SIZE, task=task
    )


def test_save_best_model_records_the_task(models, tmp_path):
    """The experiments' `best.keras.json` carries the run's task."""
    model, _ = models["distribution"]
    config = Config(task="distribution", base_size=32)
    names = [f"p{k}" for k in range(1, BINS + 1)]
    save_best_model(model, get_experiment(3), config, class_names=names,
                    folder=str(tmp_path))
    source = resolve_model_source(str(tmp_path / "best.keras"))
    assert source.task == "distribution" and source.class_names == names
    assert source.input_size == 48


def test_markdown_of_scores(models, images):
    folder, corrupt = images
    files = [os.path.join(folder, "rocket.png"), corrupt]
    for task, header in (
        ("regression", "| image | size | score |"),
        ("distribution", "| image | size | score | std | p(1) |"),
    ):
        source = resolve_model_source(models[task][1])
        scored, _ = predict_images(source, files, verbose=0)
        table = scores_markdown(scored, source.class_names, task=task)
        # As the notebook calls it: the task read from the rows.
        assert scores_markdown(scored, source.class_names) == table
        lines = table.splitlines()
        assert lines[0].startswith(header)
        assert lines[2].startswith(f"| rocket.png | 150x100 | {scored[0].score:.3f} |")
        assert "error:" in lines[3]
        assert all(line.count("|") == lines[0].count("|") for line in lines)


@pytest.mark.export
@pytest.mark.parametrize("fmt", ("keras", "saved_model"))
def test_export_of_a_regression_fcn_equals_keras(models, fmt, tmp_path):
    model, path = models["regression"]
    source = resolve_model_source(path)
    out = str(tmp_path / ("exported.keras" if fmt == "keras" else "exported"))
    assert cli.main(["export", path, out, "--format", fmt]) == 0
    with open(out + ".json") as f:
        assert json.load(f)["task"] == "regression"
    # Held while called: the SavedModel's functions need its variables.
    if fmt == "keras":
        reloaded = keras.saving.load_model(out, compile=False)
    else:
        reloaded = tf.saved_model.load(out)
    for rows, cols in ((64, 96), (97, 161)):
        x = photos("MobileNetV2", rows, cols, count=2)
        expected = keras.ops.convert_to_numpy(source.model(x, training=False))
        if fmt == "keras":
            got = keras.ops.convert_to_numpy(reloaded(x, training=False))
        else:
            got = reloaded.serve(tf.constant(x)).numpy()
        assert got.shape == expected.shape == (2, 1)
        assert float(np.abs(expected).max()) > 0.1
        assert float(np.abs(got - expected).max()) <= 1e-4, (fmt, rows, cols)
    if fmt == "keras":
        assert resolve_model_source(out).task == "regression"
