"""Shared by the browser tests: JupyterLab + Debian chromium over a temporary folder, and waiting helpers.

Chromium is Debian's (/usr/bin/chromium); a browser is never downloaded. Without it (or without
playwright) the tests skip with the reason — except under ``CI=true``, where a missing browser is a
failure: a CI run that skipped its browser tests would look green and prove nothing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = (REPO / "docs" / "screenshots" if os.environ.get("INVESTIGATOR_UPDATE_SCREENSHOTS")
               else REPO / "test-artifacts" / "screenshots")
TOKEN = "investigator-browser-test"


def require_browser() -> None:
    """Skip (fail under CI=true) when Debian's chromium or playwright is missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"Debian's chromium is not installed ({CHROMIUM}): apt-get install chromium fonts-noto-cjk")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright is not installed (pip install -e .[dev])")
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and the browser test cannot run: " + "; ".join(missing), pytrace=False)
        pytest.skip("; ".join(missing))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local test server
        return json.loads(response.read())


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.3) -> Any:
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


def kernel_idle(base: str, token: str) -> bool:
    kernels = get_json(f"{base}/api/kernels?token={token}")
    return bool(kernels) and all(k.get("execution_state") == "idle" and k.get("connections", 0) > 0 for k in kernels)


def attached(page: Any, selector: str, timeout: float = 60_000) -> Any:
    """JupyterLab 4 virtualizes cells below the fold: wait for the element to exist, then scroll to it."""
    locator = page.locator(selector).first
    locator.wait_for(state="attached", timeout=timeout)
    locator.scroll_into_view_if_needed(timeout=timeout)
    locator.wait_for(state="visible", timeout=timeout)
    return locator


def start_lab(root: Path, tmp_path: Path, archive: Path) -> Iterator[tuple[str, str, Path]]:
    """``jupyter lab`` over ``root`` on 127.0.0.1 with a token; yields (base url, token, root); stops it after."""
    port = free_port()
    env = {**os.environ, "INVESTIGATOR_ARCHIVE": str(archive), "INVESTIGATOR_LANG": "zh-CN",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("JUPYTER_PLATFORM_DIRS", None)
    # no "Jupyter news?" toast over the screenshots
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    jupyter = Path(sys.executable).parent / "jupyter"
    log = open(tmp_path / "jupyter.log", "wb")
    proc = subprocess.Popen(
        [str(jupyter), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
         "--LabApp.news_url=", f"--LabApp.user_settings_dir={tmp_path / 'lab-settings'}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get_json(f"{base}/api/status?token={TOKEN}"), 60, "the Jupyter server")
        yield base, TOKEN, root
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started, nothing else
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()
