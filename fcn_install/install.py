"""`install`: plans every change, then applies it in one rolled-back
transaction.

Crash safety rests on three rules, so that a run killed at any instant is
finished or undone by running either command again:
- the manifest names every file before any Keras file changes, and is
  removed only after every Keras file is back (so "a state folder without a
  manifest" means no Keras file was changed, and it is simply removed);
- `import keras` never sees an import line whose module is missing: install
  writes the modules and shims before the `__init__.py` blocks that import
  them, uninstall takes the blocks out before removing the modules;
- a file is overwritten, restored or removed only when its hash is one the
  manifest says we left there (or the original we are about to replace);
  anything else is a user change, refused before anything changes unless
  `force`.
"""

import os
from dataclasses import dataclass
from dataclasses import field

from fcn_install import exports as ex
from fcn_install.errors import SetupError
from fcn_install.fileops import apply_or_roll_back
from fcn_install.keras_tree import check_version
from fcn_install.keras_tree import keras_version
from fcn_install.keras_tree import pycache_files
from fcn_install.keras_tree import sha256
from fcn_install.lock import DEFAULT_LOCK_TIMEOUT
from fcn_install.lock import tree_lock
from fcn_install.manifest import BACKUP_DIR
from fcn_install.manifest import backup_path
from fcn_install.manifest import empty_manifest
from fcn_install.manifest import manifest_bytes
from fcn_install.manifest import manifest_path
from fcn_install.manifest import state_dir
from fcn_install.state import check_writable
from fcn_install.state import clean_debris
from fcn_install.state import file_state
from fcn_install.state import load_state
from fcn_install.state import read_keras_file
from fcn_install.state import refuse_conflicts
from fcn_install.state import verified_backup
from fcn_install.uninstall import clean_created_dirs
from fcn_install.uninstall import remove_added
from fcn_install.uninstall import restore


@dataclass
class InstallPlan:
    changes: list = field(default_factory=list)   # (verb, rel)
    content: dict = field(default_factory=dict)   # rel -> bytes to write
    entries: dict = field(default_factory=dict)   # rel -> final manifest entry
    previous: dict = field(default_factory=dict)  # rel -> hash we left before
    backups: dict = field(default_factory=dict)   # rel -> (bytes, mtime_ns)
    stale: dict = field(default_factory=dict)     # rel -> (verb, stripped bytes)
    created: set = field(default_factory=set)
    conflicts: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def plan_install(keras_dir, extensions_dir, manifest, *, force=False):
    """What `install` would do; reads only."""
    files = manifest["files"]
    exports = ex.load_exports(extensions_dir)
    ex.check_sources(exports, extensions_dir, keras_dir)
    mirrored = ex.mirrored_files(extensions_dir)
    added_before = {rel for rel, e in files.items() if e["action"] == "added"}
    lines = ex.api_lines(exports, keras_dir, added_before)
    overlap = sorted(set(mirrored) & set(lines))
    if overlap:
        raise SetupError(
            f"extensions/keras/ also holds the generated file(s) {overlap}; "
            f"declare their names in {ex.PUBLIC_API_FILE} instead"
        )
    plan = InstallPlan(created=set(manifest.get("created_dirs", [])))
    for rel in sorted(set(mirrored) | set(lines)):
        _plan_file(plan, keras_dir, rel, entry=files.get(rel), mirrored=mirrored,
                   lines=lines, force=force)
    for rel in sorted(set(files) - set(mirrored) - set(lines)):
        _plan_stale(plan, keras_dir, rel, entry=files[rel], force=force)
    return plan


def _plan_file(plan, keras_dir, rel, *, entry, mirrored, lines, force):
    current = read_keras_file(keras_dir, rel, "extensions/")
    path = keras_dir / rel
    if entry is None:
        if rel in lines and current is not None:
            kind = "block"
        else:
            content = mirrored[rel] if rel in mirrored else ex.shim_content(lines[rel])
            kind = "added" if current in (None, content) else "whole"
    else:
        kind = ("added" if entry["action"] == "added"
                else "block" if entry.get("block", True) else "whole")
    state = file_state(current, entry) if entry else ("missing" if current is None else "new")
    new_entry = dict(entry or {})
    new_entry.pop("previous_sha256", None)

    if kind == "added":
        content = mirrored[rel] if rel in mirrored else ex.shim_content(lines[rel])
        new_entry = {"action": "added", "original_sha256": None}
        if state == "changed":
            plan.conflicts.append((path, "was edited since FCN_setup.py wrote it"))
            if not force:
                return
        d = path.parent
        while not d.exists():
            plan.created.add(d.relative_to(keras_dir).as_posix())
            d = d.parent
        verb = "add" if entry is None or current is None else "update"
    elif kind == "whole":
        content = mirrored[rel]
        if entry is None:
            plan.conflicts.append((path, "exists and was not written by FCN_setup.py"))
            if not force:
                return
            st = path.stat()
            new_entry = {"action": "modified", "block": False,
                         "original_sha256": sha256(current),
                         "original_mtime_ns": st.st_mtime_ns}
            _plan_backup(plan, keras_dir, rel, base=current, mtime_ns=st.st_mtime_ns,
                         entry=new_entry)
        elif state in ("changed", "missing"):
            plan.conflicts.append((path, f"was {'edited' if current else 'deleted'} "
                                         "since FCN_setup.py wrote it"))
            if not force:
                return
        verb = "modify" if entry is None else "update"
    else:  # an existing Keras __init__.py that gets our block
        base = current
        if entry is None:
            if ex.has_block_marker(current):
                base = ex.strip_block(current)
                plan.conflicts.append((path, "holds FCN lines but no manifest entry"))
                if not force or base is None:
                    return
        elif state in ("installed", "previous", "original"):
            base = verified_backup(keras_dir, rel, entry["original_sha256"])
        elif state == "missing":
            plan.conflicts.append((path, "was deleted since FCN_setup.py changed it"))
            if not force:
                return
            base = verified_backup(keras_dir, rel, entry["original_sha256"])
        elif not ex.has_block_marker(current):
            plan.notes.append(f"  note: {path} was replaced since the install (by a "
                              "Keras reinstall?); its new version is backed up")
            base = current
        else:
            stripped = ex.strip_block(current)
            why = ("was edited since FCN_setup.py changed it" if stripped is not None
                   else "has its FCN block edited")
            plan.conflicts.append((path, why))
            if not force:
                return
            # --force keeps the user's lines (or, with a broken block, the backup).
            base = stripped if stripped is not None else verified_backup(
                keras_dir, rel, entry["original_sha256"])
        if entry is None or sha256(base) != entry["original_sha256"]:
            st = path.stat()
            new_entry = {"action": "modified", "original_sha256": sha256(base),
                         "original_mtime_ns": st.st_mtime_ns}
            _plan_backup(plan, keras_dir, rel, base=base, mtime_ns=st.st_mtime_ns,
                         entry=new_entry)
        content = ex.with_block(base, lines[rel])
        verb = "modify" if entry is None else "update"

    new_entry["installed_sha256"] = sha256(content)
    plan.entries[rel] = new_entry
    if current == content and entry is not None and entry == new_entry:
        return
    if entry is not None and state in ("installed", "previous"):
        plan.previous[rel] = sha256(current)
    plan.content[rel] = content
    plan.changes.append((verb, rel))


def _plan_backup(plan, keras_dir, rel, *, base, mtime_ns, entry):
    plan.backups[rel] = (base, mtime_ns)
    caches = {}
    for pyc in pycache_files(keras_dir / rel):
        pyc_rel = pyc.relative_to(keras_dir).as_posix()
        data = pyc.read_bytes()
        plan.backups[pyc_rel] = (data, pyc.stat().st_mtime_ns)
        caches[pyc_rel] = sha256(data)
    entry["pycache"] = caches


def _plan_stale(plan, keras_dir, rel, *, entry, force):
    """An entry that extensions/ no longer provides: removed or restored."""
    current = read_keras_file(keras_dir, rel, "the manifest")
    path = keras_dir / rel
    state = file_state(current, entry)
    if entry["action"] == "added":
        if state == "changed":
            plan.conflicts.append((path, "was edited since FCN_setup.py wrote it"))
            if not force:
                return
        plan.stale[rel] = ("remove", None)
        plan.changes.append(("remove", rel))
        return
    if state in ("installed", "previous"):
        verified_backup(keras_dir, rel, entry["original_sha256"])
        plan.stale[rel] = ("restore", None)
    elif state == "changed" and entry.get("block", True) and ex.has_block_marker(current):
        stripped = ex.strip_block(current)
        if stripped is None:
            plan.conflicts.append((path, "has its FCN block edited"))
            if not force:
                return
            verified_backup(keras_dir, rel, entry["original_sha256"])
            plan.stale[rel] = ("restore", None)
        else:
            plan.stale[rel] = ("strip", stripped)
    elif state == "changed" and not entry.get("block", True):
        plan.conflicts.append((path, "was edited since FCN_setup.py wrote it"))
        if not force:
            return
        verified_backup(keras_dir, rel, entry["original_sha256"])
        plan.stale[rel] = ("restore", None)
    else:  # original, missing, or replaced without our lines: nothing of ours
        plan.stale[rel] = ("drop", None)
    plan.changes.append(("restore", rel))


def install(keras_dir, extensions_dir, *, dry_run=False, force=False, say=print,
            lock_timeout=DEFAULT_LOCK_TIMEOUT):
    """Installs or updates the extensions. Returns the list of changes."""
    version = keras_version(keras_dir)
    check_version(version, keras_dir)
    with tree_lock(keras_dir, lock_timeout, say):
        return _install(keras_dir, extensions_dir, version=version,
                        dry_run=dry_run, force=force, say=say)


def _install(keras_dir, extensions_dir, *, version, dry_run, force, say):
    manifest = load_state(keras_dir, clean=not dry_run, say=say) or empty_manifest()
    plan = plan_install(keras_dir, extensions_dir, manifest, force=force)
    refuse_conflicts([] if force else plan.conflicts, "replace it")
    if not plan.changes:
        if not dry_run:
            clean_debris(keras_dir, manifest, plan.content, say)
        say(f"FCN extensions are up to date in Keras {version} at {keras_dir}")
        return []
    check_writable(keras_dir, [rel for _, rel in plan.changes])
    say(f"Keras {version} at {keras_dir}")
    for line in plan.notes:
        say(line)
    for path, why in plan.conflicts:
        say(f"  --force: {path} {why}; replacing it")
    for verb, rel in plan.changes:
        say(f"  {'would ' if dry_run else ''}{verb:7s} {rel}")
    if dry_run:
        say(f"dry run: {len(plan.changes)} change(s) planned, nothing changed")
        return plan.changes
    clean_debris(keras_dir, manifest, plan.content, say)

    apply_or_roll_back("install", lambda txn: _apply_install(
        txn, keras_dir, manifest, plan=plan, version=version))
    say(f"installed FCN extensions into Keras {version} at {keras_dir} "
        f"({len(plan.changes)} file(s) changed, manifest "
        f"{manifest_path(keras_dir)})")
    return plan.changes


def _apply_install(txn, keras_dir, manifest, *, plan, version):
    files = manifest["files"]
    state = state_dir(keras_dir)
    txn.makedirs(state)
    for rel, (data, mtime_ns) in plan.backups.items():
        txn.write(backup_path(keras_dir, rel), data, mtime_ns=mtime_ns)

    # 1. The manifest covers old and new entries before any Keras file changes.
    during = dict(files)
    for rel, entry in plan.entries.items():
        during[rel] = dict(entry)
        if rel in plan.previous and plan.previous[rel] != entry["installed_sha256"]:
            during[rel]["previous_sha256"] = plan.previous[rel]
    transition = dict(manifest, keras_version=version, files=during,
                      created_dirs=sorted(_live_dirs(plan.created, during)))
    transition.pop("keras_dir", None)
    _write_manifest(txn, keras_dir, transition)

    # 2. Modules and shims, new ones first; 3. then the blocks importing them.
    writes = [rel for _, rel in plan.changes if rel in plan.content]
    def order(rel):
        block = plan.entries[rel]["action"] == "modified" and plan.entries[rel].get("block", True)
        return (block, (keras_dir / rel).exists(), rel)
    for rel in sorted(writes, key=order):
        txn.write(keras_dir / rel, plan.content[rel])

    # 4. Stale entries: blocks out first, then the modules they imported.
    stale = sorted(plan.stale.items(), key=lambda item: files[item[0]]["action"] == "added")
    for rel, (verb, stripped) in stale:
        entry = files[rel]
        if verb == "remove":
            remove_added(txn, keras_dir, rel)
        elif verb == "restore":
            restore(txn, keras_dir, rel, entry)
        elif verb == "strip":
            txn.write(keras_dir / rel, stripped)
    final_files = dict(plan.entries)
    final_dirs = _live_dirs(plan.created, final_files)
    clean_created_dirs(txn, keras_dir, plan.created - final_dirs)
    final = dict(transition, files=final_files, created_dirs=sorted(final_dirs))
    if final != transition:
        _write_manifest(txn, keras_dir, final)
    _remove_unreferenced_backups(txn, keras_dir, final_files)


def _live_dirs(created, files):
    """The created directories that still hold an added file."""
    added = [rel for rel, e in files.items() if e["action"] == "added"]
    return {d for d in created if any(a.startswith(d + "/") for a in added)}


def _write_manifest(txn, keras_dir, manifest):
    txn.write(manifest_path(keras_dir), manifest_bytes(manifest))


def _remove_unreferenced_backups(txn, keras_dir, files):
    wanted = set()
    for rel, entry in files.items():
        if entry["action"] == "modified":
            wanted.add(rel)
            wanted.update(entry.get("pycache", {}))
    root = state_dir(keras_dir) / BACKUP_DIR
    if not root.is_dir() or root.is_symlink():
        return
    for directory, dirs, names in os.walk(root, topdown=False):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.relpath(path, root).replace(os.sep, "/") not in wanted:
                txn.remove(type(root)(path))
        for name in dirs:
            sub = type(root)(directory) / name
            if sub.is_dir() and not sub.is_symlink() and not any(sub.iterdir()):
                txn.rmdir(sub)
