"""Install the FCN extensions into the Keras package this interpreter imports.

usage: python FCN_setup.py install [--dry-run] [--quiet]
       python FCN_setup.py uninstall [--dry-run]
       python FCN_setup.py status

`extensions/keras/<path>` is copied to `<keras>/<path>`, and the public names
declared in `extensions/public_api.toml` are exported through shims and import
lines written the way Keras generates its own API. Every file added or modified
is recorded, with the sha256 of its original and installed content, in
`<keras>/.fcn_extensions/manifest.json`; originals are backed up beside it.
`uninstall` puts every file back byte for byte (the `.pyc` caches of the
modified files and their modification times included) and leaves alone any
file that someone else changed since the install.

Keras is found with `importlib.util.find_spec("keras")`, so
`PYTHONPATH=/somewhere python FCN_setup.py install` patches `/somewhere/keras`.
Keras itself is never imported: a broken install cannot stop the uninstall.
"""

import argparse
import ast
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
EXTENSIONS_DIR = ROOT / "extensions"
PUBLIC_API_FILE = "public_api.toml"

# Keras versions the extensions are tested with: [lowest, first refused).
TESTED_KERAS = ((3, 15), (3, 16))
TESTED_KERAS_TEXT = ">=3.15,<3.16"

STATE_DIR = ".fcn_extensions"
MANIFEST_NAME = "manifest.json"
BACKUP_DIR = "backup"
MANIFEST_FORMAT = 1

# The public API lives twice in Keras 3: `keras.*` and its `tf.keras` twin.
API_ROOTS = ("", "_tf_keras/keras")
BLOCK_BEGIN = (
    "# BEGIN FCN extensions: added by FCN_setup.py; "
    "`python FCN_setup.py uninstall` removes it."
)
BLOCK_END = "# END FCN extensions"
SHIM_HEADER = (
    '"""FCN extensions: written by FCN_setup.py, '
    'removed by `python FCN_setup.py uninstall`."""\n\n'
)

USAGE = __doc__.split("\n\n")[1].removeprefix("usage: ")


class SetupError(Exception):
    """A refusal or failure; its message is the one-line reason shown."""


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def read_or_none(path):
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


# ----------------------------------------------------------------- Keras


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
    text = version_file.read_text() if version_file.is_file() else ""
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not match:
        raise SetupError(
            f"{keras_dir} is not a Keras 3 package (no version in "
            f"{version_file}); install keras==3.15.1"
        )
    return match.group(1)


def check_version(version, keras_dir):
    numbers = re.match(r"(\d+)\.(\d+)", version)
    parsed = (int(numbers[1]), int(numbers[2])) if numbers else (0, 0)
    low, high = TESTED_KERAS
    if not low <= parsed < high:
        raise SetupError(
            f"Keras {version} at {keras_dir} is outside the tested range "
            f"{TESTED_KERAS_TEXT}; nothing was changed. Install keras==3.15.1 "
            "(pip install -r requirements.txt), ideally in a virtual environment."
        )


# ------------------------------------------------------- what to install


def load_exports(extensions_dir):
    """Reads and checks `public_api.toml`: a list of (package, source, names)."""
    path = extensions_dir / PUBLIC_API_FILE
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SetupError(f"cannot read {path}: {e}")
    exports = []
    for i, entry in enumerate(data.get("export", [])):
        package = entry.get("package", "")
        source = entry.get("source", "")
        names = entry.get("names", [])
        if not (
            re.fullmatch(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*", package)
            and source.startswith("keras.src.")
            and names
            and all(isinstance(n, str) and n.isidentifier() for n in names)
        ):
            raise SetupError(
                f"{path}: export #{i + 1} needs a dotted `package`, a `source` "
                f"under keras.src and identifier `names`. Received: {entry}"
            )
        exports.append((package, source, list(names)))
    return exports


def module_file(tree, module):
    """`keras.src.a.b` -> `<tree>/src/a/b.py` (or its package __init__)."""
    parts = module.split(".")[1:]
    as_file = tree.joinpath(*parts).with_suffix(".py")
    as_package = tree.joinpath(*parts, "__init__.py")
    return as_file if as_file.is_file() else as_package


def top_level_names(source_bytes):
    names = set()
    for node in ast.parse(source_bytes).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def check_sources(exports, extensions_dir, keras_dir):
    """Refuses an export whose source module or name does not exist.

    A shim that imports a missing name would break `import keras` itself.
    """
    for package, source, names in exports:
        candidates = [module_file(extensions_dir / "keras", source),
                      module_file(keras_dir, source)]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise SetupError(
                f"{PUBLIC_API_FILE}: source module {source} (for "
                f"keras.{package}) exists neither in extensions/ nor in Keras"
            )
        missing = sorted(set(names) - top_level_names(found.read_bytes()))
        if missing:
            raise SetupError(
                f"{PUBLIC_API_FILE}: {source} has no {', '.join(missing)} "
                f"(for keras.{package}); fix the names or the module {found}"
            )


def mirrored_files(extensions_dir):
    """`extensions/keras/<path>` -> `<keras>/<path>`, caches excluded."""
    base = extensions_dir / "keras"
    files = {}
    for path in sorted(base.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files[path.relative_to(base).as_posix()] = path.read_bytes()
    return files


def import_line(source, name):
    return f"from {source} import {name} as {name}"


def pristine_content(keras_dir, rel, manifest):
    """The Keras-owned content of an existing file, without our additions."""
    current = read_or_none(keras_dir / rel)
    if current is None or BLOCK_BEGIN.encode() not in current:
        return current
    backup = read_or_none(keras_dir / STATE_DIR / BACKUP_DIR / rel)
    if rel in manifest["files"] and backup is not None:
        return backup
    raise SetupError(
        f"{keras_dir / rel} holds FCN lines but no backup of its original; "
        "restore Keras with: pip install --force-reinstall --no-deps keras==3.15.1"
    )


def public_api_files(exports, keras_dir, manifest):
    """The shims and amended `__init__.py` files for each API root."""
    lines = {}  # rel of an __init__.py -> lines to add
    for api_root in API_ROOTS:
        root = keras_dir / api_root if api_root else keras_dir
        if not (root / "__init__.py").is_file():
            continue
        for package, source, names in exports:
            parts = package.split(".")
            target = "/".join(filter(None, [api_root, *parts, "__init__.py"]))
            new_lines = [import_line(source, n) for n in names]
            lines.setdefault(target, [])
            for line in new_lines:
                if line not in lines[target]:
                    lines[target].append(line)
            # A package Keras lacks is imported by its parent, as Keras does.
            if not root.joinpath(*parts, "__init__.py").is_file() or (
                target in manifest["files"]
                and manifest["files"][target]["action"] == "added"
            ):
                parent = "/".join(filter(None, [api_root, *parts[:-1], "__init__.py"]))
                if not (keras_dir / parent).is_file():
                    raise SetupError(
                        f"{PUBLIC_API_FILE}: keras.{package} needs the package "
                        f"{keras_dir / parent} to exist; export into an existing package"
                    )
                parent_module = ".".join(["keras", *parts[:-1]])
                line = import_line(parent_module, parts[-1])
                lines.setdefault(parent, [])
                if line not in lines[parent]:
                    lines[parent].insert(0, line)

    files = {}
    for rel, new_lines in lines.items():
        original = pristine_content(keras_dir, rel, manifest)
        entry = manifest["files"].get(rel)
        if original is None or (entry and entry["action"] == "added"):
            files[rel] = (SHIM_HEADER + "\n".join(sorted(new_lines)) + "\n").encode()
        else:
            block = "\n".join([BLOCK_BEGIN, *new_lines, BLOCK_END])
            text = original.decode()
            separator = "" if text.endswith("\n") else "\n"
            files[rel] = (text + separator + block + "\n").encode()
    return files


def desired_files(extensions_dir, keras_dir, manifest):
    """Every file the install should leave: relative path -> content."""
    exports = load_exports(extensions_dir)
    check_sources(exports, extensions_dir, keras_dir)
    files = mirrored_files(extensions_dir)
    generated = public_api_files(exports, keras_dir, manifest)
    overlap = sorted(set(files) & set(generated))
    if overlap:
        raise SetupError(
            f"extensions/keras/ also holds the generated file(s) {overlap}; "
            f"declare their names in {PUBLIC_API_FILE} instead"
        )
    files.update(generated)
    return files


# ------------------------------------------------------------ state files


def empty_manifest(keras_dir):
    return {"format": MANIFEST_FORMAT, "keras_version": None,
            "keras_dir": str(keras_dir), "files": {}, "created_dirs": []}


def read_manifest(keras_dir):
    path = keras_dir / STATE_DIR / MANIFEST_NAME
    data = read_or_none(path)
    if data is None:
        return None
    try:
        manifest = json.loads(data)
        assert manifest["format"] == MANIFEST_FORMAT and "files" in manifest
    except (ValueError, KeyError, AssertionError, TypeError):
        raise SetupError(
            f"{path} is unreadable; restore Keras with "
            "pip install --force-reinstall --no-deps keras==3.15.1, then delete "
            f"{path.parent}"
        )
    return manifest


def pycache_files(path):
    """The bytecode caches Python keeps for the source file `path`."""
    cache = path.parent / "__pycache__"
    if not cache.is_dir():
        return []
    return sorted(p for p in cache.glob(f"{path.stem}.*.pyc") if p.is_file())


class Transaction:
    """Atomic file writes and removals, undone in reverse order on failure."""

    def __init__(self, keras_dir):
        self.keras_dir = keras_dir
        self.undo = []

    def _remember(self, path):
        if path.is_file():
            st = path.stat()
            self.undo.append((path, path.read_bytes(), st.st_mode, st.st_mtime_ns))
        else:
            self.undo.append((path, None, None, None))

    def write(self, path, data, mtime_ns=None):
        self._remember(path)
        self._makedirs(path.parent)
        mode = path.stat().st_mode if path.exists() else None
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".fcn-tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if mode is not None:
                os.chmod(tmp, mode)
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)
            if mtime_ns is not None:
                os.utime(tmp, ns=(mtime_ns, mtime_ns))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def remove(self, path):
        if path.exists():
            self._remember(path)
            path.unlink()

    def _makedirs(self, directory):
        missing = []
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for d in reversed(missing):
            d.mkdir()
            self.undo.append((d, "dir", None, None))

    def rollback(self):
        for path, data, mode, mtime_ns in reversed(self.undo):
            try:
                if data == "dir":
                    shutil.rmtree(path, ignore_errors=True)
                elif data is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_bytes(data)
                    os.chmod(path, mode)
                    os.utime(path, ns=(mtime_ns, mtime_ns))
            except OSError:
                pass
        self.undo.clear()


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


# --------------------------------------------------------------- commands


def install(keras_dir, extensions_dir=EXTENSIONS_DIR, dry_run=False, say=print):
    """Installs or updates the extensions. Returns the list of changes."""
    version = keras_version(keras_dir)
    check_version(version, keras_dir)
    manifest = read_manifest(keras_dir) or empty_manifest(keras_dir)
    desired = desired_files(extensions_dir, keras_dir, manifest)

    changes = []  # (verb, rel)
    for rel, content in desired.items():
        current = read_or_none(keras_dir / rel)
        entry = manifest["files"].get(rel)
        if current == content and entry and entry["installed_sha256"] == sha256(content):
            continue
        if entry and entry["action"] == "added":
            changes.append(("update", rel))
        elif current is None:
            changes.append(("add", rel))
        else:
            changes.append(("modify" if not entry else "update", rel))
    stale = sorted(set(manifest["files"]) - set(desired))
    changes += [("remove" if manifest["files"][rel]["action"] == "added" else "restore", rel)
                for rel in stale]

    if not changes:
        say(f"FCN extensions are up to date in Keras {version} at {keras_dir}")
        return []
    for verb, rel in changes:
        say(f"  {'would ' if dry_run else ''}{verb:7s} {rel}")
    if dry_run:
        say(f"dry run: {len(changes)} change(s) planned, nothing changed")
        return changes
    check_writable(keras_dir, [rel for _, rel in changes])

    state = keras_dir / STATE_DIR
    txn = Transaction(keras_dir)
    try:
        new_manifest = dict(manifest, keras_version=version, keras_dir=str(keras_dir))
        files = dict(manifest["files"])
        created = set(manifest.get("created_dirs", []))
        for verb, rel in changes:
            path = keras_dir / rel
            if verb in ("remove", "restore"):
                continue
            if verb == "add" or files.get(rel, {}).get("action") == "added":
                d = path.parent
                while not d.exists():
                    created.add(d.relative_to(keras_dir).as_posix())
                    d = d.parent
                files[rel] = {"action": "added", "original_sha256": None,
                              "installed_sha256": sha256(desired[rel])}
                continue
            original = pristine_content(keras_dir, rel, manifest)
            backup = state / BACKUP_DIR / rel
            if read_or_none(backup) != original or rel not in files:
                # First install, or Keras rewrote the file since: back up anew.
                st = path.stat()
                txn.write(backup, original, mtime_ns=st.st_mtime_ns)
                caches = {}
                for pyc in pycache_files(path):
                    pyc_rel = pyc.relative_to(keras_dir).as_posix()
                    txn.write(state / BACKUP_DIR / pyc_rel, pyc.read_bytes(),
                              mtime_ns=pyc.stat().st_mtime_ns)
                    caches[pyc_rel] = sha256(pyc.read_bytes())
                files[rel] = {"action": "modified", "original_sha256": sha256(original),
                              "original_mtime_ns": st.st_mtime_ns, "pycache": caches}
            files[rel]["installed_sha256"] = sha256(desired[rel])
        new_manifest["files"] = files
        new_manifest["created_dirs"] = sorted(created)
        # The manifest covers every file before any file changes, so an
        # interrupted install can still be uninstalled.
        write_manifest(txn, keras_dir, new_manifest)
        for verb, rel in changes:
            if verb == "remove":
                remove_added(txn, keras_dir, rel)
            elif verb == "restore":
                restore_modified(txn, keras_dir, rel, manifest["files"][rel])
                drop_backups(txn, keras_dir, rel, manifest["files"][rel])
            else:
                txn.write(keras_dir / rel, desired[rel])
        for rel in stale:
            del files[rel]
        write_manifest(txn, keras_dir, new_manifest)
    except BaseException as e:
        txn.rollback()
        if isinstance(e, (KeyboardInterrupt, SetupError)):
            raise
        raise SetupError(f"install failed ({e}); every change was rolled back")
    say(f"installed FCN extensions into Keras {version} at {keras_dir} "
        f"({len(changes)} file(s) changed, manifest {state / MANIFEST_NAME})")
    return changes


def write_manifest(txn, keras_dir, manifest):
    data = json.dumps(manifest, indent=1, sort_keys=True).encode() + b"\n"
    txn.write(keras_dir / STATE_DIR / MANIFEST_NAME, data)


def remove_added(txn, keras_dir, rel):
    path = keras_dir / rel
    for pyc in pycache_files(path):
        txn.remove(pyc)
    txn.remove(path)
    cache = path.parent / "__pycache__"
    if cache.is_dir() and not any(cache.iterdir()):
        cache.rmdir()  # Python made it for our module alone.


def restore_modified(txn, keras_dir, rel, entry):
    backup_dir = keras_dir / STATE_DIR / BACKUP_DIR
    txn.write(keras_dir / rel, (backup_dir / rel).read_bytes(),
              mtime_ns=entry["original_mtime_ns"])
    # Caches compiled from the installed content go; the original ones return.
    for pyc in pycache_files(keras_dir / rel):
        if pyc.relative_to(keras_dir).as_posix() not in entry["pycache"]:
            txn.remove(pyc)
    for pyc_rel in entry["pycache"]:
        saved = backup_dir / pyc_rel
        txn.write(keras_dir / pyc_rel, saved.read_bytes(), mtime_ns=saved.stat().st_mtime_ns)


def drop_backups(txn, keras_dir, rel, entry):
    backup_dir = keras_dir / STATE_DIR / BACKUP_DIR
    for backup_rel in [rel, *entry.get("pycache", {})]:
        txn.remove(backup_dir / backup_rel)


def file_state(keras_dir, rel, entry):
    """'installed', 'original', 'missing' or 'changed' (by someone else)."""
    current = read_or_none(keras_dir / rel)
    if current is None:
        return "missing"
    digest = sha256(current)
    if digest == entry["installed_sha256"]:
        return "installed"
    if digest == entry.get("original_sha256"):
        return "original"
    return "changed"


def uninstall(keras_dir, dry_run=False, say=print):
    """Restores Keras. Returns the files left in place because they changed."""
    manifest = read_manifest(keras_dir)
    if manifest is None:
        say(f"FCN extensions are not installed in Keras at {keras_dir}; nothing to do")
        return []
    plan, left = [], []
    for rel, entry in sorted(manifest["files"].items()):
        state = file_state(keras_dir, rel, entry)
        if state == "changed" or (state == "missing" and entry["action"] == "modified"):
            left.append((rel, state))
        elif state == "installed":
            plan.append(("remove" if entry["action"] == "added" else "restore", rel))
    for verb, rel in plan:
        say(f"  {'would ' if dry_run else ''}{verb:7s} {rel}")
    for rel, state in left:
        say(f"  warning: {keras_dir / rel} is {state} since install "
            "(by someone else); left as it is")
    if dry_run:
        say(f"dry run: {len(plan)} file(s) to restore or remove, nothing changed")
        return left
    check_writable(keras_dir, [rel for _, rel in plan])

    txn = Transaction(keras_dir)
    try:
        for verb, rel in plan:
            if verb == "remove":
                remove_added(txn, keras_dir, rel)
            else:
                restore_modified(txn, keras_dir, rel, manifest["files"][rel])
    except BaseException as e:
        txn.rollback()
        if isinstance(e, KeyboardInterrupt):
            raise
        raise SetupError(f"uninstall failed ({e}); every change was rolled back")
    # Past this point everything is restored; cleaning up cannot lose data.
    for rel in sorted(manifest.get("created_dirs", []), key=len, reverse=True):
        d = keras_dir / rel
        shutil.rmtree(d / "__pycache__", ignore_errors=True)
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    shutil.rmtree(keras_dir / STATE_DIR)
    summary = f"uninstalled FCN extensions from Keras at {keras_dir}"
    if left:
        summary += f"; {len(left)} file(s) changed by someone else were left as they are"
    say(summary)
    return left


def status(keras_dir, extensions_dir=EXTENSIONS_DIR, say=print):
    """Reports install state and drift. Returns True when all is consistent."""
    manifest = read_manifest(keras_dir)
    if manifest is None:
        say(f"FCN extensions: not installed in Keras at {keras_dir}")
        return True
    version = keras_version(keras_dir)
    if manifest.get("keras_version") not in (None, version):
        say(f"  installed for Keras {manifest['keras_version']}, found Keras {version}")
    drift = [(rel, file_state(keras_dir, rel, entry))
             for rel, entry in sorted(manifest["files"].items())]
    drift = [(rel, s) for rel, s in drift if s != "installed"]
    for rel, state in drift:
        say(f"  {state}: {keras_dir / rel}")
    try:
        desired = desired_files(extensions_dir, keras_dir, manifest)
        outdated = sorted(
            rel for rel, content in desired.items()
            if manifest["files"].get(rel, {}).get("installed_sha256") != sha256(content)
        ) + sorted(set(manifest["files"]) - set(desired))
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="FCN_setup.py", usage=USAGE, add_help=True)
    parser.add_argument("command", nargs="?", choices=["install", "uninstall", "status"])
    parser.add_argument("--dry-run", action="store_true", help="print the plan only")
    parser.add_argument("--quiet", action="store_true", help="print the summary only")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("FCN_setup.py: error: a command is required", file=sys.stderr)
        return 2
    quiet_say = lambda line: None if line.startswith("  ") else print(line)  # noqa: E731
    say = quiet_say if args.quiet else print
    try:
        keras_dir = find_keras()
        version = keras_version(keras_dir)
        if not args.quiet:
            print(f"Keras {version} at {keras_dir}")
        if args.command == "install":
            install(keras_dir, dry_run=args.dry_run, say=say)
        elif args.command == "uninstall":
            uninstall(keras_dir, dry_run=args.dry_run, say=say)
        else:
            return 0 if status(keras_dir, say=say) else 1
    except SetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
