"""`install`, `uninstall` and `status`.

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
import shutil
from dataclasses import dataclass
from dataclasses import field

from fcn_install import exports as ex
from fcn_install.errors import SetupError
from fcn_install.fileops import TMP_SUFFIX
from fcn_install.fileops import Transaction
from fcn_install.fileops import remove_tmp_debris
from fcn_install.fileops import rollback_message
from fcn_install.keras_tree import REINSTALL_KERAS
from fcn_install.keras_tree import check_version
from fcn_install.keras_tree import inside
from fcn_install.keras_tree import keras_version
from fcn_install.keras_tree import pycache_files
from fcn_install.keras_tree import read_or_none
from fcn_install.keras_tree import sha256
from fcn_install.lock import DEFAULT_LOCK_TIMEOUT
from fcn_install.lock import tree_lock
from fcn_install.manifest import BACKUP_DIR
from fcn_install.manifest import MANIFEST_NAME
from fcn_install.manifest import backup_path
from fcn_install.manifest import empty_manifest
from fcn_install.manifest import manifest_bytes
from fcn_install.manifest import manifest_path
from fcn_install.manifest import read_manifest
from fcn_install.manifest import state_dir

FORCE_HINT = "save your changes elsewhere, or rerun with --force to {}"


def _quiet(line):
    pass


# ------------------------------------------------------------ shared parts


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


def _read_file(keras_dir, rel, what):
    """The content of `<keras>/rel` (None if absent), refusing symlinks and
    non-files on the way."""
    path = inside(keras_dir, rel, what)
    if path.exists() and not path.is_file():
        raise SetupError(f"{path} is not a regular file; nothing was changed")
    return read_or_none(path)


def _verified_backup(keras_dir, rel, digest):
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


def _pyc_backups(keras_dir, entry):
    """{pyc rel: backup bytes} for the caches whose backup is intact."""
    found = {}
    for pyc_rel, digest in entry.get("pycache", {}).items():
        path = backup_path(keras_dir, pyc_rel)
        data = read_or_none(path) if path.is_file() else None
        if data is not None and sha256(data) == digest:
            found[pyc_rel] = (data, path.stat().st_mtime_ns)
    return found


def _restore_pycs(txn, keras_dir, rel, entry):
    """Puts back the original's `.pyc` files and removes the others; a cache
    whose backup is damaged is removed (Python rebuilds it), never trusted."""
    saved = _pyc_backups(keras_dir, entry)
    for pyc in pycache_files(keras_dir / rel):
        pyc_rel = pyc.relative_to(keras_dir).as_posix()
        if pyc_rel not in saved:
            txn.remove(pyc)
    for pyc_rel, (data, mtime_ns) in saved.items():
        current = read_or_none(keras_dir / pyc_rel)
        if current != data or (keras_dir / pyc_rel).stat().st_mtime_ns != mtime_ns:
            txn.write(keras_dir / pyc_rel, data, mtime_ns=mtime_ns)


def _remove_added(txn, keras_dir, rel):
    path = keras_dir / rel
    for pyc in pycache_files(path):
        txn.remove(pyc)
    txn.remove(path)
    cache = path.parent / "__pycache__"
    if cache.is_dir() and not cache.is_symlink() and not any(cache.iterdir()):
        txn.rmdir(cache)  # Python made it for our module alone.


def _clean_created_dirs(txn, keras_dir, rels):
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


def _load_state(keras_dir, clean, say):
    """The checked manifest or None; removes a state folder left without a
    manifest by a killed run when `clean` (no Keras file was changed then)."""
    state = state_dir(keras_dir)
    manifest = read_manifest(keras_dir)
    if manifest is None and state.exists() and clean:
        shutil.rmtree(state)
        say(f"  removed {state}: an interrupted run left it without a manifest, "
            "before changing any Keras file")
    return manifest


def _clean_debris(keras_dir, manifest, rels, say):
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


def _refuse_conflicts(conflicts, action):
    if conflicts:
        path, why = conflicts[0]
        more = f" ({len(conflicts) - 1} more file(s) too)" if len(conflicts) > 1 else ""
        raise SetupError(
            f"{path} {why}{more}; nothing was changed. "
            + FORCE_HINT.format(action)
        )


def check_writable(keras_dir, rels):
    """Refuses, before any change, a tree this user cannot write."""
    dirs = {keras_dir, keras_dir / ".fcn_extensions"}
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


# ----------------------------------------------------------------- install


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


def plan_install(keras_dir, extensions_dir, manifest, force=False):
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
        _plan_file(plan, keras_dir, rel, files.get(rel), mirrored, lines, force)
    for rel in sorted(set(files) - set(mirrored) - set(lines)):
        _plan_stale(plan, keras_dir, rel, files[rel], force)
    return plan


def _plan_file(plan, keras_dir, rel, entry, mirrored, lines, force):
    current = _read_file(keras_dir, rel, "extensions/")
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
            _plan_backup(plan, keras_dir, rel, current, st.st_mtime_ns, new_entry)
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
            base = _verified_backup(keras_dir, rel, entry["original_sha256"])
        elif state == "missing":
            plan.conflicts.append((path, "was deleted since FCN_setup.py changed it"))
            if not force:
                return
            base = _verified_backup(keras_dir, rel, entry["original_sha256"])
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
            base = stripped if stripped is not None else _verified_backup(
                keras_dir, rel, entry["original_sha256"])
        if entry is None or sha256(base) != entry["original_sha256"]:
            st = path.stat()
            new_entry = {"action": "modified", "original_sha256": sha256(base),
                         "original_mtime_ns": st.st_mtime_ns}
            _plan_backup(plan, keras_dir, rel, base, st.st_mtime_ns, new_entry)
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


def _plan_backup(plan, keras_dir, rel, base, mtime_ns, entry):
    plan.backups[rel] = (base, mtime_ns)
    caches = {}
    for pyc in pycache_files(keras_dir / rel):
        pyc_rel = pyc.relative_to(keras_dir).as_posix()
        data = pyc.read_bytes()
        plan.backups[pyc_rel] = (data, pyc.stat().st_mtime_ns)
        caches[pyc_rel] = sha256(data)
    entry["pycache"] = caches


def _plan_stale(plan, keras_dir, rel, entry, force):
    """An entry that extensions/ no longer provides: removed or restored."""
    current = _read_file(keras_dir, rel, "the manifest")
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
        _verified_backup(keras_dir, rel, entry["original_sha256"])
        plan.stale[rel] = ("restore", None)
    elif state == "changed" and entry.get("block", True) and ex.has_block_marker(current):
        stripped = ex.strip_block(current)
        if stripped is None:
            plan.conflicts.append((path, "has its FCN block edited"))
            if not force:
                return
            _verified_backup(keras_dir, rel, entry["original_sha256"])
            plan.stale[rel] = ("restore", None)
        else:
            plan.stale[rel] = ("strip", stripped)
    elif state == "changed" and not entry.get("block", True):
        plan.conflicts.append((path, "was edited since FCN_setup.py wrote it"))
        if not force:
            return
        _verified_backup(keras_dir, rel, entry["original_sha256"])
        plan.stale[rel] = ("restore", None)
    else:  # original, missing, or replaced without our lines: nothing of ours
        plan.stale[rel] = ("drop", None)
    plan.changes.append(("restore", rel))


def install(keras_dir, extensions_dir, dry_run=False, force=False, say=print,
            lock_timeout=DEFAULT_LOCK_TIMEOUT):
    """Installs or updates the extensions. Returns the list of changes."""
    version = keras_version(keras_dir)
    check_version(version, keras_dir)
    with tree_lock(keras_dir, lock_timeout, say):
        return _install(keras_dir, extensions_dir, version, dry_run, force, say)


def _install(keras_dir, extensions_dir, version, dry_run, force, say):
    manifest = _load_state(keras_dir, not dry_run, say) or empty_manifest()
    plan = plan_install(keras_dir, extensions_dir, manifest, force)
    _refuse_conflicts([] if force else plan.conflicts, "replace it")
    if not plan.changes:
        if not dry_run:
            _clean_debris(keras_dir, manifest, plan.content, say)
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
    _clean_debris(keras_dir, manifest, plan.content, say)

    txn = Transaction()
    try:
        _apply_install(txn, keras_dir, manifest, plan, version)
    except BaseException as e:
        failed = txn.rollback()
        if isinstance(e, (KeyboardInterrupt, SetupError)):
            raise
        raise SetupError(rollback_message("install", e, failed))
    say(f"installed FCN extensions into Keras {version} at {keras_dir} "
        f"({len(plan.changes)} file(s) changed, manifest "
        f"{keras_dir / '.fcn_extensions' / MANIFEST_NAME})")
    return plan.changes


def _apply_install(txn, keras_dir, manifest, plan, version):
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
            _remove_added(txn, keras_dir, rel)
        elif verb == "restore":
            _restore(txn, keras_dir, rel, entry)
        elif verb == "strip":
            txn.write(keras_dir / rel, stripped)
    final_files = dict(plan.entries)
    final_dirs = _live_dirs(plan.created, final_files)
    _clean_created_dirs(txn, keras_dir, plan.created - final_dirs)
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


def _restore(txn, keras_dir, rel, entry):
    data = _verified_backup(keras_dir, rel, entry["original_sha256"])
    txn.write(keras_dir / rel, data, mtime_ns=entry["original_mtime_ns"])
    _restore_pycs(txn, keras_dir, rel, entry)


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


# --------------------------------------------------------------- uninstall


def uninstall(keras_dir, dry_run=False, force=False, say=print,
              lock_timeout=DEFAULT_LOCK_TIMEOUT):
    """Restores Keras. Returns the files left in place because they changed."""
    with tree_lock(keras_dir, lock_timeout, say):
        return _uninstall(keras_dir, dry_run, force, say)


def _uninstall(keras_dir, dry_run, force, say):
    manifest = _load_state(keras_dir, not dry_run, say)
    if manifest is None:
        say(f"FCN extensions are not installed in Keras at {keras_dir}; nothing to do")
        return []
    files = manifest["files"]
    blocks, modules, left, conflicts = [], [], [], []
    for rel, entry in sorted(files.items()):
        current = _read_file(keras_dir, rel, str(manifest_path(keras_dir)))
        path = keras_dir / rel
        state = file_state(current, entry)
        if entry["action"] == "added":
            if state == "changed":
                conflicts.append((path, "was edited since FCN_setup.py wrote it"))
            if state != "missing":
                modules.append(("remove", rel, None))
            continue
        if state in ("installed", "previous"):
            _verified_backup(keras_dir, rel, entry["original_sha256"])
            blocks.append(("restore", rel, None))
        elif state == "original":
            blocks.append(("caches", rel, None))
        elif state == "missing":
            left.append((rel, "missing"))
        elif not entry.get("block", True):
            conflicts.append((path, "was edited since FCN_setup.py wrote it"))
            _verified_backup(keras_dir, rel, entry["original_sha256"])
            blocks.append(("restore", rel, None))
        elif not ex.has_block_marker(current):
            left.append((rel, "changed"))
        else:
            stripped = ex.strip_block(current)
            if stripped is None:
                conflicts.append((path, "has its FCN block edited"))
                _verified_backup(keras_dir, rel, entry["original_sha256"])
                blocks.append(("restore", rel, None))
            else:
                blocks.append(("strip", rel, stripped))
    if not force:
        _refuse_conflicts(conflicts, "remove or restore it")
    plan = blocks + modules
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
    _clean_debris(keras_dir, manifest, [], say)

    txn = Transaction()
    try:
        # Blocks out first: nothing imports the modules once they go.
        for verb, rel, stripped in plan:
            if verb == "restore":
                _restore(txn, keras_dir, rel, files[rel])
            elif verb == "caches":
                _restore_pycs(txn, keras_dir, rel, files[rel])
            elif verb == "strip":
                txn.write(keras_dir / rel, stripped)
                say(f"  kept your lines in {keras_dir / rel}; removed only the FCN block")
            else:
                _remove_added(txn, keras_dir, rel)
        _clean_created_dirs(txn, keras_dir, set(manifest.get("created_dirs", [])))
        txn.remove(manifest_path(keras_dir))
    except BaseException as e:
        failed = txn.rollback()
        if isinstance(e, (KeyboardInterrupt, SetupError)):
            raise
        raise SetupError(rollback_message("uninstall", e, failed))
    # Every Keras file is back and the manifest gone: the rest is our own state.
    shutil.rmtree(state_dir(keras_dir))
    summary = f"uninstalled FCN extensions from Keras at {keras_dir}"
    if left:
        summary += f"; {len(left)} file(s) changed by someone else were left as they are"
    say(summary)
    return left


# ------------------------------------------------------------------ status


def status(keras_dir, extensions_dir, say=print):
    """Reports install state and drift; reads only and takes no lock.
    Returns True when all is consistent."""
    try:
        state = state_dir(keras_dir)
        manifest = read_manifest(keras_dir)
    except SetupError as e:
        say(f"FCN extensions: {e}")
        return False
    if manifest is None:
        if state.exists():
            say(f"FCN extensions: not installed; {state} holds no manifest (an "
                "interrupted run, or one in progress): `python FCN_setup.py "
                "install` or `uninstall` removes it")
            return False
        say(f"FCN extensions: not installed in Keras at {keras_dir}")
        return True
    try:
        version = keras_version(keras_dir)
    except SetupError:
        version = "(unknown version)"
    if manifest.get("keras_version") not in (None, version):
        say(f"  installed for Keras {manifest['keras_version']}, found Keras {version}")
    drift = []
    for rel, entry in sorted(manifest["files"].items()):
        current = read_or_none(keras_dir / rel) if (keras_dir / rel).is_file() else None
        s = file_state(current, entry)
        if s != "installed":
            drift.append((rel, "an update in progress" if s == "previous" else s))
        for leftover in (keras_dir / rel).parent.glob(f".{(keras_dir / rel).name}*{TMP_SUFFIX}"):
            drift.append((leftover.relative_to(keras_dir).as_posix(), "a leftover temp file"))
    for rel, s in drift:
        say(f"  {s}: {keras_dir / rel}")
    try:
        plan = plan_install(keras_dir, extensions_dir, manifest, force=True)
        outdated = [] if drift else [rel for _, rel in plan.changes]
    except SetupError as e:
        outdated = [f"(cannot compare with extensions/: {e})"]
    for rel in outdated:
        say(f"  out of date: {rel}")
    count = len(manifest["files"])
    if drift:
        say(f"FCN extensions: installed ({count} files) with drift in {len(drift)} "
            "file(s): reinstall Keras (pip install --force-reinstall --no-deps "
            "keras==3.15.1) or run `python FCN_setup.py uninstall`")
    elif outdated:
        say(f"FCN extensions: installed ({count} files) but extensions/ changed "
            "since; run `python FCN_setup.py install`")
    else:
        say(f"FCN extensions: installed and intact ({count} files)")
    return not drift and not outdated
