"""`python -m fcn_experiments predict` on real photos and bad files, with an
experiment trained for real (tiny profile, experiment #3: native size)."""

import csv
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import keras

from fcn_experiments import cli
from fcn_experiments import run_experiments
from fcn_experiments.predict.images import predict_images
from fcn_experiments.predict.model_source import ModelSourceError
from fcn_experiments.predict.model_source import resolve_model_source
from loader_test_images import photo
from loader_test_images import save_with_orientation
from loader_test_images import write_bad_files

EXPERIMENT = 3  # FCN at 1.5x, native: 48 px shorter side in the tiny profile.


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_run_to_copy):
    """A tiny run holding experiment #3: a copy of the notebook's run where
    the session runs the notebook anyway (tests/conftest.py), else its own."""
    out = str(tmp_path_factory.mktemp("snapshots"))
    if tiny_run_to_copy:
        shutil.copytree(tiny_run_to_copy, out, dirs_exist_ok=True)
        return out
    run_experiments(
        profile="tiny",
        experiments=(EXPERIMENT,),
        output_dir=out,
        plots_to_make=False,
        verbose=0,
    )
    return out


@pytest.fixture(scope="module")
def experiment_dir(run_dir):
    return os.path.join(run_dir, "exp3_fcn_1.5x")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A folder of real photos in unusual encodings, bad files among them;
    returns (folder, {name: path}, expected upright (width, height))."""
    folder = str(tmp_path_factory.mktemp("to_score"))
    paths, sizes = {}, {}

    def add(name, img, **save):
        paths[name] = os.path.join(folder, "photos", name)
        os.makedirs(os.path.dirname(paths[name]), exist_ok=True)
        img.save(paths[name], **save)
        sizes[name] = img.size

    add("rocket.jpg", photo("rocket"), quality=95)
    add("wide.png", photo("motorcycle_wide"))
    add("cmyk.jpg", photo("coffee").convert("CMYK"), quality=95)
    gray = np.asarray(photo("chelsea_portrait").convert("L"))
    add("sixteen_bit.png", Image.fromarray((gray.astype(np.uint16) << 8) | 0x80))
    # Smaller than MobileNetV2's 32 px minimum: upscaled, as in training.
    add("tiny.png", photo("hubble_small", (24, 18)))
    exif = os.path.join(folder, "photos", "exif_rotated.jpg")
    save_with_orientation(photo("astronaut", (90, 60)), exif, 6, quality=95)
    paths["exif_rotated.jpg"], sizes["exif_rotated.jpg"] = exif, (90, 60)
    bad = write_bad_files(os.path.join(folder, "photos", "bad"))
    for name in ("corrupt.png", "truncated.jpg", "html_page.jpg", "bomb.png"):
        paths[name] = bad[name]
    for name in ("zero_byte.jpg", "truncated.png"):
        os.remove(bad[name])
    notes = os.path.join(folder, "notes.txt")
    with open(notes, "w") as f:
        f.write("not an image\n")
    paths["notes.txt"] = notes
    return folder, paths, sizes


GOOD = (
    "cmyk.jpg",
    "exif_rotated.jpg",
    "rocket.jpg",
    "sixteen_bit.png",
    "tiny.png",
    "wide.png",
)
BAD = ("bomb.png", "corrupt.png", "html_page.jpg", "truncated.jpg", "notes.txt")


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def cli_run(experiment_dir, images, tmp_path_factory):
    folder, paths, _ = images
    out = str(tmp_path_factory.mktemp("predict"))
    output = os.path.join(out, "scores.csv")
    heatmaps = os.path.join(out, "heatmaps")
    status = cli.main(
        [
            "predict",
            experiment_dir,
            os.path.join(folder, "photos"),
            paths["notes.txt"],
            "--output",
            output,
            "--heatmaps",
            heatmaps,
            "--batch-size",
            "2",
            "--quiet",
        ]
    )
    return status, _read_csv(output)


def test_predict_scores_good_files_and_reports_bad_ones(cli_run, images, capsys):
    status, rows = cli_run
    _, paths, sizes = images
    # Each folder's files sorted, subfolders after them, then the explicit file.
    expected_order = sorted(
        (paths[n] for n in GOOD + BAD if n != "notes.txt"),
        key=lambda p: (os.path.dirname(p), os.path.basename(p)),
    ) + [paths["notes.txt"]]
    assert [row["path"] for row in rows] == expected_order
    assert status == 1
    by_name = {os.path.basename(row["path"]): row for row in rows}
    class_columns = [c for c in rows[0] if c.startswith("p_")]
    assert class_columns == ["p_degraded", "p_pristine"]
    for name in GOOD:
        row = by_name[name]
        assert row["error"] == ""
        assert (int(row["width"]), int(row["height"])) == sizes[name], name
        probabilities = np.array([float(row[c]) for c in class_columns])
        assert abs(probabilities.sum() - 1) < 1e-5
        assert row["predicted_class"] == class_columns[
            int(np.argmax(probabilities))
        ][2:]
        assert row["scales"] == "1"
        with Image.open(row["heatmap"]) as heatmap:
            assert heatmap.format == "PNG" and min(heatmap.size) >= 256
    for name in BAD:
        row = by_name[name]
        assert paths[name] in row["error"]
        assert row["predicted_class"] == "" and row["heatmap"] == ""
    assert "decompression bomb" in by_name["bomb.png"]["error"]


def test_predict_equals_the_model_on_the_training_loader(
    experiment_dir, cli_run, images
):
    """Same pixels as the training loaders' native mode, same model output
    (normalized as Keras' crossentropy does)."""
    _, rows = cli_run
    _, paths, _ = images
    source = resolve_model_source(experiment_dir)
    assert source.input_size == 48
    folder = os.path.dirname(paths["rocket.jpg"])
    dataset = keras.utils.fcn_image_dataset_from_directory(
        folder,
        labels=None,
        image_size=48,
        resize_mode="native",
        batch_size=None,
        shuffle=False,
    )
    expected = {}
    for path, image in zip(dataset.file_paths, dataset.as_numpy_iterator()):
        assert min(image.shape[:2]) == 48 and max(image.shape[:2]) % 32 == 0
        scores = source.model.predict_on_batch(source.preprocess(image[None].copy()))
        expected[os.path.basename(path)] = scores[0] / scores[0].sum()
    assert sorted(expected) == sorted(GOOD)
    for row in rows:
        name = os.path.basename(row["path"])
        if name in expected:
            got = [float(row["p_degraded"]), float(row["p_pristine"])]
            np.testing.assert_allclose(got, expected[name], atol=2e-6)


def test_one_trace_for_all_shapes_and_multi_scale_is_the_mean(
    experiment_dir, images
):
    _, paths, _ = images
    files = [paths[n] for n in ("rocket.jpg", "wide.png", "sixteen_bit.png")]
    source = resolve_model_source(experiment_dir)
    single = {}
    for scale in (1.0, 1.5):
        scores, stats = predict_images(
            source, files, scales=(scale,), batch_size=2, verbose=0
        )
        single[scale] = np.stack([s.probabilities for s in scores])
        # 3 images, 3 aspect ratios: 3 shapes, and still one trace.
        assert stats["shapes"] == 3 and stats["traces"] == 1
    scores, stats = predict_images(
        source, files, scales=(1.0, 1.5), batch_size=2, verbose=0
    )
    assert stats["traces"] == 1 and stats["failed"] == 0
    both = np.stack([s.probabilities for s in scores])
    np.testing.assert_allclose(both, (single[1.0] + single[1.5]) / 2, atol=1e-6)


def test_predict_with_the_saved_best_keras_file(run_dir, experiment_dir, images, tmp_path):
    """Each finished experiment leaves best.keras; it scores like the folder,
    and `--experiment K` finds the folder in a run's output."""
    _, paths, _ = images
    files = [paths["rocket.jpg"], paths["cmyk.jpg"]]
    from_folder = resolve_model_source(run_dir, experiment=EXPERIMENT)
    from_file = resolve_model_source(os.path.join(experiment_dir, "best.keras"))
    assert from_file.class_names == from_folder.class_names
    assert from_file.input_size == from_folder.input_size == 48
    a, _ = predict_images(from_folder, files, verbose=0)
    b, _ = predict_images(from_file, files, verbose=0)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.probabilities, y.probabilities, atol=1e-6)


def test_predict_exit_codes_and_usage_errors(experiment_dir, images, tmp_path, capsys):
    _, paths, _ = images
    output = str(tmp_path / "scores.csv")
    good = ["predict", experiment_dir, paths["rocket.jpg"], "--output", output]
    assert cli.main(good + ["--quiet"]) == 0
    assert len(_read_csv(output)) == 1
    only_bad = ["predict", experiment_dir, paths["corrupt.png"], "--output", output]
    assert cli.main(only_bad) == 1
    assert "1 of 1 images could not be scored" in capsys.readouterr().err
    assert _read_csv(output)[0]["error"].startswith(paths["corrupt.png"])
    assert cli.main(good + ["--scales", "1,x"]) == 2
    assert "Received: scales='1,x'" in capsys.readouterr().err
    assert cli.main(good + ["--size", "16"]) == 2
    assert "at least 32 px" in capsys.readouterr().err
    missing = ["predict", experiment_dir, str(tmp_path / "nothing.jpg")]
    assert cli.main(missing) == 2
    assert "No such file or folder" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path), paths["rocket.jpg"]]) == 2
    assert "not an experiment folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["predict", experiment_dir])  # no INPUT
    assert exit_info.value.code == 2
    with pytest.raises(ModelSourceError, match="experiment=12"):
        resolve_model_source(os.path.dirname(experiment_dir), experiment=12)
