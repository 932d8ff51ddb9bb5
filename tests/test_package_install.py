"""The package as a user installs it, far from the checkout (marked `package`).

Builds the sdist and, from it, the wheel; makes a fresh venv in a temporary
folder; installs the wheel there with only its runtime layer, pinned by
constraints.txt; then, from that folder and without PYTHONPATH: `fcn-setup
install`, every import form of an FCN module, `fcn-experiments run` (tiny
profile, #1 and #3) on a folder-per-class dataset of real photos,
`fcn-experiments predict` with its best model, the notebook headless (after
adding the `notebook` and `data` extras), `fcn-setup status` and `fcn-setup
uninstall`, after which Keras is byte for byte as before. CI:
.ci/steps/25-package.sh. Set-up downloads nothing the pip cache already has.
"""

import csv
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

from split_test_images import write_clean_marked

pytestmark = pytest.mark.package

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints.txt"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
DIST_INFO = f"fcn_in_keras-{VERSION}.dist-info"
# Only the test stack, the notebook stack and the browser driver: none of
# them belongs in the runtime layer.
NOT_RUNTIME = ("pytest", "jupyterlab", "jupyter-server", "jupyter-client",
               "notebook", "papermill", "nbclient", "ipykernel", "playwright",
               "ruff", "scikit-image")
FCN_MODULE = "vgg16_fcn"


def _environment(home):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    # The checkout's conftest limits threads; a user's run does not.
    env.update(TF_CPP_MIN_LOG_LEVEL="2", KERAS_HOME=str(home / "keras_home"),
               MPLBACKEND="Agg")
    return env


class UserVenv:
    """A venv in `folder`, run from `folder` as a user's shell would."""

    def __init__(self, folder):
        self.folder = folder
        self.venv = folder / "venv"
        self.bin = self.venv / "bin"
        self.env = _environment(folder)
        self.times = {}

    def run(self, *args, check=True, step=None):
        began = time.perf_counter()
        result = subprocess.run(
            [str(a) for a in args], cwd=self.folder, env=self.env,
            capture_output=True, text=True,
        )
        if step:
            self.times[step] = round(time.perf_counter() - began, 1)
        if check:
            assert result.returncode == 0, (
                f"{args} exited {result.returncode}:\n{result.stdout[-4000:]}"
                f"\n{result.stderr[-4000:]}")
        return result

    def python(self, *args, **kwargs):
        return self.run(self.bin / "python", *args, **kwargs)

    def pip_install(self, *args, step):
        return self.python("-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", "-c", CONSTRAINTS,
                           *args, step=step)

    def distributions(self):
        listing = self.python("-m", "pip", "list", "--format", "json").stdout
        return {d["name"].lower().replace("_", "-"): d["version"]
                for d in json.loads(listing)}

    def keras_dir(self):
        return Path(self.python(
            "-c", "import importlib.util as u; "
            "print(u.find_spec('keras').submodule_search_locations[0])",
        ).stdout.strip())


def tree_hashes(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The sdist and the wheel built from it (`python -m build`)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True)
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


@pytest.fixture(scope="module")
def user(tmp_path_factory, dist):
    """A fresh venv outside the checkout with the wheel's runtime layer."""
    folder = tmp_path_factory.mktemp("user")
    assert ROOT not in folder.parents
    user = UserVenv(folder)
    user.run(sys.executable, "-m", "venv", user.venv, step="venv")
    user.pip_install(dist[0], step="pip install wheel (runtime layer)")
    user.keras_before = tree_hashes(user.keras_dir())
    return user


@pytest.fixture(scope="module")
def photos(user):
    """Folder-per-class train and test sets of real photo crops."""
    data = user.folder / "photos"
    write_clean_marked(data / "train", 24, seed=0)
    write_clean_marked(data / "test", 8, seed=1)
    return data


def test_wheel_holds_the_package_and_no_tests_bench_or_results(dist):
    wheel, sdist = dist
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"fcn_experiments", "fcn_install", DIST_INFO}, tops
    assert not [n for n in names if n.startswith(("tests/", "bench/", "docs/"))
                or "/results/" in n or n.endswith(".pyc")]
    extensions = sorted(p.relative_to(ROOT / "extensions").as_posix()
                        for p in (ROOT / "extensions").rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts)
    packaged = sorted(n.removeprefix("fcn_install/extensions/") for n in names
                      if n.startswith("fcn_install/extensions/"))
    assert packaged == extensions
    assert {"fcn_experiments/FCN_demo.ipynb", "fcn_experiments/test_image.jpg"} <= set(names)
    entry_points = zipfile.ZipFile(wheel).read(f"{DIST_INFO}/entry_points.txt").decode()
    assert "fcn-setup = fcn_install.command:console_main" in entry_points
    assert "fcn-experiments = fcn_experiments.cli:console_main" in entry_points
    with tarfile.open(sdist) as archive:
        members = {m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name}
    assert {"pyproject.toml", "setup.py", "extensions/public_api.toml",
            "FCN_demo.ipynb", "test_image.jpg"} <= members
    print(f"wheel {wheel.name}: {wheel.stat().st_size / 1024:.0f} KiB")


def test_runtime_layer_holds_no_test_or_notebook_stack(user):
    installed = user.distributions()
    assert installed["fcn-in-keras"] == VERSION
    assert installed["keras"].startswith("3.15.") and installed["tensorflow"].startswith("2.21.")
    present = sorted(set(NOT_RUNTIME) & set(installed))
    assert not present, f"the runtime layer installed {present}"
    assert not [name for name in installed if name.startswith("jupyter")]
    print(f"runtime layer: {len(installed)} distributions (pip list, pip and "
          f"setuptools included)")


def test_commands_answer_help_from_outside_the_checkout(user):
    for command in ("fcn-setup", "fcn-experiments"):
        result = user.run(user.bin / command, "--help")
        assert f"usage: {command}" in result.stdout
    result = user.python("-c", "import fcn_experiments, fcn_install; "
                         "print(fcn_experiments.__file__, fcn_install.__file__)")
    assert str(ROOT) not in result.stdout and str(user.venv) in result.stdout


def test_fcn_setup_install_then_every_import_form(user):
    result = user.run(user.bin / "fcn-setup", "install", step="fcn-setup install")
    assert f"installed FCN extensions into Keras 3.15.1 at {user.keras_dir()}" in result.stdout
    forms = {
        "keras.applications": f"import keras; m = keras.applications.{FCN_MODULE}",
        "tf.keras.applications": f"import tensorflow as tf; m = tf.keras.applications.{FCN_MODULE}",
        "from keras.applications": f"from keras.applications import {FCN_MODULE} as m",
        "from tensorflow.keras.applications":
            f"from tensorflow.keras.applications import {FCN_MODULE} as m",
    }
    script = "\n".join(
        f"{code}\nprint({form!r}, m.VGG16_fcn.__module__, m.to_fcn.__name__)"
        for form, code in forms.items())
    lines = user.python("-c", script).stdout.strip().splitlines()
    assert len(lines) == 4
    for line, form in zip(lines, forms):
        assert line == f"{form} keras.src.applications.{FCN_MODULE} to_fcn"


@pytest.fixture(scope="module")
def tiny_run(user, photos):
    user.run(user.bin / "fcn-setup", "install", "--quiet")
    out = user.folder / "runs"
    user.run(user.bin / "fcn-experiments", "run", "--profile", "tiny",
             "--experiments", "1,3", "--weights", "random", "--offline",
             "--train-dir", "photos/train", "--test-dir", "photos/test",
             "--output-dir", "runs", step="fcn-experiments run (tiny, #1 #3)")
    return out


def test_tiny_run_from_outside_writes_results_and_tensorboard_logs(tiny_run):
    with open(tiny_run / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["experiment"]) for r in rows] == [1, 3]
    for row in rows:
        assert 0.0 <= float(row["test_accuracy"]) <= 1.0
    for folder in ("exp1_original", "exp3_fcn_1.5x"):
        logs = list((tiny_run / folder / "tensorboard").rglob("events.out.tfevents.*"))
        assert logs, f"no TensorBoard events in {tiny_run / folder}"


def test_predict_with_the_best_model(user, tiny_run, photos):
    with open(tiny_run / "results.csv") as f:
        best = max(csv.DictReader(f), key=lambda r: float(r["val_accuracy"]))
    user.run(user.bin / "fcn-experiments", "predict", "runs", "--experiment",
             best["experiment"], "photos/test", "--output", "scores.csv",
             step="fcn-experiments predict")
    with open(user.folder / "scores.csv") as f:
        scored = list(csv.DictReader(f))
    assert len(scored) == 16
    assert {Path(r["path"]).parent.name for r in scored} == {"clean", "marked"}


def test_notebook_runs_headless_from_the_installed_package(user, photos, dist):
    user.pip_install(f"{dist[0]}[notebook,data]", step="pip install [notebook,data]")
    notebook = user.python(
        "-c", "from fcn_experiments.package_files import NOTEBOOK_NAME, package_file; "
        "print(package_file(NOTEBOOK_NAME))").stdout.strip()
    assert notebook.startswith(str(user.venv))
    parameters = dict(PROFILE="tiny", TRAIN_DIR="photos/train", TEST_DIR="photos/test",
                      OUTPUT_DIR="notebook_runs", EXPERIMENTS=[1, 3], OFFLINE=True)
    user.python("-m", "papermill", notebook, "executed.ipynb", "-k", "python3",
                "--no-progress-bar", "-y", json.dumps(parameters),
                step="papermill FCN_demo.ipynb (tiny, #1 #3)")
    executed = json.loads((user.folder / "executed.ipynb").read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    with open(user.folder / "notebook_runs" / "results.csv") as f:
        assert [int(r["experiment"]) for r in csv.DictReader(f)] == [1, 3]


def test_status_then_uninstall_restores_keras_byte_for_byte(user):
    result = user.run(user.bin / "fcn-setup", "status")
    assert "installed and intact" in result.stdout
    result = user.run(user.bin / "fcn-setup", "uninstall", step="fcn-setup uninstall")
    assert "uninstalled" in result.stdout.strip().splitlines()[-1]
    assert tree_hashes(user.keras_dir()) == user.keras_before
    result = user.run(user.bin / "fcn-setup", "status", check=False)
    assert "not installed" in result.stdout
    print("step times (s):", json.dumps(user.times))
