"""The time breakdown: `timings.FitTimer` inside a real `fit`, and
`Stopwatch`."""

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
