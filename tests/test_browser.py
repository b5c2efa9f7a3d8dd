"""End to end: JupyterLab 4's stock File > Revert Notebook to Checkpoint, on archived versions.

A person's session in headless Chromium: open a notebook, save three different
versions with Ctrl+S, choose the first of them in the "Choose a checkpoint"
picker, confirm, and see it back in the page, on disk and in the archive.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.support.browser import ARTIFACTS, TIMEOUT_MS, chromium, lab_page, lab_server
from tests.support.jupyter_process import JupyterServer, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PATH = "demo.ipynb"
OPENED = "opened = 0"
SAVES = ("saved = 1", "saved = 2", "saved = 3")
CELL = ".jp-Notebook .jp-Cell .cm-content"


def write_notebook(path: Path, source: str) -> None:
    """A one-cell notebook written straight to disk: no save, so nothing archived yet."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source, id="cell-0")]
    nbformat.write(nb, path)


def cell_source(content: bytes | str) -> str:
    return str(nbformat.reads(content, as_version=4).cells[0].source)


def versions(server: JupyterServer) -> list[dict[str, Any]]:
    response = server.api("GET", f"/api/bookstore/versions/{PATH}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["versions"]), body
    return list(body["versions"])


def archived(server: JupyterServer, count: int) -> list[dict[str, Any]]:
    """Wait until ``count`` versions are archived and no save waits in the backlog."""

    def done() -> list[dict[str, Any]] | None:
        archive = server.status()["archive"]
        if not archive["ready"] or archive["backlog"]:
            return None
        listed = versions(server)
        return listed if len(listed) == count else None

    return list(wait_for(done, timeout=30, what=f"{count} archived versions of {PATH}"))


def version_source(server: JupyterServer, version: int) -> str:
    response = server.api("GET", f"/api/bookstore/content/{version}/{PATH}")
    assert response.status_code == 200, response.text
    return cell_source(response.content)


def save_through_the_ui(page: Page, text: str) -> None:
    """Replace the cell's text by typing, then Ctrl+S; return once Lab's save is done.

    JupyterLab's save command writes the file, then creates a checkpoint: waiting
    for that POST waits for the whole save.
    """
    editor = page.locator(CELL).first
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(text)
    expect(editor).to_have_text(text)
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.split("?")[0].endswith("/checkpoints")
    ) as checkpoint:
        page.keyboard.press("Control+S")
    assert checkpoint.value.status == 201, checkpoint.value.text()


def dialog(page: Page, title: str) -> Locator:
    return page.get_by_role("dialog").filter(has=page.locator(".jp-Dialog-header", has_text=title))


@pytest.mark.timeout(180)
def test_revert_to_checkpoint_in_jupyterlab_restores_the_chosen_archived_version(
    tmp_path: Path,
) -> None:
    with lab_server(tmp_path) as server:
        file = server.root / PATH
        write_notebook(file, OPENED)
        with chromium() as browser, lab_page(browser, server, PATH) as page:
            # Lab creates a checkpoint of a document that has none when it opens it:
            # bookstore archives the notebook as opened, version 1.
            archived(server, 1)
            for version, text in enumerate(SAVES, start=2):
                save_through_the_ui(page, text)
                wait_for(lambda text=text: cell_source(file.read_bytes()) == text, what="save")
                archived(server, version)

            page.locator("#jp-MainMenu").get_by_role("menuitem", name="File").click()
            page.locator(".lm-Menu").get_by_role(
                "menuitem", name="Revert Notebook to Checkpoint…"
            ).click()
            picker = dialog(page, "Choose a checkpoint")
            options = picker.locator("select option")
            # Lab lists the checkpoints newest first: versions 4, 3, 2 (the first save), 1.
            expect(options).to_have_count(4)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=ARTIFACTS / "checkpoint-picker.png", animations="disabled")
            picker.locator("select").select_option(index=2)
            expect(picker.locator("select")).to_have_value(re.compile(r"^2\. "))
            with page.expect_response(
                lambda r: r.request.method == "POST" and "/checkpoints/" in r.url
            ) as restore:
                picker.get_by_role("button", name="Ok").click()
                dialog(page, "Revert Notebook to checkpoint").get_by_role(
                    "button", name="Revert to Checkpoint"
                ).click()
            assert restore.value.status == 204, restore.value.text()
            assert restore.value.url.split("?")[0].endswith(f"/api/contents/{PATH}/checkpoints/2")

            # (b) the page shows the first saved version again.
            expect(page.locator(CELL).first).to_have_text(SAVES[0], timeout=TIMEOUT_MS)
            expect(page.get_by_role("dialog")).to_have_count(0)

        # (a) the file on disk is the first saved version, byte for byte.
        assert cell_source(file.read_bytes()) == SAVES[0]
        listed = archived(server, 5)
        assert hashlib.sha256(file.read_bytes()).hexdigest() == listed[1]["sha256"]
        # (c) the archive: as opened, three saves, and the revert, which is a version too.
        assert [row["version"] for row in listed] == [1, 2, 3, 4, 5]
        assert [version_source(server, row["version"]) for row in listed] == [
            OPENED,
            *SAVES,
            SAVES[0],
        ]
        assert listed[4]["sha256"] == listed[1]["sha256"]
