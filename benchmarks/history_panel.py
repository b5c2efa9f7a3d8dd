"""The History panel in a real browser: how fast a long history opens, and how soon a
new version shows.

Measures, in one invocation, in JupyterLab in Debian's Chromium:

1. **Opening the panel** on a notebook with 10,000 archived versions against the
   same on a notebook with 10: from the click on the panel's tab to its first rows
   on screen, median of ``--runs`` page loads each. Target: first rows within
   300 ms for 10,000 versions, and the panel asks for one page (50 versions), never
   the whole history.
2. **Archive to panel**: with the panel open, ``--saves`` saves made over HTTP (as
   another tab or a script would); for each, the time from the moment the server
   archived it (its ``archived_at``) to the moment the panel shows it. Target:
   under 2 s, without a reload.

The versions are written with the archiver's own ``archive_record`` (real objects in
the local store, real index rows) before the page opens, spread over weeks in
bursts of autosaves, as a long-lived notebook has them.

Run: ``python -m benchmarks.history_panel`` (``--versions 2000`` for a quick run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks._common import machine_line
from bookstore.archiving.archiver import archive_record
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.index import IndexDatabase
from bookstore.store import LocalStore
from tests.support.browser import chromium, lab_server
from tests.support.jupyter_process import JupyterServer, notebook, wait_for

LONG, SHORT = "long-history.ipynb", "short-history.ipynb"
PAGE_SIZE = 50
"""Versions per page, as the panel asks for them (src/panel.ts)."""
TAB = '.lm-TabBar-tab[data-id="bookstore-history"]'
LOADED = "document.querySelector('.jp-BookstoreHistory').dataset.loaded"
SCROLLS = """(list => list.scrollHeight > list.clientHeight + 200)(
  document.querySelector('.jp-BookstoreHistory-list'))"""

# Notes when the panel's tab is pressed (Lumino's tab bars act on pointerdown)...
ARM = f"""() => document.querySelector('{TAB}').addEventListener(
  'pointerdown',
  () => {{ window.pressedAt = performance.now(); }},
  {{ capture: true, once: true }}
)"""
# ...and, once the first row is on screen, how long after that it was.
FIRST_ROWS_AFTER_PRESS = """() => new Promise((done, fail) => {
  const give_up = setTimeout(() => fail(new Error('no rows after 30 s')), 30000);
  const look = () => {
    if (document.querySelector('.jp-BookstoreHistory-list li')) {
      clearTimeout(give_up);
      done(performance.now() - window.pressedAt);
    } else {
      requestAnimationFrame(look);
    }
  };
  look();
})"""

# Records when the panel first shows version ``wanted`` (its newest loaded version).
WATCH = """wanted => new Promise(done => {
  const panel = document.querySelector('.jp-BookstoreHistory');
  const seen = () => Number(panel.dataset.newest || 0) >= wanted;
  if (seen()) { done(Date.now()); return; }
  const observer = new MutationObserver(() => {
    if (seen()) { observer.disconnect(); done(Date.now()); }
  });
  observer.observe(panel, { attributes: true, subtree: true, childList: true });
})"""
START_WATCHING = f"""wanted => {{
  window.shownAt = null;
  ({WATCH})(wanted).then(at => {{ window.shownAt = at; }});
}}"""


def history_notebook(text: str) -> dict[str, Any]:
    """Three cells, and a kernel named, so that JupyterLab opens it without asking."""
    nb = notebook(text, cells=3)
    nb["metadata"]["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def content(number: int) -> bytes:
    return json.dumps(history_notebook(f"version {number}")).encode()


async def fill(server: JupyterServer, path: str, versions: int) -> None:
    """Versions 2..``versions`` of ``path``, in bursts of five saves a minute apart,
    bursts two hours apart, ending now; version 1 was saved through the server."""
    workspace = server.status()["archive"]["workspace"]
    first = server.api("GET", f"/api/bookstore/versions/{path}").json()["versions"][0]
    stored = first["store_key"][len(workspace) + 1 : first["store_key"].rindex("/@")]
    store = LocalStore(server.store_dir)
    index = IndexDatabase(f"sqlite+aiosqlite:///{server.index_file}")
    now = datetime.now(timezone.utc)
    try:
        for number in range(2, versions + 1):
            back = versions - number
            when = now - timedelta(hours=2 * (back // 5), minutes=back % 5)
            record = ArchiveRecord(stored, content(number), when)
            await archive_record(store, index, workspace, HashedRecord.of(record))
    finally:
        await index.close()
        await store.close()


def seed(server: JupyterServer, path: str, versions: int) -> None:
    server.save(path, history_notebook("version 1"))
    server.wait_archived()
    if versions > 1:
        asyncio.run(fill(server, path, versions))


def panel_filled(page: Any, total: int) -> bool:
    """Whether the list is taller than the panel (so scrolling loads more), or holds all."""
    return bool(int(page.evaluate(LOADED)) == total or page.evaluate(SCROLLS))


def next_page_loaded(page: Any, loaded: int, total: int) -> bool:
    return loaded == total or int(page.evaluate(LOADED)) > loaded


def time_opening(server: JupyterServer, browser: Any, path: str, runs: int) -> dict[str, Any]:
    """Median ms from the click on the panel's tab to its first rows, and the pages asked."""
    times, requests = [], []
    total = server.api("GET", f"/api/bookstore/versions/{path}?limit=0").json()["total"]
    for _ in range(runs):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        asked: list[str] = []
        page.on(
            "request",
            lambda r, asked=asked: "/api/bookstore/versions/" in r.url and asked.append(r.url),
        )
        page.goto(f"{server.url}/lab/tree/{path}?token={server.token}")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        page.locator(TAB).wait_for()
        page.evaluate(ARM)
        page.locator(TAB).click()
        times.append(page.evaluate(FIRST_ROWS_AFTER_PRESS))
        wait_for(partial(panel_filled, page, total), what="the panel filled")
        requests.append(len([url for url in asked if "limit=0" not in url]))
        loaded = int(page.evaluate(LOADED))
        # Scrolling to the end of the list loads the next page, and only that.
        page.locator(".jp-BookstoreHistory-list").evaluate("list => list.scrollTo(0, 1e9)")
        wait_for(partial(next_page_loaded, page, loaded, total), what="the next page")
        after_scroll = int(page.evaluate(LOADED))
        page.close()
    return {
        "median_ms": statistics.median(times),
        "max_ms": max(times),
        "pages_asked": max(requests),
        "versions_loaded": loaded,
        "after_scroll": after_scroll,
    }


def time_live(server: JupyterServer, browser: Any, path: str, saves: int) -> list[float]:
    """For each save: ms from the server archiving it to the open panel showing it."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{server.url}/lab/tree/{path}?token={server.token}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    page.locator(TAB).click()
    page.locator(".jp-BookstoreHistory-list li").first.wait_for()
    total = server.api("GET", f"/api/bookstore/versions/{path}?limit=0").json()["total"]
    delays = []
    for n in range(1, saves + 1):
        wanted = total + n
        page.evaluate(START_WATCHING, wanted)
        server.save(path, history_notebook(f"live save {n}"))
        page.wait_for_function("() => window.shownAt !== null", timeout=30_000)
        shown_at = page.evaluate("window.shownAt")

        def archived(wanted: int = wanted) -> str | None:
            page_ = server.api("GET", f"/api/bookstore/versions/{path}?order=newest&limit=1").json()
            newest = page_["versions"][0]
            return newest["archived_at"] if newest["version"] == wanted else None

        archived_at = wait_for(archived, timeout=30, what=f"version {wanted}")
        archived_ms = datetime.fromisoformat(archived_at).timestamp() * 1000
        delays.append(shown_at - archived_ms)
    page.close()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--saves", type=int, default=10)
    args = parser.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory() as scratch, lab_server(Path(scratch)) as server:
        started = time.perf_counter()
        seed(server, LONG, args.versions)
        seed(server, SHORT, 10)
        print(f"seeded {args.versions:,} + 10 versions in {time.perf_counter() - started:.0f} s")
        with chromium() as browser:
            long_open = time_opening(server, browser, LONG, args.runs)
            short_open = time_opening(server, browser, SHORT, args.runs)
            delays = time_live(server, browser, SHORT, args.saves)
    ratio = long_open["median_ms"] / short_open["median_ms"]
    print(
        f"open, {args.versions:,} versions: first rows in {long_open['median_ms']:.0f} ms "
        f"(median of {args.runs}; max {long_open['max_ms']:.0f} ms), "
        f"{long_open['pages_asked']} pages of {PAGE_SIZE} asked to fill the panel, "
        f"{long_open['versions_loaded']} versions loaded "
        f"({long_open['after_scroll']} after scrolling to the end of the list)"
    )
    print(f"open, 10 versions: first rows in {short_open['median_ms']:.0f} ms; ratio {ratio:.2f}x")
    print(
        f"archive to panel, {args.saves} saves: median {statistics.median(delays):.0f} ms, "
        f"max {max(delays):.0f} ms"
    )
    ok = (
        long_open["median_ms"] <= 300
        and long_open["versions_loaded"] <= 10 * PAGE_SIZE
        and max(delays) < 2000
    )
    print(
        f"targets (first rows <= 300 ms, at most {10 * PAGE_SIZE} versions loaded to fill the "
        "panel, live < 2 s):",
        "met" if ok else "NOT met",
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
