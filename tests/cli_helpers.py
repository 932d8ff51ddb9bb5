"""Running `python -m fcn_experiments` as a user does, in a subprocess, and
checking how it ends: the exit status, no traceback, one-line errors; small
tmpfs mounts for full and read-only disks; real scored photo folders."""

import contextlib
import csv
import os
import subprocess
import sys
import uuid

import numpy as np
from PIL import Image

from loader_test_images import photo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The exit statuses the command line documents (`cli.py`, docs/predict.md):
# 0 done, 1 the run or some images failed (one line says why), 2 usage error.
DOCUMENTED_STATUSES = (0, 1, 2)


def cli(*args, timeout=900, env=None, **popen):
    """`python -m fcn_experiments ARGS` to completion: a CompletedProcess
    with text stdout and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "fcn_experiments", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        **popen,
    )


def error_lines(stderr):
    """The `error: ...` lines of stderr (TensorFlow's log lines left out)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def check_ended_cleanly(proc, statuses=DOCUMENTED_STATUSES):
    """No traceback, a documented exit status and, on failure, exactly one
    `error:` line. Returns that line ('' on success)."""
    where = f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-6000:]}"
    assert "Traceback (most recent call last)" not in proc.stderr, where
    assert proc.returncode in statuses, f"exit status {proc.returncode}\n{where}"
    errors = error_lines(proc.stderr)
    if proc.returncode == 0:
        assert not errors, where
        return ""
    assert len(errors) == 1, where
    return errors[0]


def can_mount():
    """Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN)."""
    target = f"/tmp/fcn_mount_probe_{uuid.uuid4().hex[:8]}"
    os.makedirs(target)
    try:
        ok = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", target],
            capture_output=True,
        ).returncode == 0
        if ok:
            subprocess.run(["umount", target], check=True)
        return ok
    except OSError:
        return False
    finally:
        os.rmdir(target)


@contextlib.contextmanager
def tmpfs(path, size, read_only=False):
    """A tmpfs of `size` (mount's syntax: `3m`) mounted at `path`."""
    os.makedirs(path, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", path], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=False)


def remount(path, size):
    """Gives the tmpfs at `path` a new size (what freeing space does)."""
    subprocess.run(
        ["mount", "-o", f"remount,size={size}", path], check=True
    )


PHOTOS = ("rocket", "coffee", "chelsea_portrait", "astronaut", "motorcycle_wide")


def write_scored_split(directory, count, seed, bins=5):
    """`count` crops of real photos in `directory/img/`, with `scores.csv`
    (a score in 1..4 per image) and `distributions.csv` (5 bins peaked at
    the score). Returns the score rows `[(filename, score)]`."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(directory, "img"), exist_ok=True)
    rows = []
    for i in range(count):
        img = photo(PHOTOS[i % len(PHOTOS)])
        w, h = img.size
        left, top = int(rng.integers(0, w // 3)), int(rng.integers(0, h // 3))
        crop = img.crop((left, top, left + 2 * w // 3, top + 2 * h // 3))
        name = f"img/{i:03d}.png"
        crop.save(os.path.join(directory, name))
        rows.append((name, round(1.0 + 3.0 * i / max(count - 1, 1), 3)))
    with open(os.path.join(directory, "scores.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "score"])
        writer.writerows(rows)
    with open(os.path.join(directory, "distributions.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename"] + [f"p{k}" for k in range(1, bins + 1)])
        for name, score in rows:
            centre = (score - 1.0) / 3.0 * (bins - 1)
            weights = np.exp(-0.5 * (np.arange(bins) - centre) ** 2)
            writer.writerow([name, *np.round(100 * weights / weights.sum()).astype(int)])
    return rows


def write_class_split(directory, count, seed):
    """`count` crops of real photos in two class folders: `sharp` as they
    are, `blurred` downscaled 3x and back up."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        img = photo(PHOTOS[i % len(PHOTOS)])
        w, h = img.size
        left, top = int(rng.integers(0, w // 3)), int(rng.integers(0, h // 3))
        crop = img.crop((left, top, left + 2 * w // 3, top + 2 * h // 3))
        label = ("sharp", "blurred")[i % 2]
        if label == "blurred":
            small = crop.resize((max(crop.width // 3, 1), max(crop.height // 3, 1)))
            crop = small.resize(crop.size, Image.BICUBIC)
        folder = os.path.join(directory, label)
        os.makedirs(folder, exist_ok=True)
        crop.save(os.path.join(folder, f"{i:03d}.jpg"), quality=92)


def edit_table(path, edit):
    """Rewrites the CSV at `path` as `edit(rows)` (rows: lists, header first)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(edit(rows))
