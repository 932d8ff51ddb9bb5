"""Per-image test predictions of one experiment, in the test files' order:
running the model over the test split, the files scored, and reading each
experiment's `test_predictions.csv` back."""

import os
import warnings

import numpy as np

import keras

PREDICTIONS_FILE = "test_predictions.csv"


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
    more rows than the batch has under a MirroredStrategy. Under JAX,
    `predict_on_batch`: jitted once per shape, where an eager call compiles
    each operation on its own."""
    # A model compiled to run eagerly (a few tiny steps) scores a few tiny
    # batches too: tracing would cost more than it saves.
    if model.run_eagerly or keras.backend.backend() == "torch":
        return lambda images: model(images, training=False)
    if keras.backend.backend() == "jax":
        return model.predict_on_batch
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
