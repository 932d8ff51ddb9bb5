"""Per-image test predictions in file order, and the statistics on them."""

import csv
import os

import numpy as np
import pytest
from scipy import stats as scipy_stats

import keras
import tensorflow as tf

from fcn_experiments.data.pipelines import Split
from fcn_experiments.evaluation import classification as scored_test_set


def _tiny_model():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs)
    model.compile(loss="categorical_crossentropy")
    return model


def test_predictions_keep_file_order_across_shapes():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    # Interleaved shapes, as a native-size test set lists them; batch 2
    # leaves partial batches of every shape.
    shapes = [(8, 12), (12, 8), (8, 12), (8, 8), (12, 8), (8, 12), (8, 8)]
    images = [rng.uniform(0, 1, (*s, 3)).astype("float32") for s in shapes]
    labels = [np.eye(2, dtype="float32")[i % 2] for i in range(len(shapes))]
    dataset = tf.data.Dataset.from_generator(
        lambda: zip(images, labels),
        output_signature=(
            tf.TensorSpec((None, None, 3), "float32"),
            tf.TensorSpec((2,), "float32"),
        ),
    )
    model = _tiny_model()
    probabilities, got_labels = scored_test_set.predict_in_file_order(
        model, dataset, batch_size=2
    )
    expected = np.concatenate([model.predict_on_batch(x[None]) for x in images])
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    np.testing.assert_array_equal(got_labels, [i % 2 for i in range(7)])


def _write(folder, outcomes):
    os.makedirs(folder)
    with open(os.path.join(folder, scored_test_set.PREDICTIONS_FILE), "w") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "true_class", "predicted_class", "p_a", "p_b"])
        for i, correct in enumerate(outcomes):
            writer.writerow(
                [f"img{i}.png", "a", "a" if correct else "b", "0.5", "0.5"]
            )


def test_statistics_columns(tmp_path):
    first = [True] * 30 + [False] * 10  # 0.75
    second = [True] * 22 + [False] * 8 + [True] * 2 + [False] * 8  # 0.60
    _write(tmp_path / "e1", first)
    _write(tmp_path / "e2", second)
    rows = [
        {"experiment": 1, "test_accuracy": 0.75, "test_images": 40},
        {"experiment": 2, "test_accuracy": 0.6, "test_images": 40},
        {"experiment": 3, "test_accuracy": 0.5, "test_images": 40},
    ]
    scored_test_set.add_statistics(rows, tmp_path, lambda n: f"e{n}")
    low, high = scipy_stats.binomtest(30, 40).proportion_ci(method="wilson")
    assert (rows[0]["test_ci_low"], rows[0]["test_ci_high"]) == pytest.approx(
        (low, high)
    )
    assert rows[0]["mcnemar_p_vs_1"] == 1.0
    # Discordant: 8 only #1 right, 2 only #2 right.
    assert rows[1]["mcnemar_p_vs_1"] == pytest.approx(
        scipy_stats.binomtest(2, 10, 0.5).pvalue
    )
    # No predictions file: interval, but no test.
    assert rows[2]["mcnemar_p_vs_1"] == "" and rows[2]["test_ci_low"] > 0.3


def test_format_p():
    assert scored_test_set.format_p("") == ""
    assert scored_test_set.format_p(0.04321) == "0.0432"
    assert scored_test_set.format_p(3e-7) == "3.0e-07"


def test_score_and_write_matches_keras_evaluate(tmp_path):
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (6, 10, 10, 3)).astype("float32")
    labels = np.eye(2, dtype="float32")[[0, 1, 1, 0, 1, 0]]
    model = _tiny_model()
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    split = Split(dataset, ["a", "b"], 6, [f"img{i}.png" for i in range(6)])
    scores = scored_test_set.score_and_write(model, split, 4, str(tmp_path))
    loss, accuracy = model.evaluate(dataset.batch(4), verbose=0)
    assert scores["loss"] == pytest.approx(loss, rel=1e-5)
    assert scores["accuracy"] == pytest.approx(accuracy)
    with open(tmp_path / scored_test_set.PREDICTIONS_FILE) as f:
        rows = list(csv.DictReader(f))
    assert [row["path"] for row in rows] == split.file_paths
    assert [row["true_class"] for row in rows] == ["a", "b", "b", "a", "b", "a"]


def test_tables_show_experiment_1_as_the_reference(tmp_path):
    from fcn_experiments.reporting import results

    first = [True] * 30 + [False] * 10
    second = [True] * 22 + [False] * 8 + [True] * 2 + [False] * 8
    _write(tmp_path / "e1", first)
    _write(tmp_path / "e2", second)
    rows = [
        {"experiment": 1, "test_accuracy": 0.75, "test_images": 40},
        {"experiment": 2, "test_accuracy": 0.6, "test_images": 40},
    ]
    scored_test_set.add_statistics(rows, tmp_path, lambda n: f"e{n}")
    column = [title for _, title in results.COLUMNS].index("p vs #1")
    table = results.markdown_table(rows).splitlines()
    cells = [line[2:-2].split(" | ")[column] for line in table[2:]]
    assert cells == ["-", scored_test_set.format_p(rows[1]["mcnemar_p_vs_1"])]
    assert "| - |" in table[2]


def test_an_undecodable_test_file_is_left_out_and_rows_stay_aligned(tmp_path):
    import shutil
    import warnings

    from fcn_experiments.config import make_config
    from fcn_experiments.data.pipelines import load_splits
    from fcn_experiments.data.pipelines import resolve_folders
    from loader_test_images import write_damaged_jpeg
    from loader_test_images import write_photos

    def test_split(name, test_dir):
        config = make_config(
            "tiny", train_dir=str(tmp_path / "train"),
            validation_dir=str(tmp_path / "train"), test_dir=str(test_dir),
            output_dir=str(tmp_path / name), seed=1)
        return load_splits(resolve_folders(config), config, size=32, mode="native", batch_size=4)[2]

    write_photos(str(tmp_path / "train"))
    write_photos(str(tmp_path / "clean"))
    shutil.copytree(tmp_path / "clean", tmp_path / "test")
    # Sorted inside class a: a row shifted by the missing file would pair
    # a path of a with label b.
    bad = str(tmp_path / "test" / "a" / "damaged.jpg")
    write_damaged_jpeg(bad)
    split = test_split("out", tmp_path / "test")
    assert len(split.file_paths) == 7 and bad in split.file_paths

    keras.utils.set_random_seed(2)
    model = _tiny_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = scored_test_set.score_and_write(model, split, 4, str(tmp_path))
    assert any(str(w.message).startswith("1 of the 7 test files failed")
               and bad in str(w.message) for w in caught)
    with open(tmp_path / scored_test_set.PREDICTIONS_FILE) as f:
        rows = list(csv.DictReader(f))
    assert [row["path"] for row in rows] == [
        p for p in split.file_paths if p != bad]
    assert [row["true_class"] for row in rows] == [
        os.path.basename(os.path.dirname(row["path"])) for row in rows]
    # Each row holds its own image's scores: those of the clean folder.
    clean = test_split("clean_out", tmp_path / "clean")
    expected, _ = scored_test_set.predict_in_file_order(model, clean.dataset, 4)
    expected = dict(zip((os.path.relpath(p, tmp_path / "clean")
                         for p in clean.file_paths), expected))
    for row in rows:
        got = [float(row["p_a"]), float(row["p_b"])]
        np.testing.assert_allclose(
            got, expected[os.path.relpath(row["path"], tmp_path / "test")],
            atol=2e-6)
    correct = sum(row["true_class"] == row["predicted_class"] for row in rows)
    assert scores["images"] == 6 and scores["correct"] == correct
    assert scores["accuracy"] == pytest.approx(correct / 6)
