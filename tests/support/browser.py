"""JupyterLab in a real ``jupyter server`` and Debian's headless Chromium, for end-to-end tests.

Playwright drives the browser but never downloads one: it launches the system
Chromium (``apt-get install chromium``; ``BOOKSTORE_CHROMIUM`` names another).
Chromium stays off the network: no background requests, and every host name
fails to resolve (the page is on 127.0.0.1, which needs none).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.jupyter_process import JupyterServer

__all__ = ["ARTIFACTS", "TIMEOUT_MS", "chromium", "lab_page", "lab_server"]

CHROMIUM = os.environ.get("BOOKSTORE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
TIMEOUT_MS = 30_000
# The status bar reads "No Kernel | Initializing" first, then "Python 3 (ipykernel) | Idle".
KERNEL_IDLE = re.compile(r"\(ipykernel\) \| Idle$")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

# JupyterLab on, what the server does not need off; no news feed, update or PyPI checks.
LAB_ARGS = (
    "--ServerApp.jpserver_extensions=bookstore=True",
    "--ServerApp.jpserver_extensions=jupyterlab=True",
    "--ServerApp.jpserver_extensions=notebook=False",
    "--ServerApp.jpserver_extensions=notebook_shim=False",
    "--ServerApp.jpserver_extensions=jupyter_lsp=False",
    "--ServerApp.jpserver_extensions=jupyter_server_terminals=False",
    # JupyterLab as people without jupyter-collaboration have it; tests/test_collaboration.py
    # covers real-time collaboration.
    "--YDocExtension.disable_rtc=True",
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
    "--LabApp.extension_manager=readonly",
)

# JupyterLab user settings: no autosave (only the test's own saves make versions), and no
# "Would you like to get notified about official Jupyter news?" toast.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
}


def lab_server(base: Path) -> JupyterServer:
    """A ``jupyter server`` serving JupyterLab and bookstore, with its own Lab user settings."""
    if importlib.util.find_spec("jupyterlab") is None:
        raise AssertionError("browser tests need JupyterLab 4: pip install 'jupyterlab>=4'")
    server = JupyterServer(base, args=LAB_ARGS)
    # JUPYTER_CONFIG_DIR is the server's config dir, so Lab reads user settings from under it.
    settings_dir = server.config_dir / "lab" / "user-settings"
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return server


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless system Chromium, closed afterwards."""
    if not Path(CHROMIUM).exists():
        raise AssertionError(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def lab_page(
    browser: Browser,
    server: JupyterServer,
    path: str,
    *,
    width: int = 1200,
    height: int = 800,
    failure_screenshot: str = "browser-failure.png",
) -> Iterator[Page]:
    """A page with notebook ``path`` open in JupyterLab, its kernel started and idle.

    If the block fails, the page as it was is saved to ``test-artifacts/``.
    """
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(f"{server.url}/lab/tree/{path}?token={server.token}")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(state="visible")
        page.locator(".jp-StatusBar-Widget").get_by_text(KERNEL_IDLE).wait_for()
        yield page
    except BaseException:
        with suppress(Exception):  # never hide the failure itself
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=ARTIFACTS / failure_screenshot)
        raise
    finally:
        context.close()
