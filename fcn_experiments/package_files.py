"""The files the package ships beside its code, in a wheel or a checkout."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
# A wheel copies them into the package (setup.py); a checkout, and an
# editable install of it, has them at the repository's root.
_FOLDERS = (_PACKAGE, _PACKAGE.parent)

TEST_IMAGE_NAME = "test_image.jpg"
NOTEBOOK_NAME = "FCN_demo.ipynb"


def package_file(name):
    """The path of `name` (`TEST_IMAGE_NAME`, `NOTEBOOK_NAME`)."""
    for folder in _FOLDERS:
        if (folder / name).is_file():
            return str(folder / name)
    raise FileNotFoundError(
        f"{name} is missing from {_FOLDERS[0]} and {_FOLDERS[1]}; reinstall "
        f"the package (pip install --force-reinstall fcn-in-keras). "
        f"Received: name={name!r}"
    )
