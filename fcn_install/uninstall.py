"""`uninstall`, and the steps that put a Keras file back (which `install`
also takes for the entries extensions/ no longer provides).

Blocks come out before the modules they import go, so `import keras` never
sees an import line whose module is missing; the manifest is removed only
after every Keras file is back.
"""

import shutil

from fcn_install import exports as ex
from fcn_install.fileops import apply_or_roll_back
from fcn_install.keras_tree import pycache_files
from fcn_install.keras_tree import read_or_none
from fcn_install.lock import DEFAULT_LOCK_TIMEOUT
from fcn_install.lock import tree_lock
from fcn_install.manifest import manifest_path
from fcn_install.manifest import state_dir
from fcn_install.state import check_writable
from fcn_install.state import clean_debris
from fcn_install.state import file_state
from fcn_install.state import load_state
from fcn_install.state import pyc_backups
from fcn_install.state import read_keras_file
from fcn_install.state import refuse_conflicts
from fcn_install.state import verified_backup


def restore_pycs(txn, keras_dir, rel, entry):
    """Puts back the original's `.pyc` files and removes the others; a cache
    whose backup is damaged is removed (Python rebuilds it), never trusted."""
    saved = pyc_backups(keras_dir, entry)
    for pyc in pycache_files(keras_dir / rel):
        pyc_rel = pyc.relative_to(keras_dir).as_posix()
        if pyc_rel not in saved:
            txn.remove(pyc)
    for pyc_rel, (data, mtime_ns) in saved.items():
        current = read_or_none(keras_dir / pyc_rel)
        if current != data or (keras_dir / pyc_rel).stat().st_mtime_ns != mtime_ns:
            txn.write(keras_dir / pyc_rel, data, mtime_ns=mtime_ns)


def restore(txn, keras_dir, rel, entry):
    """Puts back the original of a modified file, with its caches."""
    data = verified_backup(keras_dir, rel, entry["original_sha256"])
    txn.write(keras_dir / rel, data, mtime_ns=entry["original_mtime_ns"])
    restore_pycs(txn, keras_dir, rel, entry)


def remove_added(txn, keras_dir, rel):
    """Removes an added file and its caches."""
    path = keras_dir / rel
    for pyc in pycache_files(path):
        txn.remove(pyc)
    txn.remove(path)
    cache = path.parent / "__pycache__"
    if cache.is_dir() and not cache.is_symlink() and not any(cache.iterdir()):
        txn.rmdir(cache)  # Python made it for our module alone.


def clean_created_dirs(txn, keras_dir, rels):
    """Removes directories the install created once nothing else is in them;
    in their `__pycache__` only caches of modules that no longer exist go."""
    for rel in sorted(rels, key=lambda r: r.count("/"), reverse=True):
        d = keras_dir / rel
        if d.is_symlink() or not d.is_dir():
            continue
        cache = d / "__pycache__"
        if cache.is_dir() and not cache.is_symlink():
            for pyc in cache.iterdir():
                stem = pyc.name.split(".")[0]
                orphan = not (d / f"{stem}.py").exists() and not (d / stem).is_dir()
                if pyc.suffix == ".pyc" and pyc.is_file() and orphan:
                    txn.remove(pyc)
            if not any(cache.iterdir()):
                txn.rmdir(cache)
        if not any(d.iterdir()):
            txn.rmdir(d)


def uninstall(keras_dir, *, dry_run=False, force=False, say=print,
              lock_timeout=DEFAULT_LOCK_TIMEOUT):
    """Restores Keras. Returns the files left in place because they changed."""
    with tree_lock(keras_dir, lock_timeout, say):
        return _uninstall(keras_dir, dry_run=dry_run, force=force, say=say)


def plan_uninstall(keras_dir, manifest):
    """What `uninstall` would do; reads only.

    Returns:
        `(plan, left, conflicts)`: `(verb, rel, stripped content)` steps,
        blocks first; `(rel, state)` of the files to leave as they are; and
        `(path, why)` of the files changed by someone else.
    """
    blocks, modules, left, conflicts = [], [], [], []
    for rel, entry in sorted(manifest["files"].items()):
        current = read_keras_file(keras_dir, rel, str(manifest_path(keras_dir)))
        path = keras_dir / rel
        state = file_state(current, entry)
        if entry["action"] == "added":
            if state == "changed":
                conflicts.append((path, "was edited since FCN_setup.py wrote it"))
            if state != "missing":
                modules.append(("remove", rel, None))
            continue
        if state in ("installed", "previous"):
            verified_backup(keras_dir, rel, entry["original_sha256"])
            blocks.append(("restore", rel, None))
        elif state == "original":
            blocks.append(("caches", rel, None))
        elif state == "missing":
            left.append((rel, "missing"))
        elif not entry.get("block", True):
            conflicts.append((path, "was edited since FCN_setup.py wrote it"))
            verified_backup(keras_dir, rel, entry["original_sha256"])
            blocks.append(("restore", rel, None))
        elif not ex.has_block_marker(current):
            left.append((rel, "changed"))
        else:
            stripped = ex.strip_block(current)
            if stripped is None:
                conflicts.append((path, "has its FCN block edited"))
                verified_backup(keras_dir, rel, entry["original_sha256"])
                blocks.append(("restore", rel, None))
            else:
                blocks.append(("strip", rel, stripped))
    return blocks + modules, left, conflicts


def _uninstall(keras_dir, *, dry_run, force, say):
    manifest = load_state(keras_dir, clean=not dry_run, say=say)
    if manifest is None:
        say(f"FCN extensions are not installed in Keras at {keras_dir}; nothing to do")
        return []
    plan, left, conflicts = plan_uninstall(keras_dir, manifest)
    if not force:
        refuse_conflicts(conflicts, "remove or restore it")
    check_writable(keras_dir, [rel for _, rel, _ in plan])
    for path, why in conflicts:
        say(f"  --force: {path} {why}; removing or restoring it")
    for verb, rel, _ in plan:
        if verb != "caches":
            say(f"  {'would ' if dry_run else ''}{verb:7s} {rel}")
    for rel, state in left:
        say(f"  warning: {keras_dir / rel} is {state} since install and holds no "
            "FCN lines; left as it is")
    if dry_run:
        say(f"dry run: {len(plan)} file(s) to restore or remove, nothing changed")
        return left
    clean_debris(keras_dir, manifest, [], say)

    apply_or_roll_back("uninstall", lambda txn: _apply_uninstall(
        txn, keras_dir, manifest, plan=plan, say=say))
    # Every Keras file is back and the manifest gone: the rest is our own state.
    shutil.rmtree(state_dir(keras_dir))
    summary = f"uninstalled FCN extensions from Keras at {keras_dir}"
    if left:
        summary += f"; {len(left)} file(s) changed by someone else were left as they are"
    say(summary)
    return left


def _apply_uninstall(txn, keras_dir, manifest, *, plan, say):
    files = manifest["files"]
    # Blocks out first: nothing imports the modules once they go.
    for verb, rel, stripped in plan:
        if verb == "restore":
            restore(txn, keras_dir, rel, files[rel])
        elif verb == "caches":
            restore_pycs(txn, keras_dir, rel, files[rel])
        elif verb == "strip":
            txn.write(keras_dir / rel, stripped)
            say(f"  kept your lines in {keras_dir / rel}; removed only the FCN block")
        else:
            remove_added(txn, keras_dir, rel)
    clean_created_dirs(txn, keras_dir, set(manifest.get("created_dirs", [])))
    txn.remove(manifest_path(keras_dir))
