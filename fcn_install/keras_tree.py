"""The Keras tree: where it is, its version, and paths that stay inside it."""

import hashlib
import importlib.util
import ntpath
import os
import posixpath
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
            f"Keras is not installed for {sys.executable}; install the package "
            "first: pip install . (in this project's folder)"
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
            "(pip install --force-reinstall keras==3.15.1)"
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
            "(pip install keras==3.15.1), ideally in a virtual environment."
        )


def pycache_files(path):
    """The bytecode caches Python keeps for the source file `path`."""
    cache = path.parent / "__pycache__"
    if cache.is_symlink() or not cache.is_dir():
        return []
    return sorted(p for p in cache.glob(f"{path.stem}.*.pyc")
                  if p.is_file() and not p.is_symlink())


# A part Windows would read as something else: a device (`nul`, `com1.py`),
# and any character it reserves (`:` makes `C:x` a drive path and `a:b` a
# data stream; `\\` is a separator).
_WINDOWS_DEVICE = re.compile(
    r"(CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[0-9\u00b9\u00b2\u00b3]"
    r"|LPT[0-9\u00b9\u00b2\u00b3]) *(\..*)?", re.IGNORECASE)
_WINDOWS_RESERVED_CHARS = frozenset('\\:*?"<>|') | frozenset(map(chr, range(32)))


def is_safe_rel(rel):
    """A relative POSIX path naming the same place below the Keras tree on
    POSIX and on Windows: no `..`, `.` or empty part, no backslash, drive,
    device name or part ending in a dot or space (Windows drops those, so
    `.. ` is `..`), and it stays inside under `posixpath` and `ntpath`."""
    if not isinstance(rel, str) or rel == "":
        return False
    for part in rel.split("/"):
        if (part in ("", ".", "..")
                or part[-1] in ". "
                or not _WINDOWS_RESERVED_CHARS.isdisjoint(part)
                or _WINDOWS_DEVICE.fullmatch(part)):
            return False
    return all(stays_inside(rel, pathmod) for pathmod in (posixpath, ntpath))


def stays_inside(rel, pathmod, base=None):
    """Whether `base` joined with `rel` by `pathmod` (`posixpath` or
    `ntpath`) names something strictly below `base`. `base` defaults to a
    typical site-packages Keras of that OS."""
    if base is None:
        base = (r"C:\venv\Lib\site-packages\keras" if pathmod is ntpath
                else "/venv/lib/python3.11/site-packages/keras")
    if pathmod.isabs(rel) or pathmod.splitdrive(rel)[0]:
        return False
    base = pathmod.normcase(pathmod.normpath(base))
    joined = pathmod.normcase(pathmod.normpath(pathmod.join(base, rel)))
    return joined.startswith(base.rstrip(pathmod.sep) + pathmod.sep)


# Windows reparse tags (`stat` defines them on Windows only).
_LINK_REPARSE_TAGS = (0xA000000C, 0xA0000003)  # SYMLINK, MOUNT_POINT (junction)


def is_link(st):
    """Whether the `os.lstat` result `st` is a symlink or, on Windows, a
    junction (which `S_ISLNK` does not report)."""
    return (stat.S_ISLNK(st.st_mode)
            or getattr(st, "st_reparse_tag", 0) in _LINK_REPARSE_TAGS)


def inside(base, rel, what):
    """`base/rel`, refused unless every existing component is a real
    directory or file: no `..`, no absolute path, no symlink (or Windows
    junction) anywhere.

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
            st = os.lstat(path)
        except FileNotFoundError:
            break
        if is_link(st):
            raise SetupError(
                f"{what}: {path} is a symlink; the installer follows none, so "
                f"nothing was changed. Replace it with a directory or file, or "
                f"reinstall Keras: {REINSTALL_KERAS}"
            )
    return base / rel
