"""The framework's structure, read from its source: public Keras names only,
no task-name comparison outside tasks/, and imports that only go down the
layers (so none of the subpackages' imports forms a cycle)."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fcn_experiments"
TASK_NAMES = {"classification", "regression", "distribution"}
# Bottom to top: a unit imports only from its own or a lower layer. The
# evaluators are given a task; the tasks own the labels (`data`) and pick
# the evaluators; the settings name a task; training, reporting and
# predict ask the task; the runner and the command line put it together.
LAYERS = (
    "errors",
    "package_files",
    "evaluation",
    "models",
    "data",
    "tasks",
    "config",
    "training",
    "reporting",
    "predict",
    "runner",
    "cli",
)
# The package's facade and entry point re-export names from any layer.
FACADES = ("__init__", "__main__")


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _unit(path):
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(tree):
    """The `fcn_experiments...` and `keras...` modules a file imports, at
    any depth (function-local imports too)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, node.lineno))
            # `from fcn_experiments import tasks`: the names are modules.
            found += [
                (f"{node.module}.{alias.name}", node.lineno)
                for alias in node.names
            ]
    return found


@pytest.fixture(scope="module")
def sources():
    return {path: ast.parse(path.read_text()) for path in _modules()}


def test_every_unit_has_a_layer(sources):
    units = {_unit(path) for path in sources} - set(FACADES)
    assert units == set(LAYERS)


def test_imports_go_only_down_the_layers(sources):
    rank = {unit: i for i, unit in enumerate(LAYERS)}
    wrong = []
    for path, tree in sources.items():
        unit = _unit(path)
        if unit in FACADES:
            continue
        for module, line in _imports(tree):
            parts = module.split(".")
            if parts[0] != "fcn_experiments" or len(parts) < 2:
                continue
            target = parts[1]
            if target in rank and rank[target] > rank[unit]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} {unit} -> {module}")
    assert not wrong, "imports from a higher layer:\n" + "\n".join(wrong)


def test_no_keras_src_name(sources):
    """The framework reaches Keras and the FCN extensions through public
    names only (`extensions/public_api.toml`)."""
    wrong = []
    for path, tree in sources.items():
        for module, line in _imports(tree):
            if module.startswith("keras.src"):
                wrong.append(f"{path.relative_to(ROOT)}:{line} {module}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and "keras.src" in node.value
            ):
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not wrong, "keras.src in the framework:\n" + "\n".join(wrong)


def test_no_private_name_of_another_module(sources):
    """No `from x import _name`, no `module._name`, no private attribute
    of another object (`strategy.extended._options`)."""
    wrong = []
    for path, tree in sources.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                wrong += [
                    f"{path.relative_to(ROOT)}:{node.lineno} {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_")
                ]
            elif (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (
                    isinstance(node.value, ast.Name)
                    and node.value.id in ("self", "cls")
                )
            ):
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert not wrong, "private names of other modules:\n" + "\n".join(wrong)


def _mentions_task(node):
    names = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
    names += [n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)]
    # `config.task`, `saved_task`; not TF's cluster `task_type`.
    return any(name == "task" or name.endswith("_task") for name in names)


def test_only_tasks_know_the_task_names(sources):
    """Outside tasks/ nothing compares a task by name or spells one: the
    rest of the framework asks the `Task` object."""
    wrong = []
    for path, tree in sources.items():
        if _unit(path) == "tasks":
            continue
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in TASK_NAMES:
                wrong.append(f"{where}:{node.lineno} {node.value!r}")
            elif isinstance(node, ast.Compare) and any(
                isinstance(op, (ast.Eq, ast.NotEq))
                for op in node.ops
            ) and _mentions_task(node):
                wrong.append(f"{where}:{node.lineno} compares a task")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, (ast.Name, ast.Attribute))
                and getattr(node.func, "id", getattr(node.func, "attr", ""))
                == "is_scored"
            ):
                wrong.append(f"{where}:{node.lineno} is_scored()")
    assert not wrong, "task names outside tasks/:\n" + "\n".join(wrong)


def test_each_tasks_columns_are_stored_in_results_csv():
    """results.md shows what results.csv stores (an interval `*_ci` from
    its `_low`/`_high` fields), and every row says its task."""
    from fcn_experiments import tasks
    from fcn_experiments.reporting import results

    assert "task" in results.FIELDS
    for name in tasks.TASKS:
        task = tasks.get(name)
        assert task.name == name
        for field, _ in task.result_columns:
            stored = [field]
            if field.endswith("_ci"):
                base = field[: -len("_ci")]
                stored = [f"{base}_low", f"{base}_high"]
                if base == "test":
                    stored = ["test_ci_low", "test_ci_high"]
                elif base == "srcc_diff_vs_1":
                    stored = ["srcc_diff_low", "srcc_diff_high"]
            assert set(stored) <= set(results.FIELDS), (name, field)
