"""Per-image test predictions in file order, and the statistics on them."""

import csv
import os

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats as scipy_stats

import keras

from fcn_experiments import test_predictions
from fcn_experiments.datasets import Split


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
    probabilities, got_labels = test_predictions.predict_in_file_order(
        model, dataset, batch_size=2
    )
    expected = np.concatenate([model.predict_on_batch(x[None]) for x in images])
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    np.testing.assert_array_equal(got_labels, [i % 2 for i in range(7)])


def _write(folder, outcomes):
    os.makedirs(folder)
    with open(os.path.join(folder, test_predictions.PREDICTIONS_FILE), "w") as f:
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
    test_predictions.add_statistics(rows, tmp_path, lambda n: f"e{n}")
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
    assert test_predictions.format_p("") == ""
    assert test_predictions.format_p(0.04321) == "0.0432"
    assert test_predictions.format_p(3e-7) == "3.0e-07"


def test_score_and_write_matches_keras_evaluate(tmp_path):
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (6, 10, 10, 3)).astype("float32")
    labels = np.eye(2, dtype="float32")[[0, 1, 1, 0, 1, 0]]
    model = _tiny_model()
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    split = Split(dataset, ["a", "b"], 6, [f"img{i}.png" for i in range(6)])
    scores = test_predictions.score_and_write(model, split, 4, str(tmp_path))
    loss, accuracy = model.evaluate(dataset.batch(4), verbose=0)
    assert scores["loss"] == pytest.approx(loss, rel=1e-5)
    assert scores["accuracy"] == pytest.approx(accuracy)
    with open(tmp_path / test_predictions.PREDICTIONS_FILE) as f:
        rows = list(csv.DictReader(f))
    assert [row["path"] for row in rows] == split.file_paths
    assert [row["true_class"] for row in rows] == ["a", "b", "b", "a", "b", "a"]


def test_tables_show_experiment_1_as_the_reference(tmp_path):
    from fcn_experiments import results

    first = [True] * 30 + [False] * 10
    second = [True] * 22 + [False] * 8 + [True] * 2 + [False] * 8
    _write(tmp_path / "e1", first)
    _write(tmp_path / "e2", second)
    rows = [
        {"experiment": 1, "test_accuracy": 0.75, "test_images": 40},
        {"experiment": 2, "test_accuracy": 0.6, "test_images": 40},
    ]
    test_predictions.add_statistics(rows, tmp_path, lambda n: f"e{n}")
    column = [title for _, title in results.COLUMNS].index("p vs #1")
    cells = [results._cells(row)[column] for row in rows]
    assert cells == ["-", test_predictions.format_p(rows[1]["mcnemar_p_vs_1"])]
    assert "| - |" in results.markdown_table(rows).splitlines()[2]
