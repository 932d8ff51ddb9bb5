"""Atomic, fsynced file changes that can be rolled back.

Each write goes to `.<name>.fcn-tmp` beside its target, is fsynced, then
`os.replace`d over the target, and the directory is fsynced, so after a
crash a file is either old or new, and changes land in the order made. The
temp name is fixed, so a leftover from a killed run is known and removed.

On Windows (no `os.O_DIRECTORY`) a directory cannot be opened, so it is not
fsynced: NTFS journals the rename itself. Where `os.fchmod` or `os.utime` on
a descriptor is missing (Windows), mode and time are set by path on the
closed temp file, still before the replace. Files are opened in binary mode
(`os.O_BINARY`, Windows only), so no line ending is ever translated.
"""

import os
import stat
from pathlib import Path

from fcn_install.errors import SetupError

TMP_SUFFIX = ".fcn-tmp"


def tmp_path(path):
    return path.with_name(f".{path.name}{TMP_SUFFIX}")


# Flags that exist on one OS only; 0 where missing.
_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def fsync_dir(directory):
    if not hasattr(os, "O_DIRECTORY"):
        return  # Windows: no directory handle to fsync.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def default_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path, data, mode=None, mtime_ns=None):
    """Replaces `path` by `data` in one step; keeps its mode if it exists."""
    if mode is None:
        try:
            mode = stat.S_IMODE(os.lstat(path).st_mode)
        except FileNotFoundError:
            mode = default_mode()
    tmp = tmp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _OPEN_FLAGS, 0o600)
    by_fd = hasattr(os, "fchmod") and os.utime in os.supports_fd
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if by_fd:
                os.fchmod(f.fileno(), mode)
                if mtime_ns is not None:
                    os.utime(f.fileno(), ns=(mtime_ns, mtime_ns))
            os.fsync(f.fileno())
        if not by_fd:
            os.chmod(tmp, mode)
            if mtime_ns is not None:
                os.utime(tmp, ns=(mtime_ns, mtime_ns))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def remove_file(path):
    path.unlink()
    fsync_dir(path.parent)


def remove_tmp_debris(path):
    """Removes what a killed write of `path` left: `.<name>*.fcn-tmp`
    (the random-suffixed names of older versions included)."""
    removed = []
    directory = path.parent
    if directory.is_symlink() or not directory.is_dir():
        return removed
    for leftover in directory.glob(f".{path.name}*{TMP_SUFFIX}"):
        if leftover.is_symlink() or leftover.is_file():
            leftover.unlink()
            removed.append(leftover)
    return removed


class Transaction:
    """Writes and removals, undone in reverse order if the run fails."""

    def __init__(self):
        self.undo = []

    def _remember(self, path):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self.undo.append((path, None, None, None))
            return
        self.undo.append((path, path.read_bytes(), stat.S_IMODE(st.st_mode),
                          st.st_mtime_ns))

    def write(self, path, data, mtime_ns=None):
        self.makedirs(path.parent)
        self._remember(path)
        atomic_write(path, data, mtime_ns=mtime_ns)

    def remove(self, path):
        if os.path.lexists(path):
            self._remember(path)
            remove_file(path)

    def rmdir(self, path):
        path.rmdir()
        fsync_dir(path.parent)
        self.undo.append((path, "rmdir", None, None))

    def makedirs(self, directory):
        missing = []
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for d in reversed(missing):
            d.mkdir()
            fsync_dir(d.parent)
            self.undo.append((d, "mkdir", None, None))

    def rollback(self):
        """Undoes every change it can, newest first, and returns how many it
        could not. A directory it made goes only when empty, so nothing
        someone else put there is lost; a file it cannot put back (no space
        for the temp file) is left whole, as the manifest knows it, never
        half-written in place."""
        failed = 0
        for path, data, mode, mtime_ns in reversed(self.undo):
            try:
                if data == "mkdir":
                    if path.exists():
                        path.rmdir()
                elif data == "rmdir":
                    path.mkdir()
                elif data is None:
                    Path(path).unlink(missing_ok=True)
                else:
                    atomic_write(path, data, mode, mtime_ns)
            except OSError:
                failed += 1
        self.undo.clear()
        return failed


def rollback_message(command, error, failed):
    """The one line for a run that failed and was rolled back."""
    if not failed:
        return f"{command} failed ({error}); every change was rolled back"
    return (f"{command} failed ({error}) and {failed} change(s) could not be "
            f"rolled back; every file is whole and recorded, so run "
            f"`python FCN_setup.py {command}` again once the cause is fixed")


def apply_or_roll_back(command, apply):
    """Calls `apply(txn)` with a new `Transaction`; if it raises, rolls the
    transaction back and raises a `SetupError` naming `command` and what
    could not be undone (a `SetupError` or Ctrl-C passes through as is)."""
    txn = Transaction()
    try:
        apply(txn)
    except BaseException as e:
        failed = txn.rollback()
        if isinstance(e, (KeyboardInterrupt, SetupError)):
            raise
        raise SetupError(rollback_message(command, e, failed))
