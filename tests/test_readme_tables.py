"""The README and BENCHMARKS tables are rendered from committed results, the
README stays a guide, and the documentation's links lead somewhere.

`bench/report.py` renders every generated block; these tests fail when a
block in README.md or BENCHMARKS.md differs from its rendering (run
`python bench/report.py --write` after committing new results).
"""

import os
import re
import shutil

import pytest

from bench import report

ROOT = report.ROOT
DEMO_BLOCKS = {
    "README.md": ("demo-table",),
    "BENCHMARKS.md": ("demo-table", "demo-single-run", "demo-pairwise"),
}
README_MAX_LINES = 250


def _read(name):
    with open(os.path.join(ROOT, name)) as f:
        return f.read()


@pytest.mark.parametrize(
    "file_name, block",
    [(f, b) for f, blocks in DEMO_BLOCKS.items() for b in blocks],
)
def test_demo_blocks_equal_their_rendering(file_name, block):
    rendered = report.renderers()[file_name][block]()
    written = report.block_text(_read(file_name), block)
    assert written is not None, f"{file_name} lacks the block {block!r}"
    assert written == rendered, (
        f"{file_name}'s {block!r} differs from docs/results/: run "
        "`python bench/report.py --write`"
    )


def test_model_table_equals_the_code():
    rendered = report.model_table()
    assert report.block_text(_read("README.md"), "model-table") == rendered
    # Read from the models, not from a list: VGG16's 138.4 M parameters.
    assert "| `VGG16_fcn` | 224 | 32 | 32 | `block2_pool` | 138.4 M | 528 MiB |" in rendered


def test_the_demo_table_comes_from_every_committed_seed():
    seeds = report.read_demo_seeds()
    table = report.block_text(_read("README.md"), "demo-table")
    for seed, rows in seeds.items():
        for row in rows.values():
            assert f"{float(row['test_accuracy']):.3f}" in table
    assert report.read_run_info()["date"] in table


def test_rendered_p_values_agree_with_the_framework():
    # The framework wrote its own McNemar p vs #1 into results.csv; the
    # report recomputes it from the committed test_predictions.csv files.
    seeds = report.read_demo_seeds()
    seed = min(seeds)
    rows = seeds[seed]
    run_dir = os.path.join(report.DEMO_DIR, f"seed{seed}")
    reference = report.read_predictions(run_dir, rows[1])
    assert reference is not None, "commit seed 1's test_predictions.csv files"
    for k, row in rows.items():
        if k == 1:
            continue
        mine = report.read_predictions(run_dir, row)
        assert report.mcnemar_p(reference, mine) == pytest.approx(
            float(row["mcnemar_p_vs_1"]), rel=1e-9
        )


def test_check_detects_an_edited_readme(tmp_path, capsys):
    for name in ("README.md", "BENCHMARKS.md"):
        shutil.copy(os.path.join(ROOT, name), tmp_path / name)
    args = ["--check", "--root", str(tmp_path), "--block", "demo-table"]
    assert report.main(args) == 0

    text = (tmp_path / "README.md").read_text()
    block = report.block_text(text, "demo-table")
    first_figure = re.search(r"\| (0\.\d{3}) \|", block)
    edited_figure = "0.999" if first_figure.group(1) != "0.999" else "0.998"
    edited = block.replace(first_figure.group(0), f"| {edited_figure} |", 1)
    (tmp_path / "README.md").write_text(text.replace(block, edited))
    assert report.main(args) == 1
    assert edited_figure in capsys.readouterr().out

    assert report.main(["--write", "--root", str(tmp_path), "--block", "demo-table"]) == 0
    assert (tmp_path / "README.md").read_text() == text


def test_import_run_copies_results_and_relative_predictions(tmp_path):
    run = tmp_path / "run"
    (run / "exp1_original").mkdir(parents=True)
    (run / "results.csv").write_text(
        "experiment,name,test_accuracy\n1,original,0.5\n"
    )
    image = run / "data" / "test" / "a" / "x.png"
    (run / "exp1_original" / "test_predictions.csv").write_text(
        f"path,true_class,predicted_class\n{image},a,a\n"
    )
    demo = tmp_path / "demo"
    with pytest.raises(ValueError, match="finished"):
        report.import_run(str(tmp_path / "nowhere"), 2, str(demo))
    report.import_run(str(run), 2, str(demo), predictions=True)
    assert (demo / "seed2" / "results.csv").read_text() == (
        run / "results.csv"
    ).read_text()
    assert (demo / "seed2" / "exp1_original" / "test_predictions.csv").read_text() == (
        "path,true_class,predicted_class\ndata/test/a/x.png,a,a\n"
    )


def test_a_missing_block_is_named():
    with pytest.raises(ValueError, match="demo-table"):
        report.replace_block("no markers here", "demo-table", "x")


def _row(k, accuracy, n=410):
    return {
        "experiment": str(k),
        "name": f"e{k}",
        "title": f"experiment {k}",
        "input_size": "48",
        "resize_mode": "multicrop" if k == 2 else "native",
        "test_accuracy": str(accuracy),
        "test_images": str(n),
    }


INFO = {"date": "2026-12-03", "machine": "a test", "commit": "0" * 40, "command": "x"}


def test_several_seeds_give_the_mean_and_its_t_interval():
    seeds = {1: {1: _row(1, 0.6)}, 2: {1: _row(1, 0.7)}, 3: {1: _row(1, 0.8)}}
    table = report.demo_table(seeds, INFO)
    # t(0.975, 2 df) = 4.303; sd 0.1: 0.7 +- 4.303 * 0.1 / sqrt(3) = 0.248.
    row = "| 1 | experiment 1 | 48 px, native | 0.600 | 0.700 | 0.800 | **0.700** |"
    assert f"{row} 0.45-0.95 |" in table
    assert "t, n=3" in table and "2026-12-03" in table and "a test" in table


def test_one_seed_gives_the_wilson_interval():
    table = report.demo_table({1: {1: _row(1, 0.5, 100), 2: _row(2, 1.0, 100)}}, INFO)
    # Wilson 95% for 50/100: 0.404-0.596; for 100/100: 0.963-1.000.
    assert "| 1 | experiment 1 | 48 px, native | 0.500 | 0.404-0.596 |" in table
    assert "| 2 | experiment 2 | 3 x 48 px, multicrop | 1.000 | 0.963-1.000 |" in table


def test_seeds_with_different_settings_are_refused():
    other = dict(_row(1, 0.7), input_size="64")
    with pytest.raises(ValueError, match="same settings"):
        report.demo_table({1: {1: _row(1, 0.6)}, 2: {1: other}}, INFO)


def test_readme_is_a_guide_not_a_log():
    lines = _read("README.md").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; move details to docs/"
    )


def _documentation_files():
    names = ["README.md", "BENCHMARKS.md"]
    docs = os.path.join(ROOT, "docs")
    for folder, _, files in os.walk(docs):
        names += [
            os.path.relpath(os.path.join(folder, f), ROOT)
            for f in sorted(files)
            if f.endswith(".md")
        ]
    return names


def _relative_links(text):
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # Code blocks.
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        yield target.split("#", 1)[0]


@pytest.mark.parametrize("name", _documentation_files())
def test_relative_links_lead_to_files(name):
    base = os.path.dirname(os.path.join(ROOT, name))
    broken = [
        target
        for target in _relative_links(_read(name))
        if not os.path.exists(os.path.normpath(os.path.join(base, target)))
    ]
    assert broken == [], f"{name} links to missing files: {broken}"


def test_the_link_check_finds_links():
    links = list(_relative_links(_read("README.md")))
    assert "docs/installer.md" in links and "LICENSE" in links
