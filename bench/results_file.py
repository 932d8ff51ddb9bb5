"""A bench's measurements as a results file: one CSV row per table row.

Each bench script that has a table in BENCHMARKS.md takes `--out PATH` and
writes its figures here, every row with where and when it was measured:

- `date`: UTC date and time of the run;
- `machine`: CPU model, core count, the CPU flags that decide the fast
  paths (`avx2`, `avx512f`, `avx512_bf16`, `amx_bf16`, ...), memory, GPU;
- `load`: the load average at the start and the end (other processes on a
  shared machine slow the wall-clock figures);
- `command`: the command line that measured it;
- `source`: `measured by bench/<script>.py`, or, for figures copied from an
  older BENCHMARKS.md, where they were transcribed from.

`bench/tables.py` reads them back (`read_results_file`), and
`bench/report.py` renders the tables from them (`bench/blocks.py` holds each
table's columns).
"""

import csv
import datetime
import os
import platform
import shlex
import sys

PROVENANCE = ("date", "machine", "load", "command", "source")
# The flags that decide TensorFlow's fast CPU paths (and `auto` precision).
FLAGS_OF_NOTE = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
)


def _cpuinfo():
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:  # macOS, Windows: no /proc.
        return None, set()
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model, flags


def _memory_gib():
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return pages / 2**30


def machine_summary():
    """One line: CPU model, cores, flags of note, memory, GPU."""
    model, flags = _cpuinfo()
    parts = [
        f"{model or platform.processor() or platform.machine()}",
        f"{os.cpu_count()} cores",
    ]
    if flags:
        noted = [f for f in FLAGS_OF_NOTE if f in flags]
        parts.append("flags " + (" ".join(noted) if noted else "none of note"))
        if "amx_bf16" not in flags:
            parts.append("no AMX")
    else:
        parts.append("CPU flags unknown")
    memory = _memory_gib()
    if memory:
        parts.append(f"{memory:.0f} GiB")
    parts.append("NVIDIA GPU" if os.path.exists("/dev/nvidia0") else "no GPU")
    return ", ".join(parts)


def load_average():
    """The 1-minute load average, or `None` where the OS has none."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


class Provenance:
    """Started when a bench starts: its date, machine, load and command."""

    def __init__(self, script):
        self.script = script
        self.date = datetime.datetime.now(datetime.timezone.utc)
        self.load_before = load_average()
        self.command = "python " + " ".join(
            [os.path.relpath(sys.argv[0])] + [shlex.quote(a) for a in sys.argv[1:]]
        )

    def columns(self):
        load_after = load_average()
        load = (
            "unknown"
            if self.load_before is None
            else f"{self.load_before:.1f}-{load_after:.1f}"
        )
        return {
            "date": self.date.strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine_summary(),
            "load": load,
            "command": self.command,
            "source": f"measured by bench/{self.script}",
        }


def write_results(path, rows, provenance):
    """Writes `rows` (dicts of figures) with the provenance columns to a CSV
    at `path`, replacing it. Floats are written in full; the tables round."""
    if not rows:
        raise ValueError(
            f"No rows to write to {path}: the bench measured nothing. "
            "Check its arguments."
        )
    names = []
    for row in rows:
        names += [k for k in row if k not in names and k not in PROVENANCE]
    extra = provenance.columns()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, names + list(PROVENANCE), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**{k: row.get(k, "") for k in names}, **extra})
    print(f"wrote {len(rows)} rows to {path}")


def add_out_argument(parser):
    parser.add_argument(
        "--out",
        metavar="CSV",
        help="also write the table's figures to this results file "
        "(e.g. docs/results/<name>.csv; bench/report.py renders it)",
    )
