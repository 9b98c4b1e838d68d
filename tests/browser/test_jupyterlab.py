"""A real browser: JupyterLab + headless Chromium (Playwright) run notebook 02 and use the SearchPanel.

Starts ``jupyter lab`` on 127.0.0.1 with a token (no browser of its own) over a temporary copy of the
notebooks and the demo archive (JupyterLab autosaves), opens ``02_keyword_investigation``, waits for
the kernel to be idle and connected, runs all cells, types a keyword into the SearchPanel and checks
that the hit count and the table change and that the plotly timeline renders. Screenshots go to test-artifacts/screenshots/ (kept by CI runs);
with INVESTIGATOR_UPDATE_SCREENSHOTS=1 they replace docs/screenshots/, which the README shows, so
an ordinary test run never changes the repository. Uses Debian's ``chromium``; never downloads a browser.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = (REPO / "docs" / "screenshots" if os.environ.get("INVESTIGATOR_UPDATE_SCREENSHOTS")
               else REPO / "test-artifacts" / "screenshots")
KEYWORD = "投诉"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local test server
        return json.loads(response.read())


def _wait(predicate, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # noqa: BLE001 - not ready yet
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def lab(demo_archive: Path, tmp_path: Path):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium): apt-get install chromium fonts-noto-cjk")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    root = tmp_path / "lab"
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    shutil.copytree(demo_archive, root / "demo-archive")
    port, token = _free_port(), "investigator-browser-test"
    env = {**os.environ, "INVESTIGATOR_ARCHIVE": str(root / "demo-archive"), "INVESTIGATOR_LANG": "zh-CN",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("JUPYTER_PLATFORM_DIRS", None)
    # no "Jupyter news?" toast over the screenshots
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    jupyter = Path(sys.executable).parent / "jupyter"
    log = open(tmp_path / "jupyter.log", "wb")
    proc = subprocess.Popen(
        [str(jupyter), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
         "--LabApp.news_url=", f"--LabApp.user_settings_dir={tmp_path / 'lab-settings'}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _get(f"{base}/api/status?token={token}"), 60, "the Jupyter server")
        yield base, token, root
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started, nothing else
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


def _kernel_ready(base: str, token: str) -> bool:
    kernels = _get(f"{base}/api/kernels?token={token}")
    return bool(kernels) and all(k.get("execution_state") == "idle" and k.get("connections", 0) > 0 for k in kernels)


def _attached(page, selector: str, timeout: float = 60_000):
    """JupyterLab 4 virtualizes cells below the fold: wait for the element to exist, then scroll to it."""
    locator = page.locator(selector).first
    locator.wait_for(state="attached", timeout=timeout)
    locator.scroll_into_view_if_needed(timeout=timeout)
    locator.wait_for(state="visible", timeout=timeout)
    return locator


def test_keyword_search_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    base, token, _root = lab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            page.goto(f"{base}/lab/tree/notebooks/02_keyword_investigation.ipynb?token={token}")
            page.locator(".jp-NotebookPanel").first.wait_for(state="visible", timeout=60_000)
            _wait(lambda: _kernel_ready(base, token), 60, "an idle, connected kernel")
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

            count = _attached(page, ".investigator-count .investigator-hits", 90_000)
            _wait(lambda: count.inner_text().strip(), 30, "the hit count")
            before_count = count.inner_text().strip()
            table = _attached(page, ".investigator-results")
            before_rows = table.inner_text()

            query = _attached(page, ".investigator-query input")
            query.click()
            query.fill(KEYWORD)
            query.press("Enter")
            _wait(lambda: count.inner_text().strip() != before_count, 30, "the hit count to change")
            after_count = count.inner_text().strip()
            assert int(after_count.replace(",", "")) < int(before_count.replace(",", ""))
            _wait(lambda: table.inner_text() != before_rows, 30, "the table to change")
            assert page.locator(".investigator-results mark").count() > 0  # hits highlighted
            page.locator(".investigator-search-panel button", has_text="▸").first.click()
            _wait(lambda: "mark" in page.locator(".investigator-context-pane").first.inner_html(), 30, "the context")
            panel = _attached(page, ".investigator-search-panel")
            panel.screenshot(path=str(SCREENSHOTS / "search-panel.png"))

            plot = _attached(page, ".investigator-timeline .js-plotly-plot", 60_000)
            _attached(page, ".investigator-timeline .main-svg .scatterlayer .trace")
            assert page.locator(".investigator-timeline .scatterlayer .point").count() > 0
            time.sleep(0.5)  # let plotly finish its transition before the picture
            page.locator(".investigator-timeline").first.screenshot(path=str(SCREENSHOTS / "timeline.png"))
            assert plot.is_visible()
            page.screenshot(path=str(SCREENSHOTS / "jupyterlab-02.png"))
        finally:
            browser.close()
    for name in ("search-panel.png", "timeline.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000
