"""Command line of the installer: `fcn-setup` and `python FCN_setup.py`.

usage: PROG install [--dry-run] [--quiet] [--force] [--lock-timeout S]
       PROG uninstall [--dry-run] [--quiet] [--force] [--lock-timeout S]
       PROG status
"""

import argparse
import os
import sys

from fcn_install import sources
from fcn_install.errors import SetupError
from fcn_install.install import install as install_extensions
from fcn_install.keras_tree import find_keras
from fcn_install.lock import DEFAULT_LOCK_TIMEOUT
from fcn_install.status import status as report_status
from fcn_install.uninstall import uninstall as uninstall_extensions


def install(keras_dir, extensions_dir=None, *, dry_run=False, force=False,
            say=print, lock_timeout=DEFAULT_LOCK_TIMEOUT):
    """Installs or updates the extensions. Returns the list of changes."""
    return install_extensions(keras_dir, extensions_dir or sources.extensions_dir(),
                              dry_run=dry_run, force=force, say=say,
                              lock_timeout=lock_timeout)


def uninstall(keras_dir, *, dry_run=False, force=False, say=print,
              lock_timeout=DEFAULT_LOCK_TIMEOUT):
    """Restores Keras. Returns the files left in place because they changed."""
    return uninstall_extensions(keras_dir, dry_run=dry_run, force=force,
                                say=say, lock_timeout=lock_timeout)


def status(keras_dir, extensions_dir=None, *, say=print):
    """Reports install state and drift. Returns True when all is consistent."""
    return report_status(keras_dir, extensions_dir or sources.extensions_dir(), say=say)


def main(argv=None, prog=None):
    """`install | uninstall | status`; returns the exit status."""
    prog = prog or os.path.basename(sys.argv[0] or "fcn-setup")
    # `python FCN_setup.py install`, `fcn-setup install`: as the user typed it.
    typed = f"python {prog}" if prog.endswith(".py") else prog
    usage = __doc__.split("\n\n")[1].removeprefix("usage: ").replace("PROG", typed)
    parser = argparse.ArgumentParser(prog=prog, usage=usage, add_help=True)
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
        print(f"{parser.prog}: error: a command is required", file=sys.stderr)
        return 2
    if args.lock_timeout < 0:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: --lock-timeout must be >= 0. "
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


def console_main():
    """Entry point of the `fcn-setup` console script."""
    sys.exit(main())
