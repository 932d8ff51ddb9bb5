"""The bad-file scan of the FCN datasets, with its process-wide memory.

`check_files(paths, labels, on_bad_image)` checks every file of a dataset
before the dataset exists (`fcn_image_dataset`): a JPEG or PNG from its
structure without decoding it (`fcn_image_headers`), any other or unusual
file with PIL (`fcn_image_files` says what counts as bad). A bad file is
skipped with one warning naming it, or raises with `on_bad_image="raise"`.

Every file is read once per process: its verdict is remembered while the
file is unchanged (same size, modification time and PIL pixel limit), so
the train, validation and test datasets of every experiment, built from
one folder, read each file once in all. With many new files the check runs
in forked worker processes (it is Python, held by the GIL).
"""

import multiprocessing
import os
import warnings

import numpy as np

from keras.src.utils import fcn_image_files
from keras.src.utils import fcn_image_headers
from keras.src.utils import fcn_image_info

# The scan runs in this many forked processes at most, from this many new
# files on (below, the fork costs more than it saves).
MAX_SCAN_PROCESSES = 8
PROCESS_SCAN_MIN_FILES = 4096

# path -> ((size, mtime, pixel limit), ImageInfo or BadImageError) of the
# files this process has inspected.
_INSPECTED = {}


def check_files(paths, labels, on_bad_image):
    """Inspects every file; returns the good paths, their labels and infos.

    A bad file is skipped with a warning, or raises `BadImageError` (naming
    the first one) with `on_bad_image="raise"`.
    """
    # PIL warns about large images before we refuse them with our own message.
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", fcn_image_files.pil_image.DecompressionBombWarning
        )
        results = inspect_all(paths)
    bad = sorted(str(r) for r in results if isinstance(r, Exception))
    if bad and on_bad_image == "raise":
        more = f" (and {len(bad) - 1} more bad files)" if len(bad) > 1 else ""
        raise fcn_image_files.BadImageError(
            f"{bad[0]}{more}. Pass on_bad_image='skip' to leave bad files out."
        )
    for message in bad:
        warnings.warn(f"Skipped: {message}", stacklevel=3)
    keep = [i for i, r in enumerate(results) if not isinstance(r, Exception)]
    if labels is not None:
        labels = np.asarray(labels)[keep] if isinstance(labels, np.ndarray) else [
            labels[i] for i in keep
        ]
    return [paths[i] for i in keep], labels, [results[i] for i in keep]


def inspect_all(paths):
    """The `ImageInfo` or `BadImageError` of each path: remembered if the
    file is unchanged since this process inspected it, else inspected (in
    worker processes when there are many)."""
    results = [None] * len(paths)
    todo = []
    for i, path in enumerate(paths):
        known = _INSPECTED.get(path)
        if known is None:
            todo.append(i)
            continue
        key = _key(path)
        if key is not None and known[0] == key:
            results[i] = known[1]
        else:
            todo.append(i)
    for i, (key, result) in zip(todo, inspect_many([paths[i] for i in todo])):
        if key is not None:
            _INSPECTED[paths[i]] = (key, result)
        results[i] = result
    return results


def remembered(path):
    """The verdict (`ImageInfo` or `BadImageError`) this process remembers
    for `path`, whether or not the file changed since; None if none."""
    known = _INSPECTED.get(path)
    return None if known is None else known[1]


def forget_all():
    """Forgets every remembered verdict: the next scan reads every file."""
    _INSPECTED.clear()


def inspect_many(paths):
    """`inspect_keyed` of each path (nothing remembered), in forked
    processes from `PROCESS_SCAN_MIN_FILES` files on.

    The check is Python (struct parsing) holding the GIL: threads do not use
    a second core, processes do. Forked (as Keras' `PyDataset` workers are
    on Linux): they only read files and return tuples.
    """
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count() or 1)
    workers = min(cores, MAX_SCAN_PROCESSES)
    if (len(paths) < PROCESS_SCAN_MIN_FILES or workers < 2
            or "fork" not in multiprocessing.get_all_start_methods()):
        return [inspect_keyed(path) for path in paths]
    # A few chunks per worker, so that one slow chunk does not stall the end.
    size = max(1, -(-len(paths) // (4 * workers)))
    chunks = [paths[i: i + size] for i in range(0, len(paths), size)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        rows = pool.map(_inspect_chunk, chunks)
        pool.close()
        pool.join()  # Workers gone (and their CPU time accounted) on return.
    info = fcn_image_info.ImageInfo
    return [(key, info(*r) if isinstance(r, tuple) else r)
            for chunk in rows for key, r in chunk]


def inspect_keyed(path):
    """`(key, ImageInfo or BadImageError)` of a file: every read of a file
    by the scan goes through here. The file is read once for both (so a
    file changed meanwhile is inspected again next time); the key is None
    if the file cannot be read."""
    try:
        stat, info = fcn_image_headers.stat_and_read_header(path)
    except OSError:
        stat = info = None  # PIL says what is wrong.
    if info is None:
        # Not a plain JPEG or PNG, or a bad one: PIL's verdict.
        try:
            info = fcn_image_files.inspect_image_file_with_pil(path)
        except fcn_image_files.BadImageError as e:
            info = e
    return (None if stat is None else _stat_key(stat)), info


def _inspect_chunk(paths):
    """`inspect_keyed` of each path, `ImageInfo`s as plain tuples: they
    come back pickled, and a namedtuple costs 5 times as much to unpickle."""
    rows = [inspect_keyed(path) for path in paths]
    return [(key, tuple(r) if isinstance(r, tuple) else r) for key, r in rows]


def _key(path):
    """What must not change for a remembered verdict to hold; None if the
    file cannot be read."""
    try:
        return _stat_key(os.stat(path))
    except OSError:
        return None


def _stat_key(stat):
    return (stat.st_size, stat.st_mtime_ns,
            fcn_image_files.pil_image.MAX_IMAGE_PIXELS)
