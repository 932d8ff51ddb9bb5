"""FCN_demo.ipynb as users open it: `./run.sh notebook` (JupyterLab) driven by
headless Chromium through Playwright.

The test edits the parameters cell in the browser (tiny profile, a temp
output folder), runs all cells from the Run menu, checks that no cell shows an
error and that the results table and the figures render, and saves a
screenshot. Marked `browser` (not in the default run): `.ci/steps/
30-notebook-browser.sh` runs it after the README's test command. It needs
Debian's Chromium (`apt-get install chromium`), never `playwright install`.

The server is confined: 127.0.0.1, a free port, no token (loopback only),
temp Jupyter config/data/runtime folders, no news or update checks; it serves
a temp folder holding a copy of the notebook, so the repository's copy is
never saved over.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import nbformat
import psutil
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect
from playwright.sync_api import sync_playwright

import fcn_experiments

pytestmark = pytest.mark.browser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = "FCN_demo.ipynb"
CHROMIUM = os.environ.get("FCN_CHROMIUM", "/usr/bin/chromium")
# Known to work as root in a closed network: without the background-network
# flags Chromium keeps dialling Google's services.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
KERNEL_DISPLAY_NAME = "FCN in Keras (.venv)"
# Where the screenshot goes (CI keeps it as an artifact).
SCREENSHOT = os.environ.get(
    "FCN_NOTEBOOK_SCREENSHOT",
    os.path.join(ROOT, "outputs", "notebook_browser.png"),
)
# A hang guard only (pytest-timeout has the last word): a tiny run of all
# cells takes a few minutes on a shared 2-core machine.
RUN_ALL_S = 1500
# Set in the parameters cell through the editor (OUTPUT_DIR: a temp folder).
PARAMETERS = {"PROFILE": "tiny"}
# True once no code cell of the notebook is running or queued.
RUN_FINISHED = """() => {
    const prompts = [...document.querySelectorAll(
        ".jp-NotebookPanel:not(.lm-mod-hidden) " +
        ".jp-CodeCell .jp-InputArea-prompt"
    )].map(e => e.textContent.trim());
    return prompts.length > 0 && !prompts.includes("[*]:");
}"""
# A Python traceback as JupyterLab shows it.
TRACEBACK = re.compile(r"Traceback|^\w*(Error|Exception)\b", re.MULTILINE)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path, lines=40):
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


class JupyterLab:
    """`./run.sh notebook` on a free loopback port, serving `root`."""

    def __init__(self, root, home):
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runtime_dir = os.path.join(home, "runtime")
        self.log_path = os.path.join(home, "jupyterlab.log")
        env = dict(os.environ)
        for name, folder in (
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("IPYTHONDIR", "ipython"),
        ):
            env[name] = os.path.join(home, folder)
            os.makedirs(env[name], exist_ok=True)
        # No "get Jupyter news?" prompt over the page.
        settings = os.path.join(
            env["JUPYTER_CONFIG_DIR"],
            "lab",
            "user-settings",
            "@jupyterlab",
            "apputils-extension",
        )
        os.makedirs(settings, exist_ok=True)
        with open(
            os.path.join(settings, "notification.jupyterlab-settings"), "w"
        ) as f:
            json.dump({"fetchNews": "false", "checkForUpdates": False}, f)
        # Every cell stays in the page: JupyterLab's default windowing
        # detaches cells scrolled out of view, emptying their prompts and
        # outputs for the checks below.
        tracker = os.path.join(
            env["JUPYTER_CONFIG_DIR"],
            "lab",
            "user-settings",
            "@jupyterlab",
            "notebook-extension",
        )
        os.makedirs(tracker, exist_ok=True)
        with open(os.path.join(tracker, "tracker.jupyterlab-settings"), "w") as f:
            json.dump({"windowingMode": "none"}, f)
        args = [
            os.path.join(ROOT, "run.sh"),
            "notebook",
            "--no-browser",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            "--IdentityProvider.token=",
            f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ]
        if os.geteuid() == 0:  # CI runs as root
            args.append("--allow-root")
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_until_up()

    def _wait_until_up(self):
        # Polls until the server answers or its process exits; a server that
        # never does is stopped by pytest-timeout (pytest.ini), not by a
        # wall-clock threshold of ours.
        while True:
            if self.process.poll() is not None:
                pytest.fail(
                    f"./run.sh notebook exited with {self.process.returncode}; "
                    f"its log:\n{_log_tail(self.log_path)}"
                )
            try:
                with urllib.request.urlopen(
                    f"{self.url}/api/status", timeout=5
                ):
                    return
            except OSError:
                time.sleep(0.5)

    def kernel_processes(self):
        """Live kernels of this server (their connection files are in its
        runtime folder)."""
        found = []
        for p in psutil.process_iter(["cmdline"]):
            cmdline = p.info["cmdline"] or []
            if any(self.runtime_dir in arg for arg in cmdline):
                found.append(p)
        return found

    def stop(self):
        """Shuts the server and its kernels down (REST, then SIGTERM, then
        SIGKILL to the process group); returns the kernels left over."""
        if self.process.poll() is None:
            request = urllib.request.Request(
                f"{self.url}/api/shutdown", method="POST"
            )
            try:
                urllib.request.urlopen(request, timeout=10).close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for signum in (signal.SIGTERM, signal.SIGKILL):
            if self.process.poll() is not None:
                break
            try:
                os.killpg(self.process.pid, signum)
                self.process.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self._log.close()
        left = self.kernel_processes()
        for p in left:  # kernels run in their own session
            p.kill()
        return left


@pytest.fixture
def lab(tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium not found; install Debian's package (`apt-get install "
            f"chromium`) or set FCN_CHROMIUM. Received: path={CHROMIUM}"
        )
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(os.path.join(ROOT, NOTEBOOK), root / NOTEBOOK)
    server = JupyterLab(str(root), str(tmp_path / "jupyter"))
    yield server
    server.stop()


def _parameter_edits(source, values):
    """(row, column, old value, new value) of each `NAME = value  # comment`
    line of the cell that `values` sets."""
    lines = source.split("\n")
    edits = []
    for name, value in values.items():
        pattern = re.compile(rf"^({name}\s*=\s*)(.*?)(\s*#.*)?$")
        row, match = next(
            (i, m) for i, m in enumerate(map(pattern.match, lines)) if m
        )
        edits.append((row, len(match[1]), match[2], repr(value)))
    return sorted(edits)


def _set_parameters(page, cell, source, values):
    """Retypes parameter values through the cell's editor, as a user does:
    click, move with the arrow keys, select the old value, type."""
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+Home")
    at_row = 0
    for row, column, old, new in _parameter_edits(source, values):
        for _ in range(row - at_row):
            page.keyboard.press("ArrowDown")
        at_row = row
        page.keyboard.press("Home")
        for _ in range(column):
            page.keyboard.press("ArrowRight")
        for _ in range(len(old)):
            page.keyboard.press("Shift+ArrowRight")
        # Delete first: a quote typed over a selection would wrap it.
        page.keyboard.press("Delete")
        page.keyboard.type(new)
    page.keyboard.press("Escape")  # command mode


def _click_menu(page, menu, item):
    page.locator(".lm-MenuBar-item", has_text=re.compile(f"^{menu}$")).click()
    page.locator(
        ".lm-Menu-item:visible .lm-Menu-itemLabel",
        has_text=re.compile(f"^{item}$"),
    ).click()


def _screenshot(page, notebook):
    """The whole notebook in one picture: a viewport as tall as its cells
    (the page as it is when the notebook never showed)."""
    try:
        height = notebook.locator(".jp-WindowedPanel-inner").evaluate(
            "e => e.scrollHeight", timeout=5000
        )
        page.set_viewport_size(
            {"width": 1400, "height": min(height + 250, 12000)}
        )
        notebook.locator(".jp-WindowedPanel-outer").evaluate(
            "e => e.scrollTo(0, 0)", timeout=5000
        )
        page.wait_for_timeout(500)
    except PlaywrightError:
        pass
    os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
    page.screenshot(path=SCREENSHOT)


@pytest.mark.timeout(2400)
def test_notebook_runs_in_jupyterlab_in_chromium(lab, tmp_path):
    output_dir = str(tmp_path / "snapshots")
    source = nbformat.read(os.path.join(ROOT, NOTEBOOK), as_version=4)
    index = next(
        i
        for i, cell in enumerate(source.cells)
        if "parameters" in cell.metadata.get("tags", [])
    )
    code_cells = [c for c in source.cells if c.cell_type == "code"]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page_errors = []
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        notebook = page.locator(".jp-NotebookPanel:visible")
        try:
            page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}")
            # The notebook's kernelspec names the venv's kernel: it starts
            # without a "Select Kernel" dialog.
            expect(notebook.locator(".jp-KernelName")).to_have_text(
                KERNEL_DISPLAY_NAME, timeout=120_000
            )
            expect(page.locator(".jp-Dialog")).to_have_count(0)
            cells = notebook.locator(".jp-Notebook .jp-Cell")
            expect(cells).to_have_count(len(source.cells))

            _set_parameters(
                page,
                cells.nth(index),
                source.cells[index].source,
                dict(PARAMETERS, OUTPUT_DIR=output_dir),
            )
            # The cell now reads as the user typed it, comments kept.
            edited = cells.nth(index).locator(".cm-content").inner_text()
            expected = source.cells[index].source
            for row, column, old, new in _parameter_edits(
                expected, dict(PARAMETERS, OUTPUT_DIR=output_dir)
            ):
                lines = expected.split("\n")
                line = lines[row]
                lines[row] = line[:column] + new + line[column + len(old) :]
                expected = "\n".join(lines)
            assert edited.strip() == expected.strip(), edited

            _click_menu(page, "Run", "Run All Cells")
            # Run All queues every code cell ([*]); each gets its number when
            # it finishes, or its [ ] back when an earlier cell failed.
            prompts = notebook.locator(".jp-CodeCell .jp-InputArea-prompt")
            expect(prompts).to_have_count(len(code_cells))
            expect(prompts.first).not_to_have_text("[ ]:")
            page.wait_for_function(
                RUN_FINISHED, timeout=RUN_ALL_S * 1000, polling=1000
            )
            expect(
                notebook.locator(".jp-Notebook-ExecutionIndicator")
            ).to_have_attribute("data-status", "idle", timeout=60_000)

            outputs = notebook.locator(".jp-OutputArea-output")
            # JupyterLab renders a traceback like a stderr stream (red); any
            # red output naming an exception is an error shown to the user.
            stderr = notebook.locator(
                ".jp-OutputArea-output"
                "[data-mime-type='application/vnd.jupyter.stderr']"
            ).all_inner_texts()
            shown = [t for t in stderr if TRACEBACK.search(t)]
            assert not shown, "a cell shows an error:\n" + shown[0][-3000:]
            numbers = prompts.all_inner_texts()
            assert all(re.match(r"^\[\d+\]:$", n) for n in numbers), numbers
            # The results table (the per-class and scored-image tables follow).
            table = outputs.locator("table", has_text="resize mode")
            expect(table).to_have_count(1)
            # One row per experiment, in order.
            rows = table.locator("tbody tr")
            expect(rows).to_have_count(9)
            assert [
                rows.nth(i).locator("td").first.inner_text().strip()
                for i in range(9)
            ] == [str(i) for i in range(1, 10)]
            # The figures: decoded images, not broken ones.
            # The three figures, then the scored images' heatmaps (as small
            # as their images).
            images = outputs.locator("img")
            assert images.count() >= 3
            widths = [
                images.nth(i).evaluate("e => e.complete && e.naturalWidth")
                for i in range(images.count())
            ]
            assert all(w and w > 0 for w in widths), widths
            assert all(w > 200 for w in widths[:3]), widths
            assert not page_errors, page_errors

            page.keyboard.press("Control+s")
            expect(page.locator(".jp-mod-dirty")).to_have_count(0)
        finally:
            _screenshot(page, notebook)
            browser.close()

    # What the browser ran and saved: the tiny profile into the temp folder,
    # every code cell run once, no error output.
    saved = nbformat.read(os.path.join(lab.root, NOTEBOOK), as_version=4)
    saved_code = [c for c in saved.cells if c.cell_type == "code"]
    assert [c.execution_count for c in saved_code] == list(
        range(1, len(code_cells) + 1)
    )
    assert not [
        o for c in saved_code for o in c.outputs if o.output_type == "error"
    ]
    rows = fcn_experiments.read_results(output_dir)
    assert [row["experiment"] for row in rows] == list(range(1, 10))
    assert {row["epochs"] for row in rows} == {1}
    assert {row["weights"] for row in rows} == {"random"}
    assert lab.stop() == [], "a kernel outlived the server"
