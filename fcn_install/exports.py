"""What the extensions add to Keras: mirrored modules, public API shims, and
the marked import block appended to existing `__init__.py` files."""

import ast
import re
import tomllib

from fcn_install.errors import SetupError

PUBLIC_API_FILE = "public_api.toml"

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
_IMPORT_LINE = re.compile(r"from [A-Za-z_][\w.]* import \w+ as \w+")


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


def api_lines(exports, keras_dir, added):
    """`{rel of an __init__.py: import lines}` for each API root.

    Args:
        added: The rels the current install added (new shim packages stay
            shims even though their `__init__.py` now exists).
    """
    lines = {}
    for api_root in API_ROOTS:
        root = keras_dir / api_root if api_root else keras_dir
        if not (root / "__init__.py").is_file():
            continue
        for package, source, names in exports:
            parts = package.split(".")
            target = "/".join(filter(None, [api_root, *parts, "__init__.py"]))
            lines.setdefault(target, [])
            for line in (import_line(source, n) for n in names):
                if line not in lines[target]:
                    lines[target].append(line)
            # A package Keras lacks is imported by its parent, as Keras does.
            if not root.joinpath(*parts, "__init__.py").is_file() or target in added:
                parent = "/".join(filter(None, [api_root, *parts[:-1], "__init__.py"]))
                if not (keras_dir / parent).is_file():
                    raise SetupError(
                        f"{PUBLIC_API_FILE}: keras.{package} needs the package "
                        f"{keras_dir / parent} to exist; export into an existing package"
                    )
                line = import_line(".".join(["keras", *parts[:-1]]), parts[-1])
                lines.setdefault(parent, [])
                if line not in lines[parent]:
                    lines[parent].insert(0, line)
    return lines


def shim_content(lines):
    return (SHIM_HEADER + "\n".join(sorted(lines)) + "\n").encode()


def with_block(base, lines):
    """`base` with our marked block of import `lines` appended."""
    text = base.decode()
    separator = "" if text == "" or text.endswith("\n") else "\n"
    block = "\n".join([BLOCK_BEGIN, *lines, BLOCK_END]) + "\n"
    return (text + separator + block).encode()


def has_block_marker(content):
    return BLOCK_BEGIN.encode() in content or BLOCK_END.encode() in content


def strip_block(content):
    """`content` without our marked block; itself if it holds none; None
    when the markers are not one intact block of our import lines (then
    the user edited inside it, and only they know what to keep)."""
    try:
        lines = content.decode().splitlines(keepends=True)
    except UnicodeDecodeError:
        return None
    begins = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == BLOCK_BEGIN]
    ends = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == BLOCK_END]
    if not begins and not ends and not has_block_marker(content):
        return content
    if len(begins) != 1 or len(ends) != 1 or begins[0] > ends[0]:
        return None
    inner = lines[begins[0] + 1:ends[0]]
    if not all(_IMPORT_LINE.fullmatch(line.rstrip("\r\n")) for line in inner):
        return None
    return "".join(lines[:begins[0]] + lines[ends[0] + 1:]).encode()
