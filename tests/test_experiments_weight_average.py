"""`ema_momentum`: the moving average of the weights is what is validated,
saved as the best epoch and tested; the training itself goes on from the
weights of the last step."""

import json
import os

import numpy as np
import pytest

import keras

import fcn_experiments
from fcn_experiments.config import make_config
from fcn_experiments.errors import UsageError
from fcn_experiments.models.experiments import get_experiment
from fcn_experiments.training import records


def _trainable(model):
    # BatchNorm's moving statistics are not averaged: they follow training.
    return [np.array(v) for v in model.trainable_weights]


class WeightsSeen(keras.callbacks.Callback):
    """The model's trainable weights after the first step and after each
    epoch's framework callbacks (extra callbacks run last)."""

    def on_train_batch_end(self, batch, logs=None):
        if not hasattr(self, "first"):  # Keras' average starts here.
            self.first = _trainable(self.model)

    def on_epoch_end(self, epoch, logs=None):
        self.last = _trainable(self.model)


def _largest_difference(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def _best_weights(folder):
    with open(os.path.join(folder, records.BEST_FILE)) as f:
        name = json.load(f)["file"]
    model = keras.models.clone_model(_best_weights.model)
    model.load_weights(os.path.join(folder, name))
    return _trainable(model)


@pytest.mark.parametrize("ema_momentum", [None, 0.999999])
def test_the_best_epoch_saves_the_averaged_weights(tmp_path, ema_momentum):
    seen = WeightsSeen()

    class Keep(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            _best_weights.model = self.model

    out = str(tmp_path / "out")
    rows = fcn_experiments.run_experiments(
        profile="tiny", experiments=[1], epochs=1, output_dir=out,
        ema_momentum=ema_momentum, callbacks=[seen, Keep()],
        plots_to_make=False, verbose=0,
    )
    best = _best_weights(os.path.join(out, get_experiment(1).folder))
    trained = _largest_difference(seen.last, seen.first)
    assert trained > 1e-3  # One epoch moved the weights.
    if ema_momentum is None:
        assert _largest_difference(best, seen.last) == 0.0
        assert "EMA" not in rows[0]["recipe"]
    else:
        # An average that hardly moves from where it starts (the weights
        # after the first step), not the last step's; and training went on
        # from the last step's.
        assert _largest_difference(best, seen.first) < trained / 20
        assert _largest_difference(best, seen.last) > trained / 2
        assert "weights averaged (EMA 0.999999)" in rows[0]["recipe"]


def test_ema_momentum_is_checked_and_fingerprinted():
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(UsageError, match=r"`ema_momentum` must be in "
                           r"\(0, 1\).*Received: ema_momentum="):
            make_config("tiny", ema_momentum=bad)
    plain = make_config("tiny")
    assert "ema_momentum" not in plain.fingerprint()  # Old runs still resume.
    assert make_config("tiny", ema_momentum=0.99).fingerprint()[
        "ema_momentum"] == 0.99
    assert make_config("quick", task="regression").ema_momentum == 0.99
    assert make_config("quick").ema_momentum is None
