"""A real browser: JupyterLab + headless Chromium (Playwright) run notebook 02 and use the SearchPanel.

Starts ``jupyter lab`` on 127.0.0.1 with a token (no browser of its own) over a temporary copy of the
notebooks and the demo archive (JupyterLab autosaves), opens ``02_keyword_investigation``, waits for
the kernel to be idle and connected, runs all cells, types a keyword into the SearchPanel and checks
that the hit count and the table change and that the plotly timeline renders. Screenshots go to test-artifacts/screenshots/ (kept by CI runs);
with INVESTIGATOR_UPDATE_SCREENSHOTS=1 they replace docs/screenshots/, which the README shows, so
an ordinary test run never changes the repository. Uses Debian's ``chromium``; never downloads a browser.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from labkit import CHROMIUM, FLAGS, REPO, SCREENSHOTS, attached, kernel_idle, require_browser, start_lab, wait_for

KEYWORD = "投诉"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def lab(demo_archive: Path, tmp_path: Path):
    require_browser()
    root = tmp_path / "lab"
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    shutil.copytree(demo_archive, root / "demo-archive")
    yield from start_lab(root, tmp_path, root / "demo-archive")


_wait, _attached = wait_for, attached


def _kernel_ready(base: str, token: str) -> bool:
    return kernel_idle(base, token)


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
