"""Per-image test predictions (`test_predictions.csv`) and the statistics
built on them: each accuracy's Wilson interval, and McNemar's test of each
experiment against #1 on the same test images."""

import csv
import math
import os
import warnings

import numpy as np

import keras

from fcn_experiments.accuracy_statistics import mcnemar_exact
from fcn_experiments.accuracy_statistics import wilson_interval
from fcn_experiments.class_report import per_class_accuracy

PREDICTIONS_FILE = "test_predictions.csv"
# Keras' crossentropy clips probabilities to [eps, 1 - eps].
EPSILON = 1e-7


def predict_in_file_order(model, dataset, batch_size):
    """Class probabilities of every image of an unbatched dataset, in order.

    Images of one shape are batched together (native mode gives several
    shapes), and each prediction goes back to its image's position, unlike
    a `group_by_window` pipeline, which reorders.

    Args:
        model: a compiled Keras model.
        dataset: a `tf.data.Dataset` of `(image, one_hot_label)`, unbatched.
        batch_size: images per forward pass.

    Returns:
        `(probabilities, labels)`: float array `(n, classes)` and int array
        `(n,)`.
    """
    probabilities, labels = predict_with_labels(model, dataset, batch_size)
    return probabilities, labels.argmax(axis=-1)


def predict_with_labels(model, dataset, batch_size):
    """`(outputs, labels)` of every image of an unbatched dataset, in order,
    both as float arrays with a row per image (see `predict_in_file_order`,
    which takes the class of each one-hot label)."""
    pending = {}
    outputs = {}
    labels = []
    forward = _forward_function(model)

    def flush(shape):
        indices, images = pending.pop(shape)
        scores = keras.ops.convert_to_numpy(forward(np.stack(images)))
        outputs.update(zip(indices, scores))

    for index, (image, label) in enumerate(dataset.as_numpy_iterator()):
        labels.append(np.asarray(label, dtype="float64"))
        indices, images = pending.setdefault(image.shape, ([], []))
        indices.append(index)
        images.append(image)
        if len(images) == batch_size:
            flush(image.shape)
    for shape in list(pending):
        flush(shape)
    order = sorted(outputs)
    return np.stack([outputs[i] for i in order]), np.stack(labels)


def _forward_function(model):
    """`model(images, training=False)`, on TensorFlow traced once for every
    batch size and image size (a signature with unknown dimensions, from
    the first batch's rank), where an eager call costs about 10x a traced
    one for MobileNetV2. A plain call, not `predict_on_batch`: that returns
    more rows than the batch has under a MirroredStrategy."""
    # A model compiled to run eagerly (a few tiny steps) scores a few tiny
    # batches too: tracing would cost more than it saves.
    if keras.backend.backend() != "tensorflow" or model.run_eagerly:
        return lambda images: model(images, training=False)
    import tensorflow as tf

    traced = []

    def forward(images):
        if not traced:
            shape = [None] * (images.ndim - 1) + [images.shape[-1]]
            traced.append(
                tf.function(
                    lambda x: model(x, training=False),
                    input_signature=[tf.TensorSpec(shape, images.dtype)],
                )
            )
        return traced[0](images)

    return forward


def score_and_write(model, split, batch_size, folder):
    """Predicts the test split, writes `folder/test_predictions.csv` (one
    row per image: path, true class, predicted class, and the model's score
    per class; the scores of a max-pooled head need not sum to 1), and
    returns `{"accuracy", "loss", "correct", "images", "per_class"}`
    computed from those very predictions (loss as Keras' categorical
    crossentropy; `per_class` as `class_report.per_class_accuracy`).

    A file that failed to decode (`split.undecodable_paths`) has no
    prediction: it is left out of the file and the metrics, with a warning
    naming it; `images` is the number scored.

    Args:
        model: the model with its selected (best-on-validation) weights.
        split: the test `Split`; its dataset unbatched, in `file_paths`
            order.
        batch_size: images per forward pass.
        folder: the experiment's folder.
    """
    probabilities, labels = predict_in_file_order(
        model, split.dataset, batch_size
    )
    paths = scored_paths(split, len(labels))
    predicted = probabilities.argmax(axis=1)
    write_predictions(
        os.path.join(folder, PREDICTIONS_FILE),
        paths=paths,
        class_names=split.class_names,
        labels=labels,
        predicted=predicted,
        probabilities=probabilities,
    )
    # As Keras' crossentropy: scores renormalised to sum to 1 (a max-pooled
    # head's class scores, maxima over positions or crops, sum to >= 1).
    normalised = probabilities / probabilities.sum(axis=1, keepdims=True)
    picked = np.clip(normalised[np.arange(len(labels)), labels], EPSILON, 1)
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "loss": float(-np.mean(np.log(picked))),
        "correct": int(np.sum(predicted == labels)),
        "images": len(labels),
        "per_class": per_class_accuracy(labels, predicted, split.class_names),
    }


def scored_paths(split, count):
    """The test files that were scored: the split's, less those that failed
    to decode (the dataset skipped them, keeping the others in order), with
    a warning naming them.

    Raises:
        RuntimeError: `count` predictions do not match those files.
    """
    dropped = set(split.undecodable_paths)
    paths = [path for path in split.file_paths if path not in dropped]
    if count != len(paths):
        raise RuntimeError(
            f"Predicted {count} test images, but the test split lists "
            f"{len(split.file_paths)} files, {len(dropped)} of which failed "
            "to decode."
        )
    if dropped:
        warnings.warn(
            f"{len(dropped)} of the {len(split.file_paths)} test files failed "
            f"to decode and are left out of {PREDICTIONS_FILE} and the test "
            f"metrics, which cover the {len(paths)} images scored: "
            f"{', '.join(sorted(dropped))}. Replace or remove them.",
            stacklevel=3,
        )
    return paths


def write_predictions(
    path, *, paths, class_names, labels, predicted, probabilities
):
    """Writes `test_predictions.csv`: one row per test image, in order."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["path", "true_class", "predicted_class"]
            + [f"p_{name}" for name in class_names]
        )
        for path_, label, guess, probs in zip(
            paths, labels, predicted, probabilities
        ):
            writer.writerow(
                [path_, class_names[label], class_names[guess]]
                + [f"{p:.6f}" for p in probs]
            )
    os.replace(tmp, path)


def read_predictions(path):
    """`{path: correct}` of a `test_predictions.csv`."""
    with open(path, newline="") as f:
        return {
            row["path"]: row["true_class"] == row["predicted_class"]
            for row in csv.DictReader(f)
        }


def read_each(rows, output_dir, experiment_folder, read):
    """`{experiment: read(its test_predictions.csv)}` for the rows whose
    experiment folder has one."""
    found = {}
    for row in rows:
        path = os.path.join(
            output_dir, experiment_folder(row["experiment"]), PREDICTIONS_FILE
        )
        if os.path.isfile(path):
            found[row["experiment"]] = read(path)
    return found


def add_statistics(rows, output_dir, experiment_folder):
    """Adds to each result row the 95% Wilson interval of its test accuracy
    (`test_ci_low`, `test_ci_high`) and the exact McNemar p-value against
    experiment #1 on the same images (`mcnemar_p_vs_1`; empty when #1 is
    not among the rows, or the test images differ).

    Args:
        rows: result dicts with `experiment`, `test_accuracy`, `test_images`.
        output_dir: the run's output folder.
        experiment_folder: function of an experiment number giving its
            folder name.

    Returns:
        `rows`, updated in place.
    """
    outcomes = read_each(rows, output_dir, experiment_folder, read_predictions)
    reference = outcomes.get(1)
    for row in rows:
        n = int(row["test_images"])
        correct = int(round(float(row["test_accuracy"]) * n))
        row["test_ci_low"], row["test_ci_high"] = wilson_interval(correct, n)
        row["mcnemar_p_vs_1"] = ""
        mine = outcomes.get(row["experiment"])
        if reference is None or mine is None or set(mine) != set(reference):
            continue
        if row["experiment"] == 1:
            row["mcnemar_p_vs_1"] = 1.0
            continue
        order = sorted(reference)
        p, _, _ = mcnemar_exact(
            [reference[k] for k in order], [mine[k] for k in order]
        )
        row["mcnemar_p_vs_1"] = p
    return rows


def format_p(value):
    """A p-value for tables: 3 significant digits, '' when missing."""
    if value == "" or value is None:
        return ""
    value = float(value)
    if math.isnan(value):
        return ""
    return f"{value:.3g}" if value >= 1e-4 else f"{value:.1e}"
