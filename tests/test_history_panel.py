"""End to end: the History panel in JupyterLab and Notebook 7, in Debian's Chromium.

Each test is a person's session: open the panel on a notebook with archived
versions, look at one without restoring it, compare, restore, label and pin,
watch a new save arrive, rename the notebook, and read what the panel says
when something is wrong. The screenshots in docs/images/ come from here.
"""

from __future__ import annotations

import base64
import re
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nbformat
import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import LAB_ARGS, TIMEOUT_MS, chromium, lab_page, lab_server
from tests.support.jupyter_process import JupyterServer, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(240)]

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
PANEL = ".jp-BookstoreHistory"
LIST = ".jp-BookstoreHistory-list"
ROW = ".jp-BookstoreHistory-version"
SAFETY = ".jp-BookstoreHistory-safety"
MESSAGE = ".jp-BookstoreHistory-message"


def bar_chart(step: int) -> str:
    """A small bar chart as base64 PNG, different at each step: a plot's output."""
    width, height = 160, 80
    heights = [(step * 7 + bar * 13) % 70 + 8 for bar in range(8)]
    rows = []
    for y in range(height):
        row = bytearray([0])  # no PNG filter
        for x in range(width):
            filled = x % 20 < 16 and height - y <= heights[x // 20]
            row += bytes((31, 119, 180) if filled else (255, 255, 255))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    png += chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


def analysis(step: int) -> dict[str, Any]:
    """The notebook as it is after ``step`` edits: a title, a computation, its outputs."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Rainfall analysis", id="title"),
        nbformat.v4.new_code_cell(
            f"total = {step} * 12\nprint(total)",
            id="compute",
            execution_count=step,
            outputs=[nbformat.v4.new_output("stream", name="stdout", text=f"{step * 12}\n")],
        ),
    ]
    if step >= 2:
        nb.cells.append(
            nbformat.v4.new_code_cell(
                "plot(total)",
                id="plot",
                execution_count=step + 1,
                outputs=[
                    nbformat.v4.new_output(
                        "display_data",
                        data={"image/png": bar_chart(step), "text/plain": "<Figure>"},
                    )
                ],
            )
        )
    return dict(nb)


def versions(server: JupyterServer, path: str) -> list[dict[str, Any]]:
    response = server.api("GET", f"/api/bookstore/versions/{quote(path)}?limit=1000")
    assert response.status_code == 200, response.text
    return list(response.json()["versions"])


def archived(server: JupyterServer, path: str, count: int) -> list[dict[str, Any]]:
    """Wait for ``count`` versions of ``path``."""
    server.wait_archived()
    return list(
        wait_for(
            lambda: (listed := versions(server, path)) and len(listed) == count and listed,
            timeout=30,
            what=f"{count} versions of {path}",
        )
    )


def seed(server: JupyterServer, path: str, steps: int) -> None:
    """``steps`` saves of ``path``, each archived before the page opens."""
    for step in range(1, steps + 1):
        server.save(path, analysis(step))
        archived(server, path, step)


def open_panel(page: Page) -> None:
    """Open the panel with its keyboard shortcut and wait for its rows."""
    page.locator(".jp-Notebook").first.click()
    page.keyboard.press("Control+Alt+H")
    expect(page.locator(PANEL)).to_be_visible()
    expect(page.locator(f"{LIST} li").first).to_be_visible()


def row(page: Page, version: int) -> Any:
    return page.locator(f'{ROW}[data-version="{version}"]')


def expand_bursts(page: Page) -> None:
    bursts = page.locator('.jp-BookstoreHistory-burst[aria-expanded="false"]')
    while bursts.count():
        bursts.first.click()


def shot(page: Page, name: str) -> None:
    IMAGES.mkdir(exist_ok=True)
    page.screenshot(path=IMAGES / name, animations="disabled")


def run_command(page: Page, label: str) -> None:
    """Run a command from the command palette, by its label."""
    page.keyboard.press("Control+Shift+C")
    search = page.locator(".lm-CommandPalette-input")
    search.fill(label)
    expect(page.locator(".lm-CommandPalette-item.lm-mod-active")).to_contain_text(label)
    search.press("Enter")


def test_the_panel_lists_previews_and_diffs_versions_without_restoring_anything(
    tmp_path: Path,
) -> None:
    path = "rainfall.ipynb"
    with lab_server(tmp_path) as server:
        seed(server, path, 3)
        on_disk = (server.root / path).read_bytes()
        with chromium() as browser, lab_page(browser, server, path, width=1400) as page:
            open_panel(page)
            # Three saves seconds apart are one burst, folded, under "Today".
            expect(page.locator(".jp-BookstoreHistory-day").first).to_have_text("Today")
            burst = page.locator(".jp-BookstoreHistory-burst")
            expect(burst).to_contain_text("3 saves")
            expect(page.locator(SAFETY)).to_have_attribute("data-state", "safe")
            expect(page.locator(SAFETY)).to_have_text("Every save is archived")
            # The keyboard reaches into it: the first ↓ unfolds it, on its newest version.
            page.locator(LIST).focus()
            page.keyboard.press("ArrowDown")
            expect(page.locator(ROW)).to_have_count(3)
            expect(row(page, 3)).to_have_class(re.compile(r"\bjp-mod-selected\b"))
            page.keyboard.press("ArrowDown")
            expect(row(page, 2)).to_have_class(re.compile(r"\bjp-mod-selected\b"))
            # Newest first, each with its size and what changed since the one before.
            numbers = [
                int(n)
                for n in page.locator(ROW).evaluate_all("rows => rows.map(r => r.dataset.version)")
            ]
            assert numbers == [3, 2, 1]
            expect(row(page, 1).locator(".jp-BookstoreHistory-changes")).to_have_text(
                "first version"
            )
            expect(row(page, 2).locator(".jp-BookstoreHistory-changes")).to_have_text(
                "2 cells changed"
            )
            # Version 3 re-ran both: new total, new plot.
            expect(row(page, 3).locator(".jp-BookstoreHistory-changes")).to_have_text(
                "2 cells changed"
            )
            expect(row(page, 3).locator(".jp-BookstoreHistory-size")).to_contain_text("B")
            shot(page, "history-panel.png")

            # Preview: version 2, rendered with its outputs, read only, nothing restored.
            row(page, 2).click()
            page.keyboard.press("Enter")
            preview = page.locator('.jp-BookstorePreview[data-version="2"]')
            expect(preview.get_by_role("heading", name="Rainfall analysis")).to_be_visible()
            expect(preview.locator(".jp-BookstorePreview-source").first).to_contain_text(
                "total = 2 * 12"
            )
            expect(preview.locator(".jp-OutputArea-output").first).to_have_text("24")
            expect(preview.locator(".jp-OutputArea-output img")).to_be_visible()
            expect(preview.locator("[contenteditable=true]")).to_have_count(0)
            shot(page, "history-preview.png")
            assert (server.root / path).read_bytes() == on_disk

            # Back to the list: version 1 is selected from here on.
            row(page, 1).click()
            # Diff version 1 with the notebook as it is now, side by side, by nbdime.
            page.locator(LIST).focus()
            page.keyboard.press("v")
            diff = page.locator(".jp-BookstoreDiff").last
            expect(diff.locator(".jp-BookstoreDiff-summary")).to_have_text(
                "1 cell added, 1 changed"
            )
            expect(diff.locator(".jp-Diff-added").first).to_be_visible()
            expect(diff.locator(".jp-BookstoreDiff-sides")).to_contain_text("Now")
            shot(page, "history-diff.png")
            # Hiding outputs hides them; the toggle brings them back.
            outputs = diff.locator(".jp-Cellrow-outputs").first
            expect(outputs).to_be_visible()
            diff.locator('[data-toggle="jp-mod-hideOutputs"]').check()
            expect(outputs).to_be_hidden()
            diff.locator('[data-toggle="jp-mod-hideOutputs"]').uncheck()
            expect(outputs).to_be_visible()

            # Diff two versions: mark version 1, select version 2, Shift+V.
            page.locator(f"{ROW}[data-version='1']").click()
            page.keyboard.press("m")
            expect(row(page, 1)).to_have_class(re.compile(r"\bjp-mod-marked\b"))
            row(page, 2).click()
            page.keyboard.press("Shift+V")
            between = page.locator(".jp-BookstoreDiff").last
            expect(between.locator(".jp-BookstoreDiff-sides")).to_have_text("Version 1Version 2")
            expect(between.locator(".jp-BookstoreDiff-summary")).to_have_text(
                "1 cell added, 1 changed"
            )
            # Same engine as the REST diff, so the same words.
            rest = server.api("GET", f"/api/bookstore/diff/1/{path}?to=2").json()
            assert rest["summary"] == "1 cell added, 1 changed"
        assert (server.root / path).read_bytes() == on_disk


def test_restore_restore_as_copy_label_pin_and_link_from_the_keyboard(tmp_path: Path) -> None:
    path = "rainfall.ipynb"
    with lab_server(tmp_path) as server:
        seed(server, path, 2)
        with chromium() as browser, lab_page(browser, server, path, width=1400) as page:
            page.context.grant_permissions(["clipboard-read", "clipboard-write"])
            open_panel(page)
            expect(page.locator(ROW)).to_have_count(2)

            # Label version 1: it stands out, and the index has it.
            row(page, 1).click()
            page.keyboard.press("l")
            dialog = page.locator(".jp-Dialog")
            dialog.locator("input").fill("before the plot")
            dialog.get_by_role("button", name="Ok").click()
            expect(row(page, 1).locator(".jp-BookstoreHistory-label")).to_have_text(
                "before the plot"
            )
            assert versions(server, path)[0]["label"] == "before the plot"

            # Pin it, from the command palette this time.
            row(page, 1).click()
            run_command(page, "Pin Version 1")
            expect(row(page, 1).locator(".jp-BookstoreHistory-pin")).not_to_be_empty()
            assert versions(server, path)[0]["pinned"] is True

            # Version 2 labelled and pinned, then unlabelled (an empty label) and unpinned.
            row(page, 2).click()
            page.keyboard.press("l")
            dialog.locator("input").fill("draft")
            dialog.get_by_role("button", name="Ok").click()
            expect(row(page, 2).locator(".jp-BookstoreHistory-label")).to_have_text("draft")
            row(page, 2).click()
            page.keyboard.press("p")
            expect(row(page, 2).locator(".jp-BookstoreHistory-pin")).not_to_be_empty()
            row(page, 2).click()
            page.keyboard.press("l")
            expect(dialog.locator("input")).to_have_value("draft")
            dialog.locator("input").fill("")
            dialog.get_by_role("button", name="Ok").click()
            expect(row(page, 2).locator(".jp-BookstoreHistory-label")).to_be_empty()
            row(page, 2).click()
            run_command(page, "Unpin Version 2")
            expect(row(page, 2).locator(".jp-BookstoreHistory-pin")).to_be_empty()
            assert [(v["label"], v["pinned"]) for v in versions(server, path)] == [
                ("before the plot", True),
                (None, False),
            ]

            # Restore as a new notebook: opened beside this one, holding version 1.
            row(page, 1).click()
            page.keyboard.press("Shift+R")
            copy = "rainfall-v1.ipynb"
            expect(page.locator(f'.lm-TabBar-tab[title^="Name: {copy}"]')).to_be_visible()
            wait_for(lambda: (server.root / copy).exists(), what=copy)
            restored = nbformat.read(server.root / copy, as_version=4)
            assert restored.cells[1].source == "total = 1 * 12\nprint(total)"

            # Restore in place, over an edit not saved yet: confirmed, the edit is saved
            # and archived first, then the page shows version 1. Nothing is lost.
            tab = page.locator(f'.lm-TabBar-tab[title^="Name: {path}"]').first
            tab.click()
            notebook = page.locator(f"#{tab.get_attribute('data-id')} .jp-Notebook")
            notebook.locator(".jp-CodeCell .cm-content").first.click()
            page.keyboard.press("Control+End")
            page.keyboard.type("  # not saved yet")
            row(page, 1).click()
            page.keyboard.press("r")
            page.locator(".jp-Dialog").get_by_role("button", name="Restore").click()
            expect(notebook.locator(".jp-Cell")).to_have_count(2)
            expect(notebook).not_to_contain_text("# not saved yet")
            listed = archived(server, path, 4)
            edited = server.api("GET", f"/api/bookstore/content/3/{path}").text
            assert (
                nbformat.reads(edited, as_version=4).cells[1].source.endswith("  # not saved yet")
            )
            assert listed[3]["sha256"] == listed[0]["sha256"]
            assert (server.root / path).read_bytes() == server.api(
                "GET", f"/api/bookstore/content/1/{path}"
            ).content

            # A link to a version opens the notebook with the panel on that version.
            expand_bursts(page)  # versions 2, 3 and 4 were saved within a minute
            row(page, 2).click()
            page.keyboard.press("c")
            expect(page.locator(MESSAGE)).to_have_text("Copied a link to version 2.")
            link = page.evaluate("navigator.clipboard.readText()")
            assert link.endswith(f"/lab/tree/{path}?bookstore-version=2"), link
            # Opened in a new tab, as a link someone was sent (this tab's notebooks may
            # hold changes the kernel made to their metadata, which a reload would ask about).
            opened = page.context.new_page()
            opened.goto(f"{link}&token={server.token}")
            expect(opened.locator('.jp-BookstorePreview[data-version="2"]')).to_be_visible(
                timeout=TIMEOUT_MS
            )
            expect(row(opened, 2)).to_have_class(re.compile(r"\bjp-mod-selected\b"))

            # Download: the version's bytes, as saved.
            row(opened, 2).click()
            with opened.expect_download() as download:
                opened.keyboard.press("s")
            saved = Path(download.value.path()).read_bytes()
            assert saved == server.api("GET", f"/api/bookstore/content/2/{path}").content


def test_new_versions_appear_live_and_the_panel_follows_a_rename(tmp_path: Path) -> None:
    path = "rainfall.ipynb"
    with lab_server(tmp_path) as server:
        seed(server, path, 1)
        with chromium() as browser, lab_page(browser, server, path) as page:
            open_panel(page)
            expect(page.locator(ROW)).to_have_count(1)
            # A save made elsewhere (another tab, a script) shows without a reload.
            server.save(path, analysis(2))
            expect(row(page, 2)).to_be_visible()
            # Renamed while open (File > Rename Notebook…): the panel follows, with the
            # history that moved with it.
            page.locator(".jp-Notebook").first.click()
            page.locator("#jp-MainMenu").get_by_role("menuitem", name="File").click()
            page.locator(".lm-Menu").get_by_role("menuitem", name="Rename Notebook…").click()
            page.locator(".jp-Dialog input").fill("renamed.ipynb")
            page.locator(".jp-Dialog").get_by_role("button", name="Rename").click()
            expect(page.locator(".jp-BookstoreHistory-path")).to_have_text(
                "renamed.ipynb", timeout=TIMEOUT_MS
            )
            expect(page.locator(ROW)).to_have_count(2)


def test_the_panel_says_what_is_wrong_and_keeps_working(tmp_path: Path) -> None:
    path = "rainfall.ipynb"
    with lab_server(tmp_path) as server:
        seed(server, path, 3)
        (server.root / "notes.txt").write_text("not a notebook\n")
        # Version 2 goes missing from the store.
        missing = versions(server, path)[1]["store_key"]
        (server.store_dir / "data" / missing).unlink()
        with chromium() as browser, lab_page(browser, server, path, width=1400) as page:
            open_panel(page)
            expand_bursts(page)
            row(page, 2).click()
            page.keyboard.press("Enter")
            note = page.locator('.jp-BookstorePreview[data-version="2"] .jp-mod-error')
            expect(note).to_contain_text("missing from the store")
            # The rest still works: version 3 previews.
            row(page, 3).click()
            page.keyboard.press("Enter")
            expect(
                page.locator('.jp-BookstorePreview[data-version="3"] .jp-OutputArea-output').first
            ).to_have_text("36")

            # The store fails: saves wait, and the panel says why in words.
            shutil.rmtree(server.store_dir)
            server.store_dir.write_text("")
            server.save(path, analysis(4))
            expect(page.locator(SAFETY)).to_have_attribute("data-state", "error", timeout=20_000)
            expect(page.locator(SAFETY)).to_contain_text("Archiving is failing")
            expect(page.locator(SAFETY)).to_contain_text(
                "1 save of this file waits on disk and is archived once this is resolved."
            )
            # The save itself shows at the top of the list, waiting.
            expect(page.locator(".jp-BookstoreHistory-pending")).to_contain_text(
                "waiting to be archived"
            )
            shot(page, "history-error.png")
            # Once the store is back, the save is archived and the panel says so.
            server.store_dir.unlink()
            server.store_dir.mkdir()
            expect(page.locator(SAFETY)).to_have_attribute("data-state", "safe", timeout=60_000)
            expect(page.locator(".jp-BookstoreHistory-pending")).to_have_count(0)
            expect(page.locator(PANEL)).to_have_attribute("data-newest", "4")

            # A file that is not a notebook.
            page.goto(f"{server.url}/lab/tree/notes.txt?token={server.token}")
            page.locator(".jp-FileEditor").wait_for()
            page.keyboard.press("Control+Alt+H")
            expect(page.locator(MESSAGE)).to_contain_text("notes.txt is not a notebook")


WITHOUT_BOOKSTORE = [
    *(arg for arg in LAB_ARGS if "bookstore=True" not in arg),
    "--ServerApp.jpserver_extensions=bookstore=False",
]
HISTORY_REFUSED = [
    *LAB_ARGS,
    "--ServerApp.authorizer_class=tests.support.deny_authorizer.DenyHistoryAuthorizer",
]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            WITHOUT_BOOKSTORE,
            "History is unavailable: the bookstore server extension is not enabled on this "
            "Jupyter server.",
            id="server-without-bookstore",
        ),
        pytest.param(
            HISTORY_REFUSED,
            "You do not have permission to read this server's notebook history.",
            id="no-permission",
        ),
    ],
)
def test_the_panel_says_why_history_is_unavailable(
    tmp_path: Path, args: list[str], message: str
) -> None:
    server = lab_server(tmp_path)
    server.args = args
    server.root.mkdir(parents=True)
    (server.root / "plain.ipynb").write_text(nbformat.writes(nbformat.from_dict(analysis(1))))
    with server, chromium() as browser, lab_page(browser, server, "plain.ipynb") as page:
        page.locator(".jp-Notebook").first.click()
        page.keyboard.press("Control+Alt+H")
        expect(page.locator(MESSAGE)).to_have_text(message)
        expect(page.locator(SAFETY)).to_have_attribute("data-state", "unavailable")


def test_notebook_7_has_the_panel_too(tmp_path: Path) -> None:
    path = "rainfall.ipynb"
    server = JupyterServer(
        tmp_path,
        app="notebook",
        args=[arg for arg in LAB_ARGS if "notebook=False" not in arg],
    )
    with server, chromium() as browser:
        seed(server, path, 2)
        page = browser.new_page(viewport={"width": 1300, "height": 800})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{server.url}/notebooks/{path}?token={server.token}")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        page.locator(".jp-Notebook").first.click()
        page.keyboard.press("Control+Alt+H")
        expect(page.locator(PANEL)).to_be_visible()
        expect(page.locator(".jp-BookstoreHistory-path")).to_have_text(path)
        expect(page.locator(ROW)).to_have_count(2)
        row(page, 1).click()
        page.keyboard.press("v")
        # Notebook 7's main area holds the notebook alone: the diff opens in a dialog.
        diff = page.locator(".jp-Dialog .jp-BookstoreDiff")
        expect(diff.locator(".jp-BookstoreDiff-summary")).to_have_text("1 cell added, 1 changed")
        expect(diff.locator(".jp-Diff-added").first).to_be_visible()
        shot(page, "history-notebook7.png")
