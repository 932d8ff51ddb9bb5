"""The run's split (issue 13): one stratified, seeded split of the training
folder, disjoint from validation and test, the same for every experiment
and on resume, recorded and fingerprinted; its checks; per-class reporting."""

import json
import os
import shutil
import warnings

import numpy as np
import pytest

import keras

import fcn_experiments
from fcn_experiments.config import make_config
from fcn_experiments.data import splits
from fcn_experiments.data.pipelines import resolve_folders
from fcn_experiments.evaluation import per_class as class_report
from fcn_experiments.models.experiments import get_experiment
from fcn_experiments.training import records as training
from split_test_images import write_clean_marked


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """A user's two-class folders of real photos: 24 per class in train, 6 in
    test."""
    root = tmp_path_factory.mktemp("own")
    write_clean_marked(str(root / "train"), 24, seed=0)
    write_clean_marked(str(root / "test"), 6, seed=1)
    return root


def _config(root, out, **overrides):
    return make_config("tiny", train_dir=str(root / "train"),
                       test_dir=str(root / "test"), output_dir=str(out), **overrides)


def _plan(root, out="unused", **overrides):
    config = _config(root, out, **overrides)
    return splits.plan_split(resolve_folders(config), config)


def _classes(files):
    return sorted(c for _, c in files)


def test_plan_is_stratified_disjoint_and_what_the_loader_loads(own):
    plan = _plan(own)
    train, validation, test = (
        {p for p, _ in plan.files[s]} for s in splits.SPLITS)
    assert not (train & validation or train & test or validation & test)
    assert len(train | validation) == 48 and len(test) == 12
    # round(0.15 * 24) = 4 of each class in validation.
    assert plan.counts()["validation"] == {"clean": 4, "marked": 4}
    assert plan.counts()["train"] == {"clean": 20, "marked": 20}
    for subset, shuffle in (("training", True), ("validation", False)):
        loaded = keras.utils.fcn_image_dataset_from_directory(
            str(own / "train"), image_size=32, seed=1, validation_split=0.15,
            subset=subset, shuffle=shuffle, verbose=False)
        name = "train" if subset == "training" else "validation"
        assert sorted(loaded.file_paths) == sorted(p for p, _ in plan.files[name])


def test_fingerprint_changes_with_the_split(own, tmp_path):
    shutil.copytree(own, tmp_path / "own")
    root = tmp_path / "own"
    first = splits.fingerprint(_plan(root))
    assert splits.fingerprint(_plan(root)) == first
    assert splits.fingerprint(_plan(root, seed=2)) != first
    assert splits.fingerprint(_plan(root, validation_split=0.3)) != first
    shutil.copy(root / "train" / "clean" / "clean_000.jpg",
                root / "train" / "clean" / "clean_new.jpg")
    assert splits.fingerprint(_plan(root))["files_sha256"] != first["files_sha256"]


def test_test_folder_with_other_classes_is_refused(own, tmp_path):
    shutil.copytree(own, tmp_path / "own")
    os.rename(tmp_path / "own" / "test" / "marked", tmp_path / "own" / "test" / "stamped")
    with pytest.raises(ValueError) as e:
        _plan(tmp_path / "own")
    message = str(e.value)
    assert "\n" not in message
    assert "The test folder" in message
    assert "missing: ['marked'], extra: ['stamped']" in message


def test_class_without_test_images_is_refused(own, tmp_path):
    shutil.copytree(own, tmp_path / "own")
    for name in os.listdir(tmp_path / "own" / "test" / "marked"):
        os.remove(tmp_path / "own" / "test" / "marked" / name)
    with pytest.raises(ValueError, match=r"^The test split has no images of "
                       r"class\(es\) \['marked'\] .*Add images"):
        _plan(tmp_path / "own")


def test_class_without_validation_images_is_refused(own, tmp_path):
    shutil.copytree(own, tmp_path / "own")
    folder = tmp_path / "own" / "train" / "marked"
    for name in sorted(os.listdir(folder))[1:]:
        os.remove(folder / name)  # one image left: it stays in train
    with pytest.raises(ValueError, match=r"^The validation split has no images "
                       r"of class\(es\) \['marked'\]"):
        _plan(tmp_path / "own")


def test_few_images_of_a_class_is_a_warning(own):
    # 4 per class in validation, 6 in test.
    with pytest.warns(UserWarning, match=r"The validation split has fewer than "
                      r"min_class_images=5 images of class\(es\) "
                      r"\{'clean': 4, 'marked': 4\}"):
        _plan(own, min_class_images=5)
    with pytest.warns(UserWarning, match="The test split has fewer than "
                      "min_class_images=7"):
        _plan(own, min_class_images=7)
    # No warning at the threshold.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _plan(own, min_class_images=4)


def test_check_loaded_refuses_a_file_from_elsewhere(own):
    plan = _plan(own, min_class_images=1)
    loaded = {name: [p for p, _ in plan.files[name]] for name in splits.SPLITS}
    assert splits.check_loaded(plan, loaded, 1) == plan.counts()
    loaded["validation"].append(plan.files["train"][0][0])
    with pytest.raises(splits.SplitError, match="validation split holds 1 file"):
        splits.check_loaded(plan, loaded, 1)


def test_per_class_accuracy():
    report = class_report.per_class_accuracy(
        [0, 0, 0, 1, 1, 2], [0, 1, 0, 1, 0, 0], ["a", "b", "c"])
    assert report["a"] == {"correct": 2, "count": 3, "accuracy": 2 / 3}
    assert report["b"] == {"correct": 1, "count": 2, "accuracy": 0.5}
    assert report["c"]["count"] == 1 and report["c"]["accuracy"] == 0.0
    assert np.isnan(class_report.per_class_accuracy([0], [0], ["a", "b"])["b"]["accuracy"])
    with pytest.raises(ValueError, match="Received: y_true.shape"):
        class_report.per_class_accuracy([0, 1], [0], ["a", "b"])
    with pytest.raises(ValueError, match="outside the 2 classes"):
        class_report.per_class_accuracy([0, 2], [0, 1], ["a", "b"])


def _result(out, number):
    folder = os.path.join(out, get_experiment(number).folder)
    with open(os.path.join(folder, training.RESULT_FILE)) as f:
        return json.load(f)


def test_one_split_for_all_experiments_and_resume(own, tmp_path):
    """Real training (tiny profile) of two experiments on the photos."""
    shutil.copytree(own, tmp_path / "own")
    own = tmp_path / "own"
    out = str(tmp_path / "out")
    config = _config(own, out, experiments=(1, 2), min_class_images=1)
    rows = fcn_experiments.run_experiments(config, plots_to_make=False, verbose=0)
    recorded = splits.read_recorded(out)
    plan = _plan(own, min_class_images=1)
    assert recorded == [(os.path.relpath(p, str(own / "train")), c)
                        for p, c in plan.files["validation"]]
    assert _classes(recorded) == ["clean"] * 4 + ["marked"] * 4
    counts = plan.counts()
    assert [row["experiment"] for row in rows] == [1, 2]
    for row in rows:
        assert row["class_counts"] == counts
        per_class = row["per_class_test"]
        assert [per_class[c]["count"] for c in ("clean", "marked")] == [6, 6]
        # The predict pass agrees with Keras' evaluate.
        correct = sum(v["correct"] for v in per_class.values())
        assert correct / 12 == pytest.approx(row["test_accuracy"], abs=1e-6)
        assert 0.0 <= row["val_accuracy"] <= 1.0
        with open(os.path.join(out, get_experiment(row["experiment"]).folder,
                               training.CONFIG_FILE)) as f:
            assert json.load(f)["split"] == splits.fingerprint(plan)
    with open(os.path.join(out, "results.md")) as f:
        markdown = f.read()
    assert "| clean | 20 | 4 | 6 |" in markdown
    assert "## Test accuracy per class" in markdown

    # Resume: experiment 2 unfinished; it trains again on the same split.
    os.remove(os.path.join(out, get_experiment(2).folder, training.RESULT_FILE))
    fcn_experiments.run_experiments(config, plots_to_make=False, verbose=0)
    assert splits.read_recorded(out) == recorded
    assert _result(out, 2)["class_counts"] == counts

    # A changed split (a new training photo) is refused like a changed setting.
    shutil.copy(own / "train" / "clean" / "clean_000.jpg",
                own / "train" / "clean" / "clean_new.jpg")
    with pytest.raises(RuntimeError, match=r"other settings \(split: "):
        fcn_experiments.run_experiments(config, plots_to_make=False, verbose=0)
    assert splits.read_recorded(out) == recorded
