"""The Keras tree: where it is, its version, and paths that stay inside it."""

import hashlib
import importlib.util
import os
import re
import stat
import sys
from pathlib import Path

from fcn_install.errors import SetupError

# Keras versions the extensions are tested with: final releases in
# [lowest, first refused).
TESTED_KERAS = ((3, 15), (3, 16))
TESTED_KERAS_TEXT = ">=3.15,<3.16 (final releases)"
REINSTALL_KERAS = "pip install --force-reinstall --no-deps keras==3.15.1"


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def read_or_none(path):
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def find_keras():
    """Returns the directory of the `keras` package this interpreter imports."""
    spec = importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        raise SetupError(
            f"Keras is not installed for {sys.executable}; install the pinned "
            "requirements first: pip install -r requirements.txt"
        )
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def keras_version(keras_dir):
    """Reads the version from `keras/src/version.py` without importing Keras."""
    version_file = keras_dir / "src" / "version.py"
    try:
        text = version_file.read_text()
    except (OSError, UnicodeDecodeError):
        text = ""
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not match:
        raise SetupError(
            f"{keras_dir} is not a Keras 3 package (no version in "
            f"{version_file}); nothing was changed. Install keras==3.15.1 "
            "(pip install -r requirements.txt)"
        )
    return match.group(1)


def check_version(version, keras_dir):
    """Refuses anything but a final release in the tested range."""
    final = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    parsed = (int(final[1]), int(final[2])) if final else None
    low, high = TESTED_KERAS
    if parsed is None or not low <= parsed < high:
        kind = "outside" if final else "a pre-release or local build, not in"
        raise SetupError(
            f"Keras {version} at {keras_dir} is {kind} the tested range "
            f"{TESTED_KERAS_TEXT}; nothing was changed. Install keras==3.15.1 "
            "(pip install -r requirements.txt), ideally in a virtual environment."
        )


def pycache_files(path):
    """The bytecode caches Python keeps for the source file `path`."""
    cache = path.parent / "__pycache__"
    if cache.is_symlink() or not cache.is_dir():
        return []
    return sorted(p for p in cache.glob(f"{path.stem}.*.pyc")
                  if p.is_file() and not p.is_symlink())


def is_safe_rel(rel):
    """A relative POSIX path with no `..`, `.`, empty part or backslash."""
    return (
        isinstance(rel, str)
        and rel != ""
        and not rel.startswith("/")
        and "\\" not in rel
        and "\x00" not in rel
        and all(part not in ("", ".", "..") for part in rel.split("/"))
    )


def inside(base, rel, what):
    """`base/rel`, refused unless every existing component is a real
    directory or file: no `..`, no absolute path, no symlink anywhere.

    Args:
        base: A directory already known to be safe (the Keras tree).
        rel: The untrusted relative path.
        what: Names the source of `rel` in the error (e.g. the manifest).
    """
    if not is_safe_rel(rel):
        raise SetupError(
            f"{what}: path {rel!r} is not a plain relative path inside "
            f"{base}; nothing was changed"
        )
    path = base
    for part in rel.split("/"):
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            break
        if stat.S_ISLNK(mode):
            raise SetupError(
                f"{what}: {path} is a symlink; the installer follows none, so "
                f"nothing was changed. Replace it with a directory or file, or "
                f"reinstall Keras: {REINSTALL_KERAS}"
            )
    return base / rel
