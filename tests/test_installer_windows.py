"""FCN_setup.py as it runs on Windows, simulated on this machine.

Each simulated run is a subprocess whose interpreter first loses what
Windows lacks: `fcntl` (so the lock falls back to the `filelock` package),
`os.O_DIRECTORY` (no directory fsync), `os.O_NOFOLLOW`, `os.fchmod` and
`os.utime` on a descriptor. Its result must equal a normal run's byte for
byte. The manifest's path confinement is checked with `ntpath` directly.
"""

import hashlib
import ntpath
import os
import posixpath
import shutil
import subprocess
import sys
import textwrap
import types

import pytest

import FCN_setup
from fcn_install import keras_tree
from fcn_install.errors import SetupError
from fcn_install.keras_tree import inside
from fcn_install.keras_tree import is_safe_rel
from fcn_install.keras_tree import stays_inside
from fcn_install.lock import LOCK_FILE_NAME
from fcn_install.manifest import check_manifest
from fcn_install.manifest import empty_manifest
from test_installer import REPO
from test_installer import pristine_site  # noqa: F401 (fixture)
from test_installer import run_setup

# Runs before FCN_setup.py (on Windows itself it removes nothing).
WINDOWS_PRELUDE = textwrap.dedent("""
    import os, sys, warnings
    sys.modules["fcntl"] = None  # `import fcntl` raises ImportError
    for name in ("O_DIRECTORY", "O_NOFOLLOW", "fchmod"):
        if hasattr(os, name):
            delattr(os, name)
    os.supports_fd.discard(os.utime)
    warnings.simplefilter("ignore")  # filelock: "only soft file lock" off Windows
    sys.path.insert(0, {repo!r})
    import fcn_install.lock
    assert fcn_install.lock.fcntl is None
""").format(repo=str(REPO))

RUN_SETUP = WINDOWS_PRELUDE + textwrap.dedent("""
    import runpy
    sys.argv = sys.argv[1:]  # run_setup passes FCN_setup.py, then the command
    runpy.run_path(sys.argv[0], run_name="__main__")
""")

HOLD_LOCK = WINDOWS_PRELUDE + textwrap.dedent("""
    from pathlib import Path
    from fcn_install.lock import tree_lock
    with tree_lock(Path(sys.argv[1]), timeout=0):
        print("held", flush=True)
        sys.stdin.readline()
""")

WINDOWS_PYTHON = (sys.executable, "-c", RUN_SETUP)


def snapshot(root):
    """Every file's content, mode and mtime, and every directory."""
    found = {}
    for directory, dirs, names in os.walk(root):
        for name in dirs:
            found[os.path.relpath(os.path.join(directory, name), root)] = "dir"
        for name in names:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            found[os.path.relpath(path, root)] = (digest, st.st_mode, st.st_mtime_ns)
    return found


def without_new_mtimes(snap, pristine):
    """Drops the mtime of files a run wrote fresh (it is the time of the run);
    files it restored or kept carry their original time and keep it."""
    kept = {}
    for rel, value in snap.items():
        if value != "dir" and pristine.get(rel, (None,))[0] != value[0]:
            if not rel.startswith(os.path.join(FCN_setup.STATE_DIR, "backup")):
                value = value[:2]
        kept[rel] = value
    return kept


@pytest.fixture
def sites(pristine_site, tmp_path):  # noqa: F811
    """Two fresh copies of pristine Keras: one for a normal run, one for the
    simulated Windows run."""
    copies = []
    for name in ("posix", "windows"):
        shutil.copytree(pristine_site, tmp_path / name, symlinks=True)
        copies.append(tmp_path / name)
    return copies


def test_windows_install_status_uninstall_equal_a_normal_run(sites):
    posix, windows = sites
    pristine = snapshot(windows / "keras")
    assert snapshot(posix / "keras") == pristine

    run_setup(posix, "install", check=0)
    result = run_setup(windows, "install", python=WINDOWS_PYTHON, check=0)
    assert "installed FCN extensions into Keras 3.15.1" in result.stdout
    installed = without_new_mtimes(snapshot(windows / "keras"), pristine)
    assert installed != without_new_mtimes(pristine, pristine)
    assert installed == without_new_mtimes(snapshot(posix / "keras"), pristine)
    assert not (windows / "keras" / LOCK_FILE_NAME).exists()

    result = run_setup(windows, "status", python=WINDOWS_PYTHON, check=0)
    assert "installed and intact" in result.stdout
    # A normal status agrees with what the simulated run wrote.
    assert FCN_setup.status(windows / "keras", say=lambda line: None)

    result = run_setup(windows, "uninstall", python=WINDOWS_PYTHON, check=0)
    assert "uninstalled FCN extensions" in result.stdout
    assert snapshot(windows / "keras") == pristine
    result = run_setup(windows, "status", python=WINDOWS_PYTHON, check=0)
    assert "not installed" in result.stdout


def test_windows_lock_excludes_a_second_run_and_leaves_no_file(sites):
    _, windows = sites
    keras_dir = windows / "keras"
    env = dict(os.environ, PYTHONPATH=str(windows), TF_CPP_MIN_LOG_LEVEL="3")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(keras_dir)],
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert (keras_dir / LOCK_FILE_NAME).is_file()
        for command in ("install", "uninstall"):
            result = run_setup(windows, command, "--lock-timeout", "0.3",
                               python=WINDOWS_PYTHON, check=1)
            assert "another FCN_setup.py run held the lock" in result.stderr
        result = run_setup(windows, "status", python=WINDOWS_PYTHON, check=0)
        assert "not installed" in result.stdout
    finally:
        holder.communicate("\n")
    assert holder.returncode == 0
    assert not (keras_dir / LOCK_FILE_NAME).exists()
    run_setup(windows, "install", "--lock-timeout", "0", python=WINDOWS_PYTHON,
              check=0)
    assert not (keras_dir / LOCK_FILE_NAME).exists()


# ----------------------------------------------------- path confinement

WINDOWS_ESCAPES = [
    r"C:\x",                # absolute, with a drive
    "C:x",                  # relative to drive C's current folder
    "C:/x",
    r"..\..\x",             # backslashes are separators on Windows
    r"src\..\..\x",
    r"\\server\share\x",    # UNC
    "//server/share/x",
    r"\x",                  # root of the current drive
    r"src/..\..\x",         # mixed separators
    r"src\../../x",
]


@pytest.mark.parametrize("rel", WINDOWS_ESCAPES)
def test_ntpath_escapes_are_refused(rel):
    assert not stays_inside(rel, ntpath)
    assert not is_safe_rel(rel)


@pytest.mark.parametrize("rel", [r"..\..\x", "C:x", r"src\..\..\x"])
def test_names_only_windows_reads_as_escapes_stay_inside_on_posix(rel):
    """The same string is one plain file name under posixpath: the check
    needs ntpath to see the escape, and the manifest refuses it on any OS."""
    assert stays_inside(rel, posixpath)
    assert not stays_inside(rel, ntpath)
    assert not is_safe_rel(rel)


@pytest.mark.parametrize("rel", ["../x", "src/../../x", "/x", "/etc/passwd"])
def test_posix_escapes_are_refused_by_both_path_modules(rel):
    assert not stays_inside(rel, posixpath)
    assert not stays_inside(rel, ntpath)
    assert not is_safe_rel(rel)


@pytest.mark.parametrize("rel", [
    "src/.. /x",        # Windows drops trailing dots and spaces: ".. " is ".."
    "src/.../x",
    "src/x.py.",
    "nul", "src/CON.py", "applications/aux", "src/com1.txt", "LPT9",
    "src/x.py:stream",  # an NTFS data stream
    "src/a*b.py", "src/a?.py", 'src/a"b', "src/a<b", "src/a>b", "src/a|b",
    "src/a\x01b",
])
def test_names_windows_would_read_differently_are_refused(rel):
    assert not is_safe_rel(rel)


@pytest.mark.parametrize("rel", [
    "applications/__init__.py",
    "src/applications/vgg16_fcn.py",
    "applications/__pycache__/__init__.cpython-311.pyc",
    ".fcn_extensions/backup/applications/__init__.py",
    "src/console.py", "src/null_layer.py", "src/com10.py",  # not device names
])
def test_plain_paths_stay_inside_on_both(rel):
    assert stays_inside(rel, posixpath)
    assert stays_inside(rel, ntpath)
    assert is_safe_rel(rel)


def test_ntpath_check_uses_the_given_base_case_insensitively():
    base = r"D:\Envs\FCN\Lib\site-packages\keras"
    assert stays_inside("src/x.py", ntpath, base=base)
    assert stays_inside("src/x.py", ntpath, base=base.lower() + "\\")
    # A sibling whose name starts like the base is outside it.
    assert not stays_inside(r"..\keras2\x.py", ntpath, base=base)
    assert not stays_inside("../keras2/x.py", posixpath, base="/env/keras")


@pytest.mark.parametrize("rel", WINDOWS_ESCAPES + ["src/.. /x", "nul"])
@pytest.mark.parametrize("where", ["file", "pycache", "created_dir"])
def test_a_manifest_naming_a_windows_escape_is_refused(tmp_path, rel, where):
    manifest = empty_manifest()
    added = {"action": "added", "installed_sha256": "0" * 64}
    if where == "file":
        manifest["files"][rel] = added
    elif where == "created_dir":
        manifest["files"]["src/new/x.py"] = added
        manifest["created_dirs"] = [rel]
    else:
        manifest["files"]["applications/__init__.py"] = {
            "action": "modified", "installed_sha256": "0" * 64,
            "original_sha256": "1" * 64, "original_mtime_ns": 0,
            "pycache": {rel: "2" * 64}}
    with pytest.raises(SetupError, match="malformed|not a plain relative path"):
        check_manifest(manifest, tmp_path, tmp_path / "manifest.json")


@pytest.mark.parametrize("tag", [0xA0000003, 0xA000000C])  # junction, symlink
def test_a_windows_junction_on_a_manifest_path_is_refused(tmp_path, monkeypatch, tag):
    """`os.lstat` on Windows reports a junction as a directory whose
    `st_reparse_tag` is a mount point; `inside` refuses it like a symlink."""
    (tmp_path / "applications").mkdir()
    real_lstat = os.lstat

    def windows_lstat(path, *args, **kwargs):
        st = real_lstat(path, *args, **kwargs)
        if os.fspath(path) == os.fspath(tmp_path / "applications"):
            return types.SimpleNamespace(st_mode=st.st_mode, st_reparse_tag=tag)
        return st

    assert inside(tmp_path, "applications/x.py", "test") == tmp_path / "applications/x.py"
    monkeypatch.setattr(keras_tree.os, "lstat", windows_lstat)
    with pytest.raises(SetupError, match="is a symlink; the installer follows none"):
        inside(tmp_path, "applications/x.py", "test")
    # A reparse point that is not a link (e.g. a OneDrive placeholder) is allowed.
    monkeypatch.setattr(keras_tree.os, "lstat", lambda path: types.SimpleNamespace(
        st_mode=real_lstat(path).st_mode, st_reparse_tag=0x9000001A))
    assert inside(tmp_path, "applications/x.py", "test") == tmp_path / "applications/x.py"
