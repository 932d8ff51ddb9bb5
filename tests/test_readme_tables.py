"""The README and BENCHMARKS tables are rendered from committed results, the
README stays a guide, and the documentation's links lead somewhere.

`bench/report.py` renders every generated block; these tests fail when a
block in README.md or BENCHMARKS.md differs from its rendering (run
`python bench/report.py --write` after committing new results).
"""

import csv
import os
import re
import shutil
import subprocess
import sys

import pytest

from bench import blocks
from bench import report
from bench import results_file
from bench import tables

ROOT = report.ROOT
# Every generated block but the model table (built from the models: slow,
# tested on its own below).
BLOCKS = [
    (file_name, block)
    for file_name, blocks in report.renderers().items()
    for block in blocks
    if block != "model-table"
]
README_MAX_LINES = 250


def _read(name):
    with open(os.path.join(ROOT, name)) as f:
        return f.read()


def test_the_generated_blocks_cover_the_bench_tables():
    names = {block for _, block in BLOCKS}
    assert {"demo-table", "demo-bf16", "matmul-peak", "mixed-precision-demo",
            "fcn-native-speed", "dataset-scale"} <= names
    assert len(names) > 20


@pytest.mark.parametrize("file_name, block", BLOCKS)
def test_blocks_equal_their_rendering(file_name, block):
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
    assert report.read_run_info(report.DEMO_DIR)["date"] in table


def test_rendered_p_values_agree_with_the_framework():
    # The framework wrote its own McNemar p vs #1 into results.csv; the
    # report recomputes it from the committed test_predictions.csv files.
    seeds = report.read_demo_seeds()
    seed = min(seeds)
    rows = seeds[seed]
    run_dir = os.path.join(report.DEMO_DIR, f"seed{seed}")
    reference = tables.read_predictions(run_dir, rows[1])
    assert reference is not None, "commit seed 1's test_predictions.csv files"
    for k, row in rows.items():
        if k == 1:
            continue
        mine = tables.read_predictions(run_dir, row)
        assert blocks.mcnemar_p(reference, mine) == pytest.approx(
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


# ------------------------------------------------------------------ bench tables


def _outside_blocks(text):
    return re.sub(
        r"<!-- begin: (\S+) -->\n.*?<!-- end: \1 -->", "", text, flags=re.DOTALL
    )


def test_benchmarks_has_no_table_outside_a_generated_block():
    # Every table in BENCHMARKS.md presents measurements: none may be
    # written by hand.
    rows = [
        line
        for line in _outside_blocks(_read("BENCHMARKS.md")).splitlines()
        if line.lstrip().startswith("|")
    ]
    assert rows == [], f"BENCHMARKS.md has tables not rendered by bench/report.py: {rows}"


def test_every_results_file_says_where_it_comes_from_and_is_shown():
    used = {f for t in blocks.TABLES.values() for f in t.files}
    folder = blocks.RESULTS_DIR
    csvs = sorted(f for f in os.listdir(folder) if f.endswith(".csv"))
    assert sorted(used) == csvs, "a results file no table shows, or a table's file missing"
    for name in csvs:
        for row in tables.read_results_file(os.path.join(folder, name)):
            assert row["date"].startswith("20") and row["machine"], name
            assert row["source"].startswith(
                ("measured by bench/", "transcribed from BENCHMARKS.md")
            ), name


def test_cells_format_optional_segments_divisors_and_labels():
    row = {"a": "1500000000", "b": "", "c": "0.4", "d": "-", "e": "87"}
    assert tables.format_cell("{a:.3g/1e9}", row) == "1.5"
    assert tables.format_cell("{c:.2f}x<< ({b:.2f})>>", row) == "0.40x"
    assert tables.format_cell("<<{c:.1f} to {a:.0f}>>", row) == "0.4 to 1500000000"
    assert tables.format_cell("{d:.2g}", row) == "-"
    assert tables.format_cell("{c:auto} {e:auto} {a:auto}", row) == (
        "0.40 87.0 1500000000"
    )
    assert tables.format_cell("{b:.2f}", row) == ""


def _provenance(date, load, command="python bench/x.py --y"):
    return {"date": date, "machine": "a machine", "load": load,
            "command": command, "source": "measured by bench/x.py"}


def test_rows_of_two_runs_get_a_run_column(tmp_path):
    with open(tmp_path / "x.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["v", *results_file.PROVENANCE])
        writer.writeheader()
        writer.writerow({"v": "1.25", **_provenance("2026-01-01", "0.5")})
        writer.writerow({"v": "2", **_provenance("2026-01-02", "9")})
    table = tables.Table("x", ("x.csv",), (tables.col("v", "{v:.1f}"),))
    text = tables.render(table, str(tmp_path))
    assert "(a) measured 2026-01-01 on a machine, load average 0.5" in text
    assert "(b) measured 2026-01-02 on a machine, load average 9" in text
    assert "| a | 1.2 |" in text and "| b | 2.0 |" in text


def test_a_results_file_without_provenance_is_refused(tmp_path):
    (tmp_path / "x.csv").write_text("v\n1\n")
    with pytest.raises(ValueError, match="date"):
        tables.read_results_file(str(tmp_path / "x.csv"))


def test_check_detects_an_edited_bench_figure(tmp_path, capsys):
    for name in ("README.md", "BENCHMARKS.md"):
        shutil.copy(os.path.join(ROOT, name), tmp_path / name)
    args = ["--check", "--root", str(tmp_path), "--block", "matmul-peak"]
    assert report.main(args) == 0
    text = (tmp_path / "BENCHMARKS.md").read_text()
    block = report.block_text(text, "matmul-peak")
    edited = re.sub(r"\| float32 \| [\d.]+ \|", "| float32 | 999.9 |", block, count=1)
    assert edited != block
    (tmp_path / "BENCHMARKS.md").write_text(text.replace(block, edited))
    assert report.main(args) == 1
    assert "999.9" in capsys.readouterr().out


def test_precision_table_compares_the_same_seeds(tmp_path):
    def run(folder, policy, accuracies):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "run.json").write_text(
            '{"date": "d", "machine": "m", "commit": "0123456789ab", "command": "c"}'
        )
        for seed, accuracy in accuracies.items():
            (tmp_path / folder / f"seed{seed}").mkdir()
            (tmp_path / folder / f"seed{seed}" / "results.csv").write_text(
                "experiment,name,title,input_size,test_accuracy,mixed_precision\n"
                f"4,fcn_2x,FCN at 2x,64,{accuracy},{policy}\n"
            )
        return str(tmp_path / folder)

    fp32 = run("fp32", "float32", {1: 0.6, 2: 0.8, 3: 0.5})
    bf16 = run("bf16", "mixed_bfloat16", {1: 0.7, 2: 0.9})
    table = blocks.precision_table(fp32, bf16)
    # Seed 3 has no bf16 run: both means are over seeds 1 and 2.
    assert "| 4 | FCN at 2x | 0.600 / 0.800 | **0.700** | 0.700 / 0.900 | **0.800** |" in table
    with pytest.raises(ValueError, match="mixed policy"):
        blocks.precision_table(fp32, fp32)


def test_the_demo_bf16_runs_are_mixed_bfloat16_runs():
    seeds = blocks.read_demo_seeds(blocks.BF16_DIR)
    assert {row["mixed_precision"] for rows in seeds.values() for row in rows.values()} == {
        "mixed_bfloat16"
    }


def test_matmul_peak_writes_the_results_file_its_table_reads(tmp_path):
    out = tmp_path / "matmul_peak.csv"
    subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "matmul_peak.py"), "--size", "64",
         "--repeats", "1", "--rounds", "1", "--out", str(out)],
        check=True, capture_output=True, timeout=300,
    )
    rows = tables.read_results_file(str(out))
    assert [r["dtype"] for r in rows] == ["float32", "bfloat16"]
    assert rows[0]["source"] == "measured by bench/matmul_peak.py"
    assert f"{os.cpu_count()} cores" in rows[0]["machine"]
    table = blocks.TABLES["matmul-peak"]._replace(files=("matmul_peak.csv",))
    text = tables.render(table, str(tmp_path))
    assert "| float32 | " in text and "bfloat16 / float32" in text
    assert "--size 64" in text


def test_every_bench_with_a_table_can_write_its_results_file():
    # A table's rows name the bench that measured them; that bench takes
    # --out, so the next measurement lands in a results file, not in prose.
    scripts = set()
    for table in blocks.TABLES.values():
        for name in table.files:
            for row in tables.read_results_file(
                os.path.join(blocks.RESULTS_DIR, name)
            ):
                scripts.update(re.findall(r"bench/(\w+\.py)", row["command"]))
    assert len(scripts) >= 8, scripts
    for script in sorted(scripts):
        with open(os.path.join(ROOT, "bench", script)) as f:
            source = f.read()
        assert "add_out_argument(parser)" in source and "write_results(" in source, script
