"""Kills `FCN_setup.py install` / `uninstall` before each of their file
operations, on hard-linked copies of a real Keras tree, and checks recovery.

A file operation is an audit event that changes the file system: an `open`
for writing, `os.rename` (`os.replace`), `os.remove`, `os.mkdir`,
`os.rmdir`, `os.chmod`, `os.utime`, `shutil.rmtree`. Kill point n runs the
command in a forked child whose audit hook calls `os._exit` just before the
n-th such operation (so nothing of it, nor any `finally`, runs: as SIGKILL).
Then, at each point:
1. `import keras` (and the tf.keras twin packages we amend) must work, in a
   fresh child that imports Keras from the copy;
2. re-running a command finishes the job: even points re-run the killed
   command, odd points the other one (install after a killed uninstall, and
   the reverse), so both recoveries are exercised;
3. a final uninstall leaves the tree byte-identical to pristine, with no
   debris (every file, `.pyc` caches included, hashed).

The copies share inodes with two master trees (pristine, installed); the
installer only ever replaces files (temp file + `os.replace`), so the
masters stay intact, which the run checks at the end. The import check is
the costly step (about a second), so it runs once per distinct tree state:
two kill points that leave the same files (same paths, same bytes; temp
files, which no import can name, and the state folder aside) give the same
import.

usage: python tests/installer_killpoints.py [--every N] [--workers W]
Prints one JSON object: points tested per command, failures, wall and CPU
seconds (all processes; on a machine shared with other jobs, CPU seconds /
workers is what the run takes on its own).
"""

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import FCN_setup  # noqa: E402
from fcn_install.fileops import TMP_SUFFIX  # noqa: E402

KILLED = 77
COMPLETED = 3
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
MUTATING = {"os.rename", "os.remove", "os.mkdir", "os.rmdir", "os.chmod",
            "os.utime", "os.truncate", "os.link", "os.symlink", "shutil.rmtree",
            "shutil.move", "os.chown"}
IMPORT_CHECK = (
    "import keras, keras.applications, keras.utils, keras.preprocessing.image; "
    "import keras._tf_keras.keras.applications, keras._tf_keras.keras.utils, "
    "keras._tf_keras.keras.preprocessing.image"
)


def is_file_operation(event, args):
    if event == "open":
        mode, flags = args[1], args[2]
        if isinstance(mode, str):
            return any(c in mode for c in "wax+")
        return isinstance(flags, int) and bool(flags & WRITE_FLAGS)
    return event in MUTATING


def run_command(command, keras_dir):
    quiet = lambda line: None  # noqa: E731
    if command == "install":
        FCN_setup.install(keras_dir, say=quiet)
    else:
        FCN_setup.uninstall(keras_dir, say=quiet)


def run_killed(command, keras_dir, kill_at, count_file=None):
    """Runs `command` in a forked child killed before operation `kill_at`
    (never, if 0). Returns the child's exit code."""
    pid = os.fork()
    if pid == 0:
        count = 0

        def hook(event, args):
            nonlocal count
            if is_file_operation(event, args):
                count += 1
                if count == kill_at:
                    os._exit(KILLED)

        sys.addaudithook(hook)
        try:
            run_command(command, keras_dir)
        except BaseException:
            os._exit(2)
        if count_file:
            Path(count_file).write_text(str(count))
        os._exit(COMPLETED)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def link_copy(master, target):
    """A copy of the tree `master` whose files are hard links."""
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-al", str(master), str(target)], check=True)


def inodes(root):
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, root)] = os.lstat(path).st_ino
    return found


def file_hashes(root, skip_caches=False):
    found = {}
    for directory, dirs, names in os.walk(root):
        if skip_caches:
            dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return found


class Master:
    """A master tree, its inodes and hashes, for cheap comparisons."""

    def __init__(self, root):
        self.root = root
        self.inodes = inodes(root)
        self.hashes = file_hashes(root)

    def differences(self, root, skip_caches=False):
        """Paths whose content differs from the master's."""
        current = inodes(root)
        diff = set(self.inodes) ^ set(current)
        for rel, ino in current.items():
            if rel in self.inodes and ino != self.inodes[rel]:
                with open(os.path.join(root, rel), "rb") as f:
                    if hashlib.sha256(f.read()).hexdigest() != self.hashes[rel]:
                        diff.add(rel)
        if skip_caches:
            diff = {rel for rel in diff if "__pycache__" not in rel.split(os.sep)}
        return sorted(diff)

    def signature(self, root):
        """The tree's state relative to the master: what an import sees."""
        parts = []
        for rel in self.differences(root):
            path = os.path.join(root, rel)
            if rel.endswith(TMP_SUFFIX):
                continue  # a dot-file no import can name
            if rel.startswith(FCN_setup.STATE_DIR) or not os.path.exists(path):
                parts.append((rel, None))
                continue
            with open(path, "rb") as f:
                parts.append((rel, hashlib.sha256(f.read()).hexdigest()))
        return tuple(parts)


def import_works(site):
    """`import keras` from `site` in a fresh child of this (TF-loaded) process."""
    pid = os.fork()
    if pid == 0:
        sys.path.insert(0, str(site))
        try:
            exec(IMPORT_CHECK, {})
            import keras
            assert keras.__file__.startswith(str(site)), keras.__file__
        except BaseException:
            import traceback
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def check_point(command, n, masters, work, import_cache):
    """Kill point n of `command`: the list of what went wrong (empty if all held)."""
    start = masters["pristine"] if command == "install" else masters["installed"]
    site = work / f"{command}-{n}"
    keras_dir = site / "keras"
    link_copy(start.root, keras_dir)
    problems = []
    code = run_killed(command, keras_dir, n)
    if code != KILLED:
        return [f"the killed run exited {code}, not killed at operation {n}"]
    signature = masters["pristine"].signature(keras_dir)
    if signature not in import_cache:
        import_cache[signature] = import_works(site)
    if not import_cache[signature]:
        problems.append("import keras failed after the kill")
    other = "uninstall" if command == "install" else "install"
    try:
        first = command if n % 2 == 0 else other
        run_command(first, keras_dir)
        if first == "install":
            diff = masters["installed"].differences(keras_dir, skip_caches=True)
            if diff:
                problems.append(f"re-run install differs from a clean install: {diff[:5]}")
            if not FCN_setup.status(keras_dir, say=lambda line: None):
                problems.append("status is not intact after the re-run install")
            run_command("uninstall", keras_dir)
        diff = masters["pristine"].differences(keras_dir)
        if diff:
            problems.append(f"final uninstall is not pristine: {diff[:5]}")
    except FCN_setup.SetupError as e:
        problems.append(f"re-run failed: {e}")
    shutil.rmtree(site)
    return problems


def prepare(work):
    """The pristine and installed masters, and the operation count of each command."""
    pristine = work / "pristine" / "keras"
    shutil.copytree(FCN_setup.find_keras(), pristine, symlinks=True)
    FCN_setup.uninstall(pristine, say=lambda line: None)
    installed = work / "installed" / "keras"
    link_copy(pristine, installed)
    FCN_setup.install(installed, say=lambda line: None)
    counts = {}
    for command, master in [("install", pristine), ("uninstall", installed)]:
        probe = work / "probe" / "keras"
        link_copy(master, probe)
        count_file = work / "count"
        assert run_killed(command, probe, 0, count_file) == COMPLETED
        counts[command] = int(count_file.read_text())
        shutil.rmtree(probe.parent)
    return pristine, installed, counts


def worker(args):
    """Runs the given points; prints one JSON line per point."""
    import tensorflow  # noqa: F401  (loaded once; each import check forks)

    for name in [n for n in sys.modules if n == "keras" or n.startswith("keras.")]:
        del sys.modules[name]
    work = Path(args.work)
    masters = {"pristine": Master(work / "pristine" / "keras"),
               "installed": Master(work / "installed" / "keras")}
    cache = {}
    for item in args.points.split(","):
        command, n = item.split(":")
        problems = check_point(command, int(n), masters, work / "points", cache)
        print(json.dumps({"command": command, "point": int(n), "problems": problems}),
              flush=True)
        print(f"[killpoints] {command} {n}: {'ok' if not problems else problems}",
              file=sys.stderr, flush=True)
    print(json.dumps({"import_checks": len(cache)}), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, default=1,
                        help="test every N-th kill point (1: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--points", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fcn-killpoints-") as tmp:
        work = Path(tmp)
        pristine, installed, counts = prepare(work)
        before = {"pristine": file_hashes(pristine), "installed": file_hashes(installed)}
        # Deterministic sample: every N-th point, offset so that both parities
        # (and so both recoveries) come up, plus the first and the last.
        points = []
        for command, total in counts.items():
            chosen = set(range(1, total + 1, args.every)) | {1, 2, total}
            points += [(command, n) for n in sorted(chosen)]
        shares = [points[i::args.workers] for i in range(args.workers)]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--worker", "--work", str(work), "--points",
                 ",".join(f"{c}:{n}" for c, n in share)],
                stdout=subprocess.PIPE, text=True, env=env)
            for share in shares if share
        ]
        results, import_checks, crashed = [], 0, []
        for proc in procs:
            out, _ = proc.communicate()
            for line in out.splitlines():
                record = json.loads(line)
                if "import_checks" in record:
                    import_checks += record["import_checks"]
                else:
                    results.append(record)
            if proc.returncode:
                crashed.append(proc.returncode)
        masters_intact = (file_hashes(pristine) == before["pristine"]
                          and file_hashes(installed) == before["installed"])
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                  resource.RUSAGE_CHILDREN)]
    cpu = sum(u.ru_utime + u.ru_stime for u in usage)
    failures = [r for r in results if r["problems"]]
    tested = {c: sum(1 for r in results if r["command"] == c) for c in counts}
    summary = {
        "operations": counts,
        "points_tested": tested,
        "import_checks": import_checks,
        "failures": failures,
        "workers_crashed": crashed,
        "masters_intact": masters_intact,
        "seconds": round(time.monotonic() - started, 1),
        "cpu_seconds": round(cpu, 1),
    }
    print(json.dumps(summary))
    ok = (not failures and not crashed and masters_intact
          and sum(tested.values()) == len(points))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
