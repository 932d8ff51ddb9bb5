"""The install record `<keras>/.fcn_extensions/manifest.json`.

It is read as untrusted input: any file could have been edited, so every
field is checked and every path must stay inside the Keras tree before the
installer acts on it.

Entry of a file, keyed by its path relative to the Keras directory:
- `action`: `"added"` (ours entirely) or `"modified"` (a Keras file, backed
  up in `backup/<path>` and, with `block`, amended by our marked block);
- `installed_sha256`: what the install leaves there; `previous_sha256`
  (only while an update runs): what the install before it left;
- `original_sha256`, `original_mtime_ns`, `pycache` (modified only): the
  original's hash and time, and the hashes of its backed-up `.pyc` files.
"""

import json
import os
import re
import stat

from fcn_install.errors import SetupError
from fcn_install.keras_tree import REINSTALL_KERAS
from fcn_install.keras_tree import inside
from fcn_install.keras_tree import is_link
from fcn_install.keras_tree import is_safe_rel
from fcn_install.keras_tree import read_or_none

STATE_DIR = ".fcn_extensions"
MANIFEST_NAME = "manifest.json"
BACKUP_DIR = "backup"
MANIFEST_FORMAT = 1

_SHA = re.compile(r"[0-9a-f]{64}")
_TOP_KEYS = {"format", "keras_version", "files", "created_dirs", "keras_dir"}
_ENTRY_KEYS = {"action", "original_sha256", "installed_sha256", "previous_sha256",
               "original_mtime_ns", "pycache", "block"}


def empty_manifest():
    return {"format": MANIFEST_FORMAT, "keras_version": None, "files": {},
            "created_dirs": []}


def state_dir(keras_dir):
    """The state folder, refused if it is a symlink or not a directory."""
    path = keras_dir / STATE_DIR
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path
    if is_link(st) or not stat.S_ISDIR(st.st_mode):
        kind = "a symlink" if is_link(st) else "not a directory"
        raise SetupError(
            f"{path} is {kind}; the installer keeps its state only in a real "
            f"folder there, so nothing was changed. Remove it, then reinstall "
            f"Keras: {REINSTALL_KERAS}"
        )
    return path


def manifest_path(keras_dir):
    return state_dir(keras_dir) / MANIFEST_NAME


def backup_path(keras_dir, rel):
    """`<state>/backup/<rel>`, with no symlink on the way."""
    base = state_dir(keras_dir)
    return inside(base, f"{BACKUP_DIR}/{rel}", f"backup of {rel}")


def read_manifest(keras_dir):
    """The checked manifest, or None when there is none."""
    path = manifest_path(keras_dir)
    if path.is_symlink():
        _malformed(path, "it is a symlink")
    data = read_or_none(path)
    if data is None:
        return None
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        _malformed(path, f"not JSON ({e})")
    check_manifest(manifest, keras_dir, path)
    return manifest


def check_manifest(manifest, keras_dir, path):
    """Refuses, naming `path` and the fault, anything but a well-formed
    manifest whose every path stays inside `keras_dir`."""
    if not isinstance(manifest, dict):
        _malformed(path, "the top level is not an object")
    if manifest.get("format") != MANIFEST_FORMAT:
        _malformed(path, f"format is {manifest.get('format')!r}, not {MANIFEST_FORMAT}")
    unknown = sorted(set(manifest) - _TOP_KEYS)
    if unknown:
        _malformed(path, f"unknown key(s) {unknown}")
    version = manifest.get("keras_version")
    if version is not None and not isinstance(version, str):
        _malformed(path, f"keras_version is {version!r}")
    files = manifest.get("files")
    if not isinstance(files, dict):
        _malformed(path, f"files is {type(files).__name__}, not an object")
    for rel, entry in files.items():
        _check_entry(rel, entry, path)
    created = manifest.get("created_dirs", [])
    if not isinstance(created, list):
        _malformed(path, "created_dirs is not a list")
    added = [rel for rel, e in files.items() if e["action"] == "added"]
    for rel in created:
        if not is_safe_rel(rel) or rel.split("/")[0] == STATE_DIR:
            _malformed(path, f"created_dirs holds {rel!r}, not a path inside Keras")
        if not any(a.startswith(rel + "/") for a in added):
            _malformed(path, f"created_dirs holds {rel!r}, which holds no added file")
    # Symlinks anywhere on the paths.
    for rel, entry in files.items():
        inside(keras_dir, rel, str(path))
        for pyc_rel in entry.get("pycache", {}):
            inside(keras_dir, pyc_rel, str(path))
    for rel in created:
        inside(keras_dir, rel, str(path))


def _check_entry(rel, entry, path):
    if not is_safe_rel(rel) or rel.split("/")[0] == STATE_DIR:
        _malformed(path, f"file {rel!r} is not a path inside Keras")
    if not isinstance(entry, dict):
        _malformed(path, f"the entry of {rel} is not an object")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        _malformed(path, f"the entry of {rel} has unknown key(s) {unknown}")
    action = entry.get("action")
    if action not in ("added", "modified"):
        _malformed(path, f"the entry of {rel} has action {action!r}, "
                         "not 'added' or 'modified'")
    for key in ("installed_sha256", "previous_sha256"):
        if key in entry and not _is_sha(entry[key]):
            _malformed(path, f"the entry of {rel} has {key} {entry[key]!r}")
    if "installed_sha256" not in entry:
        _malformed(path, f"the entry of {rel} has no installed_sha256")
    if action == "added":
        if entry.get("original_sha256") is not None or "pycache" in entry:
            _malformed(path, f"the added file {rel} has an original")
        return
    if not _is_sha(entry.get("original_sha256")):
        _malformed(path, f"the modified file {rel} has no original_sha256")
    mtime = entry.get("original_mtime_ns")
    if not isinstance(mtime, int) or isinstance(mtime, bool) or mtime < 0:
        _malformed(path, f"the modified file {rel} has original_mtime_ns {mtime!r}")
    if not isinstance(entry.get("block", True), bool):
        _malformed(path, f"the modified file {rel} has block {entry['block']!r}")
    caches = entry.get("pycache", {})
    if not isinstance(caches, dict):
        _malformed(path, f"the pycache of {rel} is not an object")
    directory, _, name = rel.rpartition("/")
    stem = re.escape(name.rsplit(".", 1)[0])
    prefix = re.escape(f"{directory}/" if directory else "")
    pattern = re.compile(rf"{prefix}__pycache__/{stem}\.[A-Za-z0-9_.-]+\.pyc")
    for pyc_rel, digest in caches.items():
        if not pattern.fullmatch(pyc_rel) or not _is_sha(digest):
            _malformed(path, f"the pycache of {rel} holds {pyc_rel!r}, not a "
                             "cache of that file with a sha256")


def _is_sha(value):
    return isinstance(value, str) and _SHA.fullmatch(value) is not None


def _malformed(path, what):
    raise SetupError(
        f"{path} is malformed: {what}; nothing was changed. Restore Keras with "
        f"{REINSTALL_KERAS}, then delete {path.parent}"
    )


def manifest_bytes(manifest):
    return json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
