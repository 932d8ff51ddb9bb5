"""What is installed: the manifest, the backups, and each file's state.

Reads the tree and decides; of the changes, it only clears what a killed run
left behind (a state folder without a manifest, temp files).
"""

import os
import shutil

from fcn_install.errors import SetupError
from fcn_install.fileops import TMP_SUFFIX
from fcn_install.fileops import remove_tmp_debris
from fcn_install.keras_tree import REINSTALL_KERAS
from fcn_install.keras_tree import inside
from fcn_install.keras_tree import read_or_none
from fcn_install.keras_tree import sha256
from fcn_install.manifest import STATE_DIR
from fcn_install.manifest import backup_path
from fcn_install.manifest import read_manifest
from fcn_install.manifest import state_dir

FORCE_HINT = "save your changes elsewhere, or rerun with --force to {}"


def file_state(current, entry):
    """'installed', 'previous' (an update in progress), 'original',
    'missing' or 'changed' (by someone else)."""
    if current is None:
        return "missing"
    digest = sha256(current)
    if digest == entry["installed_sha256"]:
        return "installed"
    if digest == entry.get("previous_sha256"):
        return "previous"
    if digest == entry.get("original_sha256"):
        return "original"
    return "changed"


def read_keras_file(keras_dir, rel, what):
    """The content of `<keras>/rel` (None if absent), refusing symlinks and
    non-files on the way."""
    path = inside(keras_dir, rel, what)
    if path.exists() and not path.is_file():
        raise SetupError(f"{path} is not a regular file; nothing was changed")
    return read_or_none(path)


def verified_backup(keras_dir, rel, digest):
    """The backup of `rel`, refused unless its hash is `digest`."""
    path = backup_path(keras_dir, rel)
    data = read_or_none(path) if path.is_file() else None
    if data is None or sha256(data) != digest:
        problem = "is missing" if data is None else "does not match the manifest"
        raise SetupError(
            f"backup {path} {problem}, so {keras_dir / rel} cannot be restored; "
            f"nothing was changed. Reinstall Keras: {REINSTALL_KERAS}, then "
            f"delete {path.parents[len(rel.split('/'))]}"
        )
    return data


def pyc_backups(keras_dir, entry):
    """{pyc rel: (backup bytes, mtime_ns)} for the caches whose backup is
    intact."""
    found = {}
    for pyc_rel, digest in entry.get("pycache", {}).items():
        path = backup_path(keras_dir, pyc_rel)
        data = read_or_none(path) if path.is_file() else None
        if data is not None and sha256(data) == digest:
            found[pyc_rel] = (data, path.stat().st_mtime_ns)
    return found


def load_state(keras_dir, *, clean, say):
    """The checked manifest or None; removes a state folder left without a
    manifest by a killed run when `clean` (no Keras file was changed then)."""
    state = state_dir(keras_dir)
    manifest = read_manifest(keras_dir)
    if manifest is None and state.exists() and clean:
        shutil.rmtree(state)
        say(f"  removed {state}: an interrupted run left it without a manifest, "
            "before changing any Keras file")
    return manifest


def clean_debris(keras_dir, manifest, rels, say):
    """Removes temp files a killed run left beside the files it writes."""
    paths = [keras_dir / rel for rel in rels]
    for rel, entry in manifest["files"].items():
        paths.append(keras_dir / rel)
        for pyc_rel in entry.get("pycache", {}):
            paths.append(keras_dir / pyc_rel)
    removed = []
    for path in paths:
        removed += remove_tmp_debris(path)
    state = state_dir(keras_dir)
    if state.is_dir():
        for directory, _, names in os.walk(state):
            for name in names:
                if name.endswith(TMP_SUFFIX):
                    os.unlink(os.path.join(directory, name))
                    removed.append(name)
    if removed:
        say(f"  removed {len(removed)} temp file(s) left by an interrupted run")


def refuse_conflicts(conflicts, action):
    """Raises for the first of `(path, why)` files changed by someone else."""
    if conflicts:
        path, why = conflicts[0]
        more = f" ({len(conflicts) - 1} more file(s) too)" if len(conflicts) > 1 else ""
        raise SetupError(
            f"{path} {why}{more}; nothing was changed. "
            + FORCE_HINT.format(action)
        )


def check_writable(keras_dir, rels):
    """Refuses, before any change, a tree this user cannot write."""
    dirs = {keras_dir, keras_dir / STATE_DIR}
    for rel in rels:
        dirs.add((keras_dir / rel).parent)
    for d in sorted(dirs):
        while not d.exists():
            d = d.parent
        if not os.access(d, os.W_OK | os.X_OK):
            raise SetupError(
                f"{d} is not writable, so the FCN extensions cannot be changed in "
                f"Keras at {keras_dir}; nothing was changed. Use a virtual "
                "environment you own (./run.sh makes .venv), or run with the "
                "rights of the Keras tree's owner."
            )
