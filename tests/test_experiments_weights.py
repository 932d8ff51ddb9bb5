"""The demo's starting weights: `weights="auto"` (cache, else download, else
random init with a notice), `offline=True` (no network at all), and one
clear line on the command line when ImageNet weights are required but
cannot be had or the cached file is broken. The "internet" is a loopback
server (`weights_mirror`); `network_guard` fails a test that leaves the
machine.
"""

import csv
import os
import subprocess
import sys

import pytest
from PIL import Image

import keras
from keras.src.applications import fcn_weights

from fcn_experiments import cli
from fcn_experiments.config import make_config
from fcn_experiments.models import starting_weights
from fcn_model_helpers import save_legacy_h5
from weights_mirror import closed_port
from weights_mirror import keras_home  # noqa: F401 (fixture)
from weights_mirror import mirror  # noqa: F401 (fixture)
from weights_mirror import network_guard  # noqa: F401 (fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOBILENET = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224.h5"
VGG16 = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"


@pytest.fixture
def folders(tmp_path):
    """A two-class folder dataset (train and test), real photo crops."""
    import skimage.data

    photo = Image.fromarray(skimage.data.coffee())
    for split in ("train", "test"):
        for index, label in enumerate(("a", "b")):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            # Three per class: the run's split gives validation one of each.
            for k in range(3):
                box = (index * 64, k * 64, index * 64 + 64, k * 64 + 64)
                photo.crop(box).save(folder / f"{k}.png")
    return ["--train-dir", str(tmp_path / "train"), "--test-dir",
            str(tmp_path / "test"), "--output-dir", str(tmp_path / "out")]


def one_error_line(stderr):
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_auto_offline_falls_back_to_random_without_network(
    keras_home, network_guard, capsys
):
    config = make_config("quick", offline=True)
    assert starting_weights.resolve_weights(config) == ("random", None)
    out = capsys.readouterr().out
    assert "RANDOM INITIALISATION" in out and MOBILENET in out
    assert "offline" in out


def test_auto_downloads_into_the_cache_and_records_it(
    mirror, keras_home, tmp_path, capsys
):
    keras.utils.set_random_seed(5)
    # Built small: a MobileNetV2's weights do not depend on its input size.
    imagenet = keras.applications.MobileNetV2(
        alpha=0.35, weights=None, input_shape=(96, 96, 3)
    )
    served = tmp_path / MOBILENET
    save_legacy_h5(imagenet, served)
    file = starting_weights.imagenet_file(make_config("quick"))
    mirror.serve(file, served.read_bytes())

    config = make_config("tiny", weights="auto", output_dir=str(tmp_path / "o"))
    start = starting_weights.prepare_starting_weights(config, 2)
    assert start["weights"] == "imagenet"  # What results.csv records.
    assert mirror.count(file) == 1
    cached = keras_home / "models" / MOBILENET
    assert cached.read_bytes() == served.read_bytes()
    model = starting_weights.build_original(config, 2)
    model.load_weights(start["path"])
    got = model.get_layer("block_16_project").kernel.numpy()
    want = imagenet.get_layer("block_16_project").kernel.numpy()
    assert (got == want).all()
    assert "RANDOM" not in capsys.readouterr().out


def test_auto_with_a_dead_server_falls_back_to_random(
    keras_home, network_guard, monkeypatch, capsys
):
    monkeypatch.setattr(
        fcn_weights, "BASE_URL", f"http://127.0.0.1:{closed_port()}/"
    )
    config = make_config("quick")
    assert starting_weights.resolve_weights(config) == ("random", None)
    out = capsys.readouterr().out
    assert "Connection refused" in out and "RANDOM INITIALISATION" in out


# The real command line, in a fresh interpreter whose sockets all fail.
GUARDED_CLI = (
    "import runpy, socket, sys\n"
    "def refuse(*args, **kwargs):\n"
    "    sys.stderr.write(f'NETWORK ACCESS {args}\\n')\n"
    "    raise OSError('no network')\n"
    "socket.socket.connect = socket.getaddrinfo = refuse\n"
    "sys.argv = ['fcn_experiments'] + sys.argv[1:]\n"
    "runpy.run_module('fcn_experiments', run_name='__main__')\n"
)


def guarded_cli(args, keras_home):
    env = {**os.environ, "KERAS_HOME": str(keras_home)}
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT, *filter(None, [env.get("PYTHONPATH")])]
    )
    done = subprocess.run(
        [sys.executable, "-c", GUARDED_CLI, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert "NETWORK ACCESS" not in done.stderr, done.stderr
    return done


def test_paper_profile_offline_stops_with_one_line(keras_home, tmp_path):
    done = guarded_cli(
        ["run", "--profile", "paper", "--offline", "--output-dir",
         str(tmp_path)],
        keras_home,
    )
    assert done.returncode == 1, done.stderr
    assert not (tmp_path / "data").exists()  # Stopped before building it.
    line = one_error_line(done.stderr)
    assert VGG16 in line and str(keras_home / "models") in line
    assert "offline" in line and "weights=<path" in line
    assert fcn_weights.KERAS_BASE_URL in line


def test_offline_run_touches_no_network(keras_home, tmp_path):
    # A whole run, the bundled dataset built too: random init, recorded.
    done = guarded_cli(
        ["run", "--profile", "tiny", "--weights", "auto", "--offline",
         "--experiments", "1", "--no-plots", "--output-dir", str(tmp_path)],
        keras_home,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "RANDOM INITIALISATION" in done.stdout
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["weights"] for row in rows] == ["random"]


# The run stops at its starting weights, before anything trains. A graph-mode
# run would first time a few training steps of its model in float32 and bf16
# (`precision.resolve`'s probe, about a minute of this suite on 2 cores); an
# eager run times nothing, and reaches the weights the same way.
EAGER = ("--run-eagerly",)


def test_missing_file_with_weights_imagenet_offline(
    keras_home, network_guard, folders, capsys
):
    code = cli.main(["run", "--weights", "imagenet", "--offline", *folders])
    assert code == 1
    line = one_error_line(capsys.readouterr().err)
    assert MOBILENET in line and "not in" in line and "offline" in line


def test_cached_file_failing_its_hash_offline(
    keras_home, network_guard, folders, capsys
):
    (keras_home / "models").mkdir()
    (keras_home / "models" / VGG16).write_bytes(b"half a download")
    code = cli.main(["run", "--model", "vgg16", "--offline", *EAGER, *folders])
    assert code == 1  # weights=auto too: a broken file is not trained around.
    line = one_error_line(capsys.readouterr().err)
    assert VGG16 in line and "broken download" in line and "Delete it" in line


def test_unreadable_cached_file(keras_home, network_guard, folders, capsys):
    # Keras publishes no hash for MobileNetV2: the broken file shows on load.
    (keras_home / "models").mkdir()
    (keras_home / "models" / MOBILENET).write_bytes(b"half a download")
    code = cli.main(["run", "--offline", *EAGER, *folders])
    assert code == 1
    line = one_error_line(capsys.readouterr().err)
    assert f"Cannot read the ImageNet weights file {keras_home}" in line
    assert "Delete it" in line


def test_download_weights_is_a_deprecated_alias_of_offline():
    with pytest.warns(FutureWarning, match="offline=True instead"):
        assert make_config("quick", download_weights=False).offline
    with pytest.warns(FutureWarning, match="offline=False instead"):
        assert not make_config("quick", download_weights=True).offline
    args = vars(cli.build_parser().parse_args(["demo", "--no-download-weights"]))
    assert args["download_weights"] is False
    assert not make_config("quick").offline
