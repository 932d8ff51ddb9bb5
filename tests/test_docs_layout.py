"""docs/layout.md names every module of the product's folders."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDERS = (
    "fcn_install",
    "fcn_experiments",
    "extensions/keras/src/applications",
    "extensions/keras/src/utils",
    "extensions/keras/src/visualization",
    "bench",
)


def test_every_module_is_in_the_layout_page():
    layout = (ROOT / "docs" / "layout.md").read_text()
    modules = [
        path.relative_to(ROOT).as_posix()
        for folder in FOLDERS
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "__main__.py"
    ]
    assert len(modules) > 60
    missing = [m for m in modules if f"`{m}`" not in layout]
    assert not missing, f"docs/layout.md does not list {missing}"
