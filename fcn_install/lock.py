"""One writer at a time per Keras tree.

Where `fcntl` exists (Linux, macOS) the lock is `fcntl.flock` on the Keras
directory itself: it needs no file (so an uninstall leaves no debris), it is
released when the process dies, and it stays valid while `uninstall` removes
the state folder.

Where `fcntl` is missing (Windows) it is the `filelock` package (a dependency
of the package on Windows) on `<keras>/.fcn_extensions.lock`. Windows cannot lock a
directory, so a file is needed; it sits beside the state folder, not in it,
because `uninstall` removes that folder while holding the lock. On Windows
`filelock` takes `LockFileEx` on it, which the OS releases when the process
dies, and deletes the file on release (delete-on-close; a run opening it
meanwhile retries). Every run of either command therefore leaves no lock
file behind; only a killed run does, and the next run removes it. The file
lives in the Keras tree, not in a per-user temp folder, so every process
writing this tree, whoever runs it, locks the same file. (Off Windows
without `fcntl`, which only tests/test_installer_windows.py simulates,
`filelock` falls back to its SoftFileLock, which a killed run does not
release.)

`status` never takes the lock.
"""

import contextlib
import os
import time

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from fcn_install.errors import SetupError

# Seconds a second run waits for the first; an install takes about one.
DEFAULT_LOCK_TIMEOUT = 60.0
POLL_SECONDS = 0.02
LOCK_FILE_NAME = ".fcn_extensions.lock"


@contextlib.contextmanager
def tree_lock(keras_dir, timeout=DEFAULT_LOCK_TIMEOUT, say=print):
    """Holds the write lock on `keras_dir`, waiting up to `timeout` seconds."""
    lock = _DirectoryLock(keras_dir) if fcntl is not None else _FileLock(keras_dir)
    try:
        deadline = time.monotonic() + timeout
        waiting = False
        while not lock.try_acquire():
            if time.monotonic() >= deadline:
                raise SetupError(
                    f"another FCN_setup.py run held the lock on Keras at "
                    f"{keras_dir} for over {timeout:g} s; nothing was "
                    "changed. Wait for it to end and retry, or pass a "
                    "longer --lock-timeout SECONDS"
                )
            if not waiting:
                say(f"  waiting up to {timeout:g} s for another FCN_setup.py "
                    "run on this Keras to finish")
                waiting = True
            time.sleep(POLL_SECONDS)
        yield
    finally:
        lock.release()


class _DirectoryLock:
    """`flock` on the directory's own descriptor (POSIX)."""

    def __init__(self, keras_dir):
        self.fd = os.open(keras_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))

    def try_acquire(self):
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self):
        os.close(self.fd)  # releases the lock


class _FileLock:
    """`filelock.FileLock` on `<keras>/.fcn_extensions.lock` (Windows)."""

    def __init__(self, keras_dir):
        try:
            import filelock
        except ImportError:
            raise SetupError(
                "this Python has no fcntl (Windows), so FCN_setup.py locks Keras "
                "with the filelock package, which is not installed; nothing was "
                "changed. Install it: pip install filelock"
            ) from None
        self.timeout_error = filelock.Timeout
        self.path = os.path.join(keras_dir, LOCK_FILE_NAME)
        self.lock = filelock.FileLock(self.path)

    def try_acquire(self):
        try:
            self.lock.acquire(blocking=False)
        except self.timeout_error:
            return False
        except OSError as e:
            raise SetupError(
                f"cannot create the lock file {self.path} ({e}); nothing was "
                "changed. Use a virtual environment you own, or run with the "
                "rights of the Keras tree's owner (an administrator prompt)"
            ) from None
        return True

    def release(self):
        if self.lock.is_locked:
            self.lock.release()
