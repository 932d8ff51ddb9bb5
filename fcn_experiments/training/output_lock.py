"""One run at a time per output folder: `<output_dir>/.fcn_run.lock`.

Two runs writing one folder would overwrite each other's checkpoints (h5py
refuses with `BlockingIOError` part-way). The second run stops at once
instead, naming the first.

The lock file holds the owner's pid, host and start time, for the message.
Where `fcntl` exists (Linux, macOS) the lock is `flock` on that file: the
OS releases it when the process dies, so the lock of a killed run is stale
by construction and the next run takes it over. Elsewhere (Windows) the
file is created exclusively, and a file whose pid no longer runs on this
host is taken over.
"""

import contextlib
import datetime
import json
import os
import socket

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_FILE = ".fcn_run.lock"


class OutputInUseError(RuntimeError):
    """Another run is writing to the output folder."""


def _owner_line(path):
    """'pid N on HOST, started T' from the lock file, or a neutral phrase."""
    try:
        with open(path) as f:
            owner = json.load(f)
        return (
            f"pid {owner['pid']} on {owner['host']}, started "
            f"{owner['started']}"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "owner unknown"


def _in_use_error(output_dir, path):
    return OutputInUseError(
        f"another run ({_owner_line(path)}) is writing to {output_dir}. Wait "
        "for it to finish, or pass another --output-dir (output_dir=); if "
        f"that run no longer exists, remove {path}."
    )


def _record():
    return json.dumps({
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    })


def _pid_running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


@contextlib.contextmanager
def output_lock(output_dir):
    """Holds the lock of `output_dir` (which must exist) for the block.

    Raises:
        OutputInUseError: another living run holds it.
    """
    path = os.path.join(output_dir, LOCK_FILE)
    if fcntl is not None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise _in_use_error(output_dir, path) from None
            os.ftruncate(fd, 0)
            os.write(fd, _record().encode())
            yield
        finally:
            os.close(fd)  # Releases the lock; the file stays, unlocked.
        return
    yield from _exclusive_file(output_dir, path)


def _exclusive_file(output_dir, path):
    """The lock without `fcntl`: an exclusively created file."""
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            try:
                with open(path) as f:
                    owner = json.load(f)
                stale = owner["host"] == socket.gethostname() and not (
                    _pid_running(int(owner["pid"]))
                )
            except (OSError, ValueError, KeyError, TypeError):
                stale = False
            if not stale:
                raise _in_use_error(output_dir, path) from None
            os.remove(path)  # A killed run's: taken over.
    else:
        raise _in_use_error(output_dir, path)
    try:
        os.write(fd, _record().encode())
        os.close(fd)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)
