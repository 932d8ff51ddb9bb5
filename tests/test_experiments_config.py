"""Settings, starting weights, the command line and the AVA helper: the
parts of the framework that need no training."""

import os

import h5py
import numpy as np
import pytest

import keras
from keras.src.legacy.saving import legacy_h5_format

from fcn_experiments import cli
from fcn_experiments.config import PROFILES
from fcn_experiments.config import make_config
from fcn_experiments.data.ava_two_class import make_two_class_ava
from fcn_experiments.data.ava_two_class import read_mean_scores
from fcn_experiments.models import starting_weights
from fcn_experiments.models.experiments import EXPERIMENTS
from fcn_experiments.models.experiments import build_experiment_model
from fcn_experiments.models.experiments import inner_fcn


def test_profiles():
    quick, paper = make_config("quick"), make_config("paper")
    assert (quick.model, quick.alpha, quick.weights) == (
        "mobilenet_v2",
        0.35,
        "auto",
    )
    assert (paper.model, paper.input_size, paper.epochs) == ("vgg16", 224, 20)
    assert (paper.batch_size, paper.lr_start, paper.lr_min) == (8, 0.01, 0.001)
    # The paper's plain SGD; the quick profile's from-scratch recipe differs.
    assert (paper.optimizer, quick.optimizer) == ("sgd", "adam")
    assert make_config("paper", model="xception").input_size == 299
    assert make_config("tiny", epochs=3).epochs == 3
    # None means "the profile's value", so callers can pass parameters through.
    assert (
        make_config("quick", epochs=None).epochs == PROFILES["quick"]["epochs"]
    )


def test_a_task_changes_its_profile_below_the_callers_settings():
    quick = make_config("quick")
    regression = make_config("quick", task="regression")
    # More, smaller steps for a score; everything else the profile's.
    assert (regression.batch_size, regression.epochs) == (16, 24)
    assert (quick.batch_size, quick.epochs) == (32, 8)
    assert (regression.lr_start, regression.base_size, regression.alpha) == (
        quick.lr_start, quick.base_size, quick.alpha,
    )
    # The caller's settings win; other profiles are left as they are.
    assert make_config("quick", task="regression", epochs=3).epochs == 3
    assert make_config("quick", task="regression", batch_size=8).batch_size == 8
    tiny = make_config("tiny", task="regression")
    assert (tiny.batch_size, tiny.epochs) == (8, 1)
    assert make_config("paper", task="regression").epochs == 20


def test_experiment_table():
    assert [e.number for e in EXPERIMENTS] == list(range(1, 10))
    config = make_config("quick")
    base = config.input_size
    assert [e.input_size(config) for e in EXPERIMENTS] == [
        base,
        base,
        int(base * 1.5),
        base * 2,
        base * 3,
        *[int(base * 1.5)] * 4,
    ]
    assert [e.mode(config) for e in EXPERIMENTS[5:]] == [
        "crop",
        "pad",
        "multicrop",
        "multicrop",
    ]
    assert [e.fcn for e in EXPERIMENTS] == [False] + [True] * 8
    assert [e.skip for e in EXPERIMENTS] == [False] * 8 + [True]
    assert {
        e.mode(make_config("quick", scale_resize_mode="stretch"))
        for e in EXPERIMENTS[2:5]
    } == {"stretch"}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model": "resnet51"}, "Received: model='resnet51'"),
        ({"base_size": 16}, "at least 32 px. Received: base_size=16"),
        ({"train_dir": "."}, "test_dir is needed"),
        ({"test_dir": "."}, "without train_dir"),
        (
            {"train_dir": "/nonexistent", "test_dir": "."},
            "train_dir='/nonexistent'",
        ),
        ({"lr_start": 0.001, "lr_min": 0.01}, "lr_min <= lr_start"),
        ({"dropout": 1.0}, "Received: dropout=1.0"),
        ({"experiments": (0, 1)}, "subset of 1..9"),
        ({"freeze_up_to": -1}, "freeze_up_to=-1"),
        ({"weights": "nowhere.h5"}, "weights='nowhere.h5'"),
        ({"fcn_pooling": "sum"}, "fcn_pooling='sum'"),
        ({"optimizer": "rmsprop"}, "optimizer='rmsprop'"),
        ({"run_eagerly": "yes"}, "True, False or 'auto'. Received: run_eagerly='yes'"),
    ],
)
def test_bad_settings_are_refused_with_the_value(overrides, message):
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        make_config("quick", **overrides)


def test_unknown_parameter_and_profile():
    with pytest.raises(TypeError, match="epoch"):
        make_config("quick", epoch=3)
    with pytest.raises(ValueError, match="profile='fast'"):
        make_config("fast")


def test_fingerprint_ignores_where_and_which():
    a = make_config("quick")
    b = make_config(
        "quick", output_dir="elsewhere", experiments=(2,), force=True
    )
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != make_config("quick", epochs=7).fingerprint()


def test_command_line_flags_become_settings():
    args = vars(
        cli.build_parser().parse_args(
            [
                "run",
                "--profile",
                "paper",
                "--experiments",
                "1,3",
                "--freeze-up-to",
                "block3_pool",
                "--lr-start",
                "0.05",
                "--force",
                "--run-eagerly",
            ]
        )
    )
    settings = {
        k: v
        for k, v in args.items()
        if k
        not in ("command", "strategy", "collective_timeout", "no_plots", "quiet")
    }
    config = make_config(**settings)
    assert config.experiments == (1, 3) and config.freeze_up_to == "block3_pool"
    assert config.lr_start == 0.05 and config.force and config.run_eagerly
    assert config.model == "vgg16"
    demo = vars(cli.build_parser().parse_args(["demo"]))
    assert demo["profile"] == "quick" and "train_dir" not in demo


def test_command_line_reports_bad_settings(capsys):
    assert cli.main(["run", "--model", "resnet"]) == 2
    assert "model='resnet'" in capsys.readouterr().err


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setattr(keras.src.backend.config, "_KERAS_DIR", str(tmp_path))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    return tmp_path


def test_cached_imagenet_file_is_used(keras_home):
    config = make_config("quick")
    path = starting_weights.imagenet_path(config)
    assert path == os.path.join(
        keras_home,
        "models",
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224.h5",
    )
    os.makedirs(os.path.dirname(path))
    open(path, "wb").close()
    assert starting_weights.resolve_weights(config) == ("imagenet", path)


def test_starting_weights_are_saved_once(keras_home, tmp_path):
    config = make_config("tiny", output_dir=str(tmp_path / "out"))
    first = starting_weights.prepare_starting_weights(config, 2)
    stamp = os.stat(first["path"]).st_mtime_ns
    again = starting_weights.prepare_starting_weights(config, 2)
    assert again == first and first["weights"] == "random"
    assert os.stat(first["path"]).st_mtime_ns == stamp


def _ava(tmp_path, scores):
    lines = []
    for index, (image_id, score) in enumerate(scores.items(), 1):
        votes = [0] * 10
        votes[score - 1] = 5
        lines.append(" ".join(map(str, [index, image_id, *votes, 0, 0, 1])))
    (tmp_path / "AVA.txt").write_text("\n".join(lines) + "\n")
    images = tmp_path / "images"
    images.mkdir()
    for image_id in scores:
        if image_id != "999":  # never downloaded
            (images / f"{image_id}.jpg").write_bytes(b"jpeg")
    return str(tmp_path / "AVA.txt"), str(images)


def test_two_class_ava(tmp_path):
    scores = {str(i): 1 + i % 10 for i in range(100)}
    scores["999"] = 10
    ava_txt, images = _ava(tmp_path, scores)
    assert read_mean_scores(ava_txt)["7"] == 8.0
    counts = make_two_class_ava(ava_txt, images, str(tmp_path / "ava2"))
    assert counts == {
        (split, label): n
        for split, n in (("train", 7), ("validation", 1), ("test", 2))
        for label in ("low", "high")
    }
    high = os.listdir(tmp_path / "ava2" / "train" / "high")
    low = os.listdir(tmp_path / "ava2" / "train" / "low")
    assert all(scores[name[:-4]] == 10 for name in high)
    assert all(scores[name[:-4]] == 1 for name in low)
    assert "999.jpg" not in high


def _ava_split(out):
    """`{split: set of image ids}` of a written two-class AVA folder."""
    return {
        split: {
            name[:-4]
            for label in ("low", "high")
            for name in os.listdir(os.path.join(out, split, label))
        }
        for split in ("train", "validation", "test")
    }


def test_two_class_ava_splits_are_disjoint_stratified_and_kept(tmp_path):
    scores = {str(i): 1 + i % 10 for i in range(400)}
    ava_txt, images = _ava(tmp_path, scores)
    out = str(tmp_path / "ava2")
    counts = make_two_class_ava(ava_txt, images, out, seed=3)
    # 40 per class: 8 test, round(0.125 * 32) = 4 validation, 28 train.
    assert counts[("train", "low")] == counts[("train", "high")] == 28
    assert counts[("validation", "low")] == counts[("validation", "high")] == 4
    split = _ava_split(out)
    assert sum(map(len, split.values())) == 80
    assert not (split["train"] & split["validation"] or split["train"] & split["test"]
                or split["validation"] & split["test"])
    # The same call again keeps the folder; another seed is refused, not mixed.
    assert make_two_class_ava(ava_txt, images, out, seed=3) == counts
    with pytest.raises(ValueError, match="already holds another split"):
        make_two_class_ava(ava_txt, images, out, seed=4)
    assert _ava_split(out) == split
    other = str(tmp_path / "other")
    make_two_class_ava(ava_txt, images, other, seed=4)
    assert _ava_split(other)["validation"] != split["validation"]


def test_two_class_ava_needs_three_images_per_class(tmp_path):
    ava_txt, images = _ava(tmp_path, {str(i): 1 + i % 10 for i in range(20)})
    with pytest.raises(ValueError, match="2 image.*need at least 3"):
        make_two_class_ava(ava_txt, images, str(tmp_path / "ava2"))


def test_two_class_ava_refuses_a_bad_file(tmp_path):
    (tmp_path / "AVA.txt").write_text("1 123 4 5\n")
    with pytest.raises(ValueError, match="10 vote counts"):
        read_mean_scores(str(tmp_path / "AVA.txt"))


def test_cached_imagenet_weights_start_every_experiment(keras_home, tmp_path):
    # An ImageNet-layout file (1000 classes, Keras' legacy .h5) where Keras
    # caches it; its weights are random, but they must be the ones used.
    config = make_config(
        "tiny", weights="auto", output_dir=str(tmp_path / "out")
    )
    keras.utils.set_random_seed(7)
    imagenet = keras.applications.MobileNetV2(alpha=0.35, weights=None)
    path = starting_weights.imagenet_path(config)
    os.makedirs(os.path.dirname(path))
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, imagenet)

    start = starting_weights.prepare_starting_weights(config, 2)
    assert start["weights"] == "imagenet"
    expected = imagenet.get_layer("block_16_project").get_weights()
    for experiment in (EXPERIMENTS[0], EXPERIMENTS[8]):
        model = build_experiment_model(experiment, config, 2, start["path"])
        layer = inner_fcn(model).get_layer("block_16_project")
        for got, want in zip(layer.get_weights(), expected):
            np.testing.assert_array_equal(got, want)
        assert (
            inner_fcn(model).get_layer("predictions").get_weights()[0].shape[-1]
            == 2
        )


@pytest.mark.parametrize("freeze_up_to", [12, "block_1_expand_relu"])
def test_freeze_up_to_freezes_the_same_backbone_layers_everywhere(
    tmp_path, freeze_up_to
):
    config = make_config(
        "tiny", output_dir=str(tmp_path), freeze_up_to=freeze_up_to
    )
    original = starting_weights.build_original(config, 2)
    path = str(tmp_path / "start.weights.h5")
    original.save_weights(path)
    frozen_sets = []
    for experiment in (EXPERIMENTS[0], EXPERIMENTS[8]):
        model = inner_fcn(build_experiment_model(experiment, config, 2, path))
        frozen_sets.append(
            {
                layer.name
                for layer in model.layers
                if layer.weights and not layer.trainable
            }
        )
        assert any(layer.weights and layer.trainable for layer in model.layers)
    # What counts is which weights are frozen (an FCN may add padding layers).
    names = [layer.name for layer in original.layers]
    layers = original.layers[: names.index("block_1_expand_relu") + 1]
    assert len(layers) == 12
    expected = {layer.name for layer in layers if layer.weights}
    assert frozen_sets == [expected, expected]


def test_freeze_up_to_an_unknown_layer_is_refused(tmp_path):
    config = make_config(
        "tiny", output_dir=str(tmp_path), freeze_up_to="block99"
    )
    original = starting_weights.build_original(config, 2)
    path = str(tmp_path / "start.weights.h5")
    original.save_weights(path)
    with pytest.raises(ValueError, match="Received: freeze_up_to='block99'"):
        build_experiment_model(EXPERIMENTS[1], config, 2, path)


def test_dropout_goes_before_every_classifier(tmp_path):
    config = make_config("tiny", output_dir=str(tmp_path), dropout=0.3)
    original = starting_weights.build_original(config, 2)
    path = str(tmp_path / "start.weights.h5")
    original.save_weights(path)
    first = build_experiment_model(EXPERIMENTS[0], config, 2, path)
    assert first.get_layer("head_dropout").rate == 0.3
    # Same weights as the original; in training, dropout makes two calls on
    # the same images differ, where the original (BatchNorm on batch
    # statistics) repeats itself.
    x = (
        np.random.default_rng(0)
        .uniform(-1, 1, (4, 32, 32, 3))
        .astype("float32")
    )
    np.testing.assert_allclose(first(x), original(x), atol=1e-6)
    np.testing.assert_allclose(
        original(x, training=True), original(x, training=True), atol=1e-6
    )
    assert (
        np.abs(first(x, training=True) - first(x, training=True)).max() > 1e-4
    )
    fcn = build_experiment_model(EXPERIMENTS[2], config, 2, path)
    assert fcn.get_layer("top_dropout").rate == 0.3


def test_notebook_defaults_are_the_demo_settings(monkeypatch):
    """The notebook's parameters cell, left as shipped, trains exactly what
    `python -m fcn_experiments demo` trains (it once overrode the quick
    profile's Adam rate with the paper's SGD 0.01)."""
    import dataclasses
    import json

    import fcn_experiments

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "FCN_demo.ipynb")) as f:
        cells = [
            "".join(cell["source"])
            for cell in json.load(f)["cells"]
            if cell["cell_type"] == "code"
        ]
    captured = {}
    monkeypatch.setattr(
        fcn_experiments, "run_experiments", lambda **kw: captured.update(kw)
    )
    namespace = {}
    exec(cells[0], namespace)
    exec(cells[1], namespace)
    from_notebook = dataclasses.asdict(make_config(**captured))
    from_cli = dataclasses.asdict(make_config("quick"))
    for values in (from_notebook, from_cli):
        values.pop("output_dir")
    assert from_notebook == from_cli
