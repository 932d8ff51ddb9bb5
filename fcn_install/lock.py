"""One writer at a time per Keras tree.

The lock is `fcntl.flock` on the Keras directory itself: it needs no file
(so an uninstall leaves no debris), it is released when the process dies,
and it stays valid while `uninstall` removes the state folder. `status`
never takes it.
"""

import contextlib
import fcntl
import os
import time

from fcn_install.errors import SetupError

# Seconds a second run waits for the first; an install takes about one.
DEFAULT_LOCK_TIMEOUT = 60.0
POLL_SECONDS = 0.02


@contextlib.contextmanager
def tree_lock(keras_dir, timeout=DEFAULT_LOCK_TIMEOUT, say=print):
    """Holds the write lock on `keras_dir`, waiting up to `timeout` seconds."""
    fd = os.open(keras_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + timeout
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SetupError(
                        f"another FCN_setup.py run held the lock on Keras at "
                        f"{keras_dir} for over {timeout:g} s; nothing was "
                        "changed. Wait for it to end and retry, or pass a "
                        "longer --lock-timeout SECONDS"
                    ) from None
                if not waiting:
                    say(f"  waiting up to {timeout:g} s for another FCN_setup.py "
                        "run on this Keras to finish")
                    waiting = True
                time.sleep(POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # releases the lock
