"""The documentation speaks of the product: no words from how it was made,
and every repository file it names exists.

Covers README.md, BENCHMARKS.md, docs/ (the results files the generated
tables are rendered from included) and .ci/.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Words that mean nothing to a reader of the product's documentation.
PROCESS_WORDS = (
    r"\bstop \d+",
    r"\bissues? #?\d+",
    r"(?<![\w&])#\d{2,}\b",  # "#18"; "#1" to "#9" are the nine experiments
    r"\bhelpers?\b",
    r"\bsessions?\b",
    r"\bthe lead\b",
    r"\bwaves?\b|\bwave-\d",
    r"\bthe seed's\b",
)
PROCESS = re.compile("|".join(PROCESS_WORDS), re.IGNORECASE)
TOP_LEVEL = {p.name for p in ROOT.iterdir() if not p.name.startswith((".git", ".venv"))}
TOP_LEVEL.add(".ci")
# What the product writes (results.md, SPLIT.md, ...) is named, not shipped.
PRODUCT_SOURCE = "".join(p.read_text(encoding="utf-8")
                         for p in sorted((ROOT / "fcn_experiments").rglob("*.py")))


def documentation_files():
    files = [ROOT / "README.md", ROOT / "BENCHMARKS.md"]
    for folder in (ROOT / "docs", ROOT / ".ci"):
        files += sorted(p for p in folder.rglob("*") if p.is_file()
                        and p.suffix in {".md", ".csv", ".json", ".sh", ""})
    return files


FILES = documentation_files()


def _ids(path):
    return path.relative_to(ROOT).as_posix()


def named_files(text):
    """Repository paths a text names: markdown link targets and backticked
    paths under a top-level folder of the repository or ending in .md."""
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:|#", target):
            yield "link", target.split("#", 1)[0]
    for token in re.findall(r"`([^`\s]+)`", text):
        token = token.split("::", 1)[0].rstrip(".,;:")
        if re.search(r"[<>*{}$~]|\.\.\.", token) or token.startswith(("/", "-")):
            continue
        # Placeholders: `extensions/keras/X`, `snapshots/DIR`.
        if any(re.fullmatch(r"[A-Z]{1,4}", part) for part in token.split("/")):
            continue
        if f'"{token}"' in PRODUCT_SOURCE:
            continue
        first = token.split("/", 1)[0]
        if ("/" in token and first in TOP_LEVEL) or re.fullmatch(r"[\w.-]+\.md", token):
            yield "path", token


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_no_process_words(path):
    found = [
        f"line {n}: {match.group(0)!r} in {line.strip()[:120]!r}"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for match in PROCESS.finditer(line)
    ]
    assert not found, f"{_ids(path)} speaks of how it was made: {found}"


@pytest.mark.parametrize("path", [p for p in FILES if p.suffix == ".md"], ids=_ids)
def test_named_files_exist(path):
    missing = []
    for kind, name in named_files(path.read_text(encoding="utf-8")):
        candidates = [path.parent / name]
        if kind == "path":
            candidates += [ROOT / name, ROOT / "docs" / name]
        if not any(c.exists() for c in candidates):
            missing.append(name)
    assert not missing, f"{_ids(path)} names files that do not exist: {missing}"


def test_the_checks_catch_what_they_are_for():
    for text in ("fixed at stop 21", "see issue 20", "as in #18", "the helpers ran",
                 "this session", "the lead runs", "wave-1 data", "the seed's dataset"):
        assert PROCESS.search(text), text
    for text in ("#1 and #9", "experiment #3's model", "a seed of 3", "seeds 1, 2, 3"):
        assert not PROCESS.search(text), text
    named = dict((n, k) for k, n in named_files(
        "`DESIGN.md`, [x](docs/nothing.md), `docs/backends.md`, `snapshots/exp5`, "
        "`<keras>/src/x.py`, `results.csv`, `results.md`, `extensions/keras/X`"))
    assert named == {"DESIGN.md": "path", "docs/nothing.md": "link",
                     "docs/backends.md": "path"}
