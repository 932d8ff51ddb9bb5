"""FCN_setup.py on real copies of the venv's Keras package.

Each test gets its own copy of Keras, made pristine, and runs the installer in
a subprocess with PYTHONPATH pointing at the copy, as a user would.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import FCN_setup

REPO = Path(__file__).resolve().parents[1]
SETUP = REPO / "FCN_setup.py"
EXPORTS = tomllib.loads((REPO / "extensions" / FCN_setup.PUBLIC_API_FILE).read_text())["export"]


def tree_hashes(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run_setup(site, *args, python=(sys.executable,), check=None):
    env = dict(os.environ, PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [*python, str(SETUP), *args], env=env, capture_output=True, text=True
    )
    if check is not None:
        assert result.returncode == check, result.stdout + result.stderr
    return result


def last_line(result):
    return (result.stdout + result.stderr).strip().splitlines()[-1]


@pytest.fixture(scope="module")
def pristine_site(tmp_path_factory):
    """A copy of the venv's Keras with any FCN install undone."""
    site = tmp_path_factory.mktemp("pristine")
    shutil.copytree(FCN_setup.find_keras(), site / "keras", symlinks=True)
    FCN_setup.uninstall(site / "keras", say=lambda line: None)
    assert not (site / "keras" / FCN_setup.STATE_DIR).exists()
    assert FCN_setup.BLOCK_BEGIN not in (site / "keras/applications/__init__.py").read_text()
    return site


@pytest.fixture
def site(pristine_site, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(pristine_site, site, symlinks=True)
    # World-readable, so the read-only test can run with fewer rights.
    os.chmod(tmp_path, 0o755)
    return site


def test_installs_into_the_keras_on_pythonpath(site):
    result = run_setup(site, "install", check=0)
    assert f"Keras 3.15.1 at {site / 'keras'}" in result.stdout
    assert (site / "keras" / FCN_setup.STATE_DIR / FCN_setup.MANIFEST_NAME).is_file()
    manifest = json.loads((site / "keras/.fcn_extensions/manifest.json").read_text())
    for rel, entry in manifest["files"].items():
        content = (site / "keras" / rel).read_bytes()
        assert entry["installed_sha256"] == hashlib.sha256(content).hexdigest()
        if entry["action"] == "modified":
            backup = (site / "keras/.fcn_extensions/backup" / rel).read_bytes()
            assert entry["original_sha256"] == hashlib.sha256(backup).hexdigest()


def test_every_public_import_form_works(site):
    run_setup(site, "install", check=0)
    script = textwrap.dedent(
        """
        import importlib, json, sys
        import keras
        import tensorflow as tf
        exports = json.loads(sys.argv[1])
        assert keras.__file__.startswith(sys.argv[2]), keras.__file__
        checked = 0
        for export in exports:
            parent, _, leaf = ("." + export["package"]).rpartition(".")
            source = importlib.import_module(export["source"])
            forms = {
                "attribute after import keras": eval("keras." + export["package"]),
                "tf.keras attribute": eval("tf.keras." + export["package"]),
                "import keras.<package>": importlib.import_module("keras." + export["package"]),
                "tf.keras twin package": importlib.import_module(
                    "keras._tf_keras.keras." + export["package"]),
            }
            namespace = {}
            exec(f"from keras{parent} import {leaf} as m1", namespace)
            exec(f"from tensorflow.keras{parent} import {leaf} as m2", namespace)
            forms["from keras.<parent> import <leaf>"] = namespace["m1"]
            forms["from tensorflow.keras.<parent> import <leaf>"] = namespace["m2"]
            for form, module in forms.items():
                for name in export["names"]:
                    assert getattr(module, name) is getattr(source, name), (form, name)
                    checked += 1
        print("checked", checked)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(EXPORTS), str(site / "keras")],
        env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    expected = 6 * sum(len(e["names"]) for e in EXPORTS)
    assert f"checked {expected}" in result.stdout


def test_install_twice_equals_install_once(site):
    run_setup(site, "install", check=0)
    once = tree_hashes(site / "keras")
    result = run_setup(site, "install", check=0)
    assert "up to date" in last_line(result)
    assert tree_hashes(site / "keras") == once
    for api_root in FCN_setup.API_ROOTS:
        init = site / "keras" / api_root / "applications" / "__init__.py"
        text = init.read_text()
        assert text.count(FCN_setup.BLOCK_BEGIN) == 1, init
        block = text.split(FCN_setup.BLOCK_BEGIN)[1].split(FCN_setup.BLOCK_END)[0]
        for line in block.strip().splitlines():
            assert text.count(line + "\n") == 1, (init, line)


def test_install_install_uninstall_restores_every_byte(site):
    before = tree_hashes(site / "keras")
    run_setup(site, "install", check=0)
    # Importing compiles .pyc files for the installed and amended modules.
    env = dict(os.environ, PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", "import keras.applications, keras.utils"],
                   env=env, check=True)
    run_setup(site, "install", check=0)
    result = run_setup(site, "uninstall", check=0)
    assert "uninstalled" in last_line(result)
    assert tree_hashes(site / "keras") == before


def test_dry_run_changes_nothing(site):
    before = tree_hashes(site / "keras")
    result = run_setup(site, "install", "--dry-run", check=0)
    assert "would add" in result.stdout and "would modify" in result.stdout
    assert "nothing changed" in last_line(result)
    assert tree_hashes(site / "keras") == before

    run_setup(site, "install", check=0)
    installed = tree_hashes(site / "keras")
    result = run_setup(site, "uninstall", "--dry-run", check=0)
    assert "would restore" in result.stdout and "would remove" in result.stdout
    assert tree_hashes(site / "keras") == installed


def test_install_follows_changes_to_extensions(site, tmp_path):
    extensions = tmp_path / "extensions"
    shutil.copytree(REPO / "extensions", extensions)
    extra = extensions / "keras" / "src" / "utils" / "fcn_scratch_module.py"
    extra.write_text("VALUE = 1\n")
    keras_dir = site / "keras"
    FCN_setup.install(keras_dir, extensions, say=lambda line: None)
    assert (keras_dir / "src/utils/fcn_scratch_module.py").read_text() == "VALUE = 1\n"

    extra.write_text("VALUE = 2\n")
    changes = FCN_setup.install(keras_dir, extensions, say=lambda line: None)
    assert changes == [("update", "src/utils/fcn_scratch_module.py")]
    assert (keras_dir / "src/utils/fcn_scratch_module.py").read_text() == "VALUE = 2\n"

    extra.unlink()
    changes = FCN_setup.install(keras_dir, extensions, say=lambda line: None)
    assert changes == [("remove", "src/utils/fcn_scratch_module.py")]
    assert not (keras_dir / "src/utils/fcn_scratch_module.py").exists()
    manifest = FCN_setup.read_manifest(keras_dir)
    assert "src/utils/fcn_scratch_module.py" not in manifest["files"]


def test_status_reports_install_and_drift(site):
    result = run_setup(site, "status", check=0)
    assert "not installed" in last_line(result)
    run_setup(site, "install", check=0)
    result = run_setup(site, "status", check=0)
    assert "installed and intact" in last_line(result)

    manifest = FCN_setup.read_manifest(site / "keras")
    added = sorted(r for r, e in manifest["files"].items() if e["action"] == "added")
    modified = sorted(r for r, e in manifest["files"].items() if e["action"] == "modified")
    (site / "keras" / added[0]).unlink()
    with open(site / "keras" / modified[0], "a") as f:
        f.write("# edited by hand\n")
    result = run_setup(site, "status", check=1)
    assert f"missing: {site / 'keras' / added[0]}" in result.stdout
    assert f"changed: {site / 'keras' / modified[0]}" in result.stdout
    assert "drift in 2 file(s)" in last_line(result)


def test_uninstall_keeps_files_changed_by_someone_else(site):
    keras_dir = site / "keras"
    pristine = (keras_dir / "applications/__init__.py").read_bytes()
    run_setup(site, "install", check=0)
    # Keras reinstalled over the install: its own file is back, plus a change.
    upgraded = pristine + b"# a newer Keras\n"
    (keras_dir / "applications/__init__.py").write_bytes(upgraded)
    result = run_setup(site, "uninstall", check=0)
    assert f"{keras_dir / 'applications/__init__.py'} is changed since install" in result.stdout
    assert "left as they are" in last_line(result)
    assert (keras_dir / "applications/__init__.py").read_bytes() == upgraded
    assert not (keras_dir / FCN_setup.STATE_DIR).exists()
    assert FCN_setup.BLOCK_BEGIN not in (keras_dir / "utils/__init__.py").read_text()
    for export in EXPORTS:
        module = keras_dir.joinpath(*export["source"].split(".")[1:])
        assert not module.with_suffix(".py").exists()


def test_refuses_a_read_only_keras_tree(site):
    python = [sys.executable]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot drop the right to write")
        caps = "-dac_override,-dac_read_search,-fowner"
        python = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", sys.executable]
    before = tree_hashes(site / "keras")
    subprocess.run(["chmod", "-R", "a-w", str(site / "keras")], check=True)
    try:
        result = run_setup(site, "install", python=python, check=1)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(site / "keras")], check=True)
    line = last_line(result)
    assert "not writable" in line and str(site / "keras") in line
    assert "virtual environment" in line and "nothing was changed" in line
    assert tree_hashes(site / "keras") == before


def test_refuses_an_untested_keras_version(site):
    version_file = site / "keras/src/version.py"
    version_file.write_text(version_file.read_text().replace('"3.15.1"', '"3.14.0"'))
    before = tree_hashes(site / "keras")
    result = run_setup(site, "install", check=1)
    assert "Keras 3.14.0" in last_line(result) and ">=3.15,<3.16" in last_line(result)
    assert tree_hashes(site / "keras") == before


def test_refuses_when_keras_is_missing(tmp_path):
    # -S: no site-packages, so this interpreter finds no Keras at all.
    result = run_setup(tmp_path, "install", python=(sys.executable, "-S"), check=1)
    assert "Keras is not installed" in last_line(result)


def test_failed_install_rolls_everything_back(site, monkeypatch):
    keras_dir = site / "keras"
    before = tree_hashes(keras_dir)
    real_write = FCN_setup.Transaction.write
    calls = []

    def failing_write(self, path, data, mtime_ns=None):
        calls.append(path)
        if len(calls) == 8:
            raise OSError(28, "No space left on device")
        return real_write(self, path, data, mtime_ns)

    monkeypatch.setattr(FCN_setup.Transaction, "write", failing_write)
    with pytest.raises(FCN_setup.SetupError, match="rolled back"):
        FCN_setup.install(keras_dir, say=lambda line: None)
    assert len(calls) == 8
    assert tree_hashes(keras_dir) == before
    assert not (keras_dir / FCN_setup.STATE_DIR).exists()


@pytest.mark.parametrize("args", [[], ["frobnicate"]])
def test_usage_on_missing_or_wrong_command(site, args):
    result = run_setup(site, *args, check=2)
    assert "usage: python FCN_setup.py install" in result.stderr
