"""Install the FCN extensions into the Keras package this interpreter imports.

usage: python FCN_setup.py install [--dry-run] [--quiet] [--force] [--lock-timeout S]
       python FCN_setup.py uninstall [--dry-run] [--quiet] [--force] [--lock-timeout S]
       python FCN_setup.py status

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
live in the `fcn_install` package beside this file.

Keras is found with `importlib.util.find_spec("keras")`, so
`PYTHONPATH=/somewhere python FCN_setup.py install` patches `/somewhere/keras`.
Keras itself is never imported: a broken install cannot stop the uninstall.
"""

import argparse
import sys
from pathlib import Path

from fcn_install.errors import SetupError
from fcn_install.exports import API_ROOTS  # noqa: F401 (tests and callers use these)
from fcn_install.exports import BLOCK_BEGIN  # noqa: F401
from fcn_install.exports import BLOCK_END  # noqa: F401
from fcn_install.exports import PUBLIC_API_FILE  # noqa: F401
from fcn_install.fileops import Transaction  # noqa: F401
from fcn_install.install import install as install_extensions
from fcn_install.keras_tree import check_version  # noqa: F401
from fcn_install.keras_tree import find_keras
from fcn_install.keras_tree import keras_version  # noqa: F401
from fcn_install.lock import DEFAULT_LOCK_TIMEOUT
from fcn_install.manifest import BACKUP_DIR  # noqa: F401
from fcn_install.manifest import MANIFEST_NAME  # noqa: F401
from fcn_install.manifest import STATE_DIR  # noqa: F401
from fcn_install.manifest import read_manifest  # noqa: F401
from fcn_install.status import status as report_status
from fcn_install.uninstall import uninstall as uninstall_extensions

ROOT = Path(__file__).resolve().parent
EXTENSIONS_DIR = ROOT / "extensions"

USAGE = __doc__.split("\n\n")[1].removeprefix("usage: ")


def install(keras_dir, extensions_dir=EXTENSIONS_DIR, *, dry_run=False,
            force=False, say=print, lock_timeout=DEFAULT_LOCK_TIMEOUT):
    """Installs or updates the extensions. Returns the list of changes."""
    return install_extensions(keras_dir, extensions_dir, dry_run=dry_run,
                              force=force, say=say, lock_timeout=lock_timeout)


def uninstall(keras_dir, *, dry_run=False, force=False, say=print,
              lock_timeout=DEFAULT_LOCK_TIMEOUT):
    """Restores Keras. Returns the files left in place because they changed."""
    return uninstall_extensions(keras_dir, dry_run=dry_run, force=force,
                                say=say, lock_timeout=lock_timeout)


def status(keras_dir, extensions_dir=EXTENSIONS_DIR, *, say=print):
    """Reports install state and drift. Returns True when all is consistent."""
    return report_status(keras_dir, extensions_dir, say=say)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="FCN_setup.py", usage=USAGE, add_help=True)
    parser.add_argument("command", nargs="?", choices=["install", "uninstall", "status"])
    parser.add_argument("--dry-run", action="store_true", help="print the plan only")
    parser.add_argument("--quiet", action="store_true", help="print the summary only")
    parser.add_argument("--force", action="store_true",
                        help="replace, restore or remove files changed since the "
                             "install instead of refusing")
    parser.add_argument("--lock-timeout", type=float, default=DEFAULT_LOCK_TIMEOUT,
                        metavar="S", help="seconds to wait for another run on the "
                        f"same Keras (default {DEFAULT_LOCK_TIMEOUT:g})")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("FCN_setup.py: error: a command is required", file=sys.stderr)
        return 2
    if args.lock_timeout < 0:
        parser.print_usage(sys.stderr)
        print(f"FCN_setup.py: error: --lock-timeout must be >= 0. "
              f"Received: --lock-timeout={args.lock_timeout:g}", file=sys.stderr)
        return 2
    def quiet_say(line):
        if not line.startswith(("  ", "Keras ")):
            print(line)
    say = quiet_say if args.quiet else print
    options = dict(dry_run=args.dry_run, force=args.force, say=say,
                   lock_timeout=args.lock_timeout)
    try:
        keras_dir = find_keras()
        if args.command == "install":
            install(keras_dir, **options)
        elif args.command == "uninstall":
            uninstall(keras_dir, **options)
        else:
            return 0 if status(keras_dir, say=say) else 1
    except SetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
