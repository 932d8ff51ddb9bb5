"""Install the FCN extensions into the Keras package this interpreter imports.

usage: python FCN_setup.py install [--dry-run] [--quiet] [--force] [--lock-timeout S]
       python FCN_setup.py uninstall [--dry-run] [--quiet] [--force] [--lock-timeout S]
       python FCN_setup.py status

The same command is `fcn-setup` once the package is installed (`pip install .`);
both run `fcn_install.command.main`, and this file only re-exports its parts.

`extensions/keras/<path>` is copied to `<keras>/<path>`, and the public names
declared in `extensions/public_api.toml` are exported through shims and import
lines written the way Keras generates its own API. Every file added or modified
is recorded, with the sha256 of its original and installed content, in
`<keras>/.fcn_extensions/manifest.json`; originals are backed up beside it.
`uninstall` puts every file back byte for byte (the `.pyc` caches of the
modified files and their modification times included).

Safe against crashes, concurrent runs, user edits and a tampered manifest:
one run at a time per Keras tree (the second waits up to `--lock-timeout`
seconds, default 60, then refuses); a run killed at any point is finished or
undone by running either command again, and `import keras` works at every
instant; a file changed since the install is never overwritten, restored or
removed without `--force` (uninstall takes only our marked block out of an
edited `__init__.py`); every manifest path must stay inside Keras. The parts
live in the `fcn_install` package.

Keras is found with `importlib.util.find_spec("keras")`, so
`PYTHONPATH=/somewhere python FCN_setup.py install` patches `/somewhere/keras`.
Keras itself is never imported: a broken install cannot stop the uninstall.
"""

import sys

from fcn_install.command import install  # noqa: F401 (tests and callers use these)
from fcn_install.command import main
from fcn_install.command import status  # noqa: F401
from fcn_install.command import uninstall  # noqa: F401
from fcn_install.errors import SetupError  # noqa: F401
from fcn_install.exports import API_ROOTS  # noqa: F401
from fcn_install.exports import BLOCK_BEGIN  # noqa: F401
from fcn_install.exports import BLOCK_END  # noqa: F401
from fcn_install.exports import PUBLIC_API_FILE  # noqa: F401
from fcn_install.fileops import Transaction  # noqa: F401
from fcn_install.keras_tree import check_version  # noqa: F401
from fcn_install.keras_tree import find_keras  # noqa: F401
from fcn_install.keras_tree import keras_version  # noqa: F401
from fcn_install.manifest import BACKUP_DIR  # noqa: F401
from fcn_install.manifest import MANIFEST_NAME  # noqa: F401
from fcn_install.manifest import STATE_DIR  # noqa: F401
from fcn_install.manifest import read_manifest  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
