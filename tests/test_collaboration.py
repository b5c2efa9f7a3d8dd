"""Real-time collaboration (jupyter-collaboration, JupyterLab 4's RTC) in a real ``jupyter server``.

With RTC, JupyterLab never sends the notebook to ``PUT /api/contents``: clients edit a shared
Y document over a websocket, and the server's room saves it by itself, through the contents
manager, shortly after each change. These tests play JupyterLab's part (its document provider):
they open the session over REST and speak the y-websocket protocol with pycrdt, through
websocket-client (a dependency of jupyter_server). They show that every save the room makes is
archived, and that a checkpoint restore reaches the shared document and stays there.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import websocket
from jupyter_ydoc import YNotebook
from pycrdt import Doc, YMessageType, create_sync_message, create_update_message
from pycrdt import handle_sync_message as apply_sync_message

from tests.support.jupyter_process import JupyterServer, notebook, wait_for

pytestmark = pytest.mark.e2e

PATH = "shared.ipynb"
INITIAL: str = notebook("initial")["cells"][0]["source"]
SAVE_DELAY = 0.5
"""The room saves this long after the last change (jupyter-collaboration's default is 1 s)."""


def collaborative_server(base: Path) -> JupyterServer:
    """A server with the collaboration extension on, keeping its Y store and session file
    under ``base``: by default they go to the working directory and the server root."""
    return JupyterServer(
        base,
        args=[
            "--ServerApp.jpserver_extensions=jupyter_server_ydoc=True",
            "--ServerApp.jpserver_extensions=jupyter_server_fileid=True",
            f"--YDocExtension.document_save_delay={SAVE_DELAY}",
            f"--SQLiteYStore.db_path={base / 'ystore.db'}",
            f"--YDocExtension.session_store_path={base / 'sessions.json'}",
        ],
    )


class SharedNotebook:
    """One client of a notebook's collaborative session, as JupyterLab opens it: a Y document
    kept in sync with the server's room over the room's websocket."""

    def __init__(self, server: JupyterServer, path: str) -> None:
        session = server.api(
            "PUT",
            f"/api/collaboration/session/{path}",
            json={"format": "json", "type": "notebook"},
        )
        assert session.status_code in (200, 201), session.text
        ids = session.json()
        room = f"json:notebook:{ids['fileId']}?sessionId={ids['sessionId']}"
        self.doc: Doc[Any] = Doc()
        self.notebook = YNotebook(self.doc)
        self.socket = websocket.create_connection(
            f"ws://127.0.0.1:{server.port}/api/collaboration/room/{room}",
            header=[f"Authorization: token {server.token}"],
            timeout=10,
        )
        # SYNC_STEP1 with our (empty) state: the room answers with the whole document.
        self.socket.send_binary(create_sync_message(self.doc))
        wait_for(lambda: self.source() is not None, what="the room's document")

    def __enter__(self) -> SharedNotebook:
        return self

    def __exit__(self, *_: object) -> None:
        self.socket.close()

    def listen(self, seconds: float) -> None:
        """Apply what the room sends for ``seconds``, answering its sync requests."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.socket.settimeout(left)
            try:
                message = self.socket.recv()
            except websocket.WebSocketTimeoutException:
                return
            if isinstance(message, bytes) and message[0] == YMessageType.SYNC:
                reply = apply_sync_message(message[1:], self.doc)
                if reply is not None:
                    self.socket.send_binary(reply)

    def source(self) -> str | None:
        """The first cell's source as this client sees it now (None before the first sync)."""
        self.listen(0.05)
        if self.notebook.cell_number == 0:
            return None
        return str(self.notebook.get_cell(0)["source"])

    def type(self, text: str) -> None:
        """Make ``text`` the first cell's source and send the change to the room."""
        before = self.doc.get_state()
        source = self.notebook.ycells[0]["source"]
        with self.doc.transaction():
            source.clear()
            source += text
        self.socket.send_binary(create_update_message(self.doc.get_update(before)))


def cell_source(content: bytes) -> str:
    source = json.loads(content)["cells"][0]["source"]
    return "".join(source) if isinstance(source, list) else str(source)


def on_disk(server: JupyterServer) -> str | None:
    """The first cell's source in the file; None while a save is writing it: Jupyter's
    "atomic" writing rewrites the file in place (keeping a backup), so a read can see it
    half-written."""
    try:
        return cell_source((server.root / PATH).read_bytes())
    except json.JSONDecodeError:
        return None


def wait_on_disk(server: JupyterServer, text: str) -> None:
    """Wait until the room has saved ``text`` (it saves by itself, ``SAVE_DELAY`` after)."""
    wait_for(lambda: on_disk(server) == text, timeout=30, what=f"{text!r} on disk")


def versions(server: JupyterServer) -> list[dict[str, Any]]:
    """Every archived version of ``PATH``, oldest first (one page holds them all here)."""
    answer = server.api("GET", f"/api/bookstore/versions/{PATH}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["next_offset"] is None, body
    return list(body["versions"])


def archived_sources(server: JupyterServer) -> list[str]:
    """The first cell's source in each archived version, oldest first, after the backlog
    has drained: what each version holds, read back through the REST content endpoint."""
    server.wait_archived()
    listed = versions(server)
    assert [v["version"] for v in listed] == list(range(1, len(listed) + 1))
    assert [v["queued_at"] for v in listed] == sorted(v["queued_at"] for v in listed)
    sources = []
    for version in listed:
        answer = server.api("GET", f"/api/bookstore/content/{version['version']}/{PATH}")
        assert answer.status_code == 200, answer.text
        sources.append(cell_source(answer.content))
    return sources


def bookstore_problems(log: str) -> list[str]:
    """The log's warnings and errors (each with its traceback) that mention bookstore."""
    records = re.split(r"\n(?=\[[A-Z] )", log)
    return [r for r in records if r.startswith(("[W", "[E", "[C")) and "bookstore" in r.lower()]


def test_every_save_the_collaboration_room_makes_is_a_version(tmp_path: Path) -> None:
    typed = [f"print('edit {n}')" for n in range(1, 6)]
    with collaborative_server(tmp_path) as server:
        server.save(PATH, notebook("initial"))
        with SharedNotebook(server, PATH) as shared:
            assert shared.source() == INITIAL
            for text in typed:
                shared.type(text)
                # Typing goes on about once a second, whatever the room saves meanwhile.
                shared.listen(1.0)
            wait_on_disk(server, typed[-1])
            sources = archived_sources(server)
            checkpoints = server.api("GET", f"/api/contents/{PATH}/checkpoints")
            assert checkpoints.status_code == 200, checkpoints.text
        # jupyter_server_ydoc logs this just before each contents_manager.save of the room.
        room_saves = server.log().count(f"Saving file: {PATH}")
        assert bookstore_problems(server.log()) == []

    # The room saved by itself, through the contents manager; bookstore archived every save.
    assert 1 <= room_saves <= len(typed)
    assert len(sources) == 1 + room_saves, sources
    # Each version is a state the document had, in the order it had them, the last one last.
    history = [INITIAL, *typed]
    assert set(sources) <= set(history), sources
    positions = [history.index(source) for source in sources]
    assert positions == sorted(set(positions)), sources
    assert (sources[0], sources[-1]) == (INITIAL, typed[-1])
    # JupyterLab's checkpoint picker lists the same versions.
    assert [c["id"] for c in checkpoints.json()] == [str(n) for n in range(1, len(sources) + 1)]


def test_a_checkpoint_restore_reaches_the_shared_document_and_stays(tmp_path: Path) -> None:
    with collaborative_server(tmp_path) as server:
        server.save(PATH, notebook("initial"))
        with SharedNotebook(server, PATH) as shared:
            for text in ("first draft", "second draft"):
                shared.type(text)
                wait_on_disk(server, text)
            assert archived_sources(server) == [INITIAL, "first draft", "second draft"]

            restored = server.api("POST", f"/api/contents/{PATH}/checkpoints/2")
            assert restored.status_code == 204, restored.text
            wait_for(
                lambda: shared.source() == "first draft",
                what="the restored version in the shared document",
            )
            assert on_disk(server) == "first draft"
            assert archived_sources(server)[-1] == "first draft"

            # Had the room written its stale "second draft" back, that write would be a
            # version between the restore and the next edit.
            shared.type("after the restore")
            wait_on_disk(server, "after the restore")
            assert archived_sources(server) == [
                INITIAL,
                "first draft",
                "second draft",
                "first draft",
                "after the restore",
            ]
            assert shared.source() == "after the restore"
        assert bookstore_problems(server.log()) == []
