"""The time breakdown (`timings.FitTimer` inside a real `fit`, and
`Stopwatch`), and the fixed costs it showed: one trace of the training
step, one of the test set's forward pass."""

import numpy as np

import keras

from fcn_experiments.training import timings


def _fit(epochs, callbacks):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)]
    )
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
    return model.fit(
        x, x[:, :1], validation_data=(x[:8], x[:8, :1]), batch_size=8,
        epochs=epochs, callbacks=callbacks, verbose=0,
    )


def test_fit_timer_splits_each_epoch_into_its_phases():
    timer = timings.FitTimer()
    seen = []

    class Logs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(dict(logs))

    _fit(3, [timer, Logs(), timer.last])
    assert [len(b) for b in timer.batches["train"]] == [5, 5, 5]
    assert [len(b) for b in timer.batches["validation"]] == [1, 1, 1]
    phases = timer.phases()
    assert set(phases) == {
        "trace", "first_epoch", "steps", "validation", "checkpoint"
    }
    assert all(value >= 0 for value in phases.values())
    # The phases add up to the epochs' time: nothing counted twice or lost.
    epochs = sum(timer.epochs["train"]) + sum(timer.epochs["validation"])
    counted = sum(v for k, v in phases.items() if k != "checkpoint")
    assert np.isclose(counted, epochs)
    # The first step traces the training function: it is the slowest.
    first = timer.batches["train"][0][0]
    assert first == max(b for epoch in timer.batches["train"] for b in epoch)
    assert phases["trace"] > 0
    assert all(
        row["epoch_seconds"] >= row["train_seconds"] > 0 for row in seen
    )


def test_stopwatch_sums_a_phase_over_its_blocks():
    watch = timings.Stopwatch()
    with watch.phase("build"):
        pass
    watch.add("build", 2.0)
    watch.add("test", 1.5)
    columns = watch.columns()
    assert columns["seconds_test"] == 1.5
    assert 2.0 <= columns["seconds_build"] < 2.5
    assert columns["seconds_steps"] == 0.0
    assert list(columns) == list(timings.COLUMNS)


def test_compiled_model_creates_no_variable_in_its_first_traced_step(tmp_path):
    """A first traced step that creates variables (the compiled metrics'
    totals and counts) makes TensorFlow trace the step twice."""
    import tensorflow as tf

    from fcn_experiments.config import make_config
    from fcn_experiments.training import loop

    config = make_config(
        "tiny", output_dir=str(tmp_path), run_eagerly=False
    )
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(2, activation="softmax")]
    )
    loop._compile(model, config, num_outputs=2)
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = np.eye(2, dtype="float32")[np.arange(16) % 2]
    created = []

    def record(next_creator, **kwargs):
        created.append(kwargs.get("name"))
        return next_creator(**kwargs)

    with tf.variable_creator_scope(record):
        history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert created == []
    # The metrics were built, not skipped: accuracy is measured.
    assert 0.0 <= history.history["accuracy"][0] <= 1.0


def test_test_scoring_traces_the_model_once_for_all_sizes():
    """Every batch size and image size of the test set share one trace
    (a relaxed-shape `tf.function` traced these images three times)."""
    import tensorflow as tf

    from fcn_experiments.evaluation.predictions import predict_with_labels

    traces = []

    def mean_colour(x):
        traces.append(x.shape)
        return keras.ops.mean(x, axis=(1, 2))

    model = keras.Sequential(
        [keras.Input((None, None, 3)), keras.layers.Lambda(mean_colour)]
    )
    traces.clear()  # Keras called it once to build the model.
    rng = np.random.default_rng(0)
    images = [rng.uniform(size=(h, w, 3)).astype("float32")
              for h, w in [(8, 12)] * 3 + [(10, 6)] * 2]
    dataset = tf.data.Dataset.from_generator(
        lambda: ((image, np.float32([1.0])) for image in images),
        output_signature=(tf.TensorSpec((None, None, 3)),
                          tf.TensorSpec((1,))),
    )
    outputs, _ = predict_with_labels(model, dataset, batch_size=2)
    assert len(traces) == 1
    np.testing.assert_allclose(
        outputs, [image.mean(axis=(0, 1)) for image in images], rtol=1e-5
    )
