"""Where the extension sources are: in the installed package or the checkout."""

from pathlib import Path

from fcn_install.errors import SetupError
from fcn_install.exports import PUBLIC_API_FILE

_PACKAGE = Path(__file__).resolve().parent
# A wheel holds them as `fcn_install/extensions`; a checkout (and an editable
# install of it) as `extensions/` beside the package.
CANDIDATES = (_PACKAGE / "extensions", _PACKAGE.parent / "extensions")


def extensions_dir():
    """The first folder of `CANDIDATES` that holds `public_api.toml`."""
    for candidate in CANDIDATES:
        if (candidate / PUBLIC_API_FILE).is_file():
            return candidate
    raise SetupError(
        f"the FCN extension sources are missing: none of "
        f"{', '.join(str(c) for c in CANDIDATES)} holds {PUBLIC_API_FILE}. "
        f"Reinstall the package (pip install --force-reinstall ...)"
    )
