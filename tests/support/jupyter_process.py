"""A real ``jupyter server`` subprocess for tests, and helpers to save notebooks over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat
import requests

from tests.support.moto_server import free_port

__all__ = ["JupyterServer", "notebook", "wait_for"]

START_TIMEOUT = 60.0
_UNNEEDED_EXTENSIONS = (
    "jupyterlab",
    "notebook",
    "notebook_shim",
    "jupyter_lsp",
    "jupyter_server_terminals",
)


def wait_for(
    condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def notebook(text: str, cells: int = 1) -> dict[str, Any]:
    """A valid notebook whose bytes depend only on ``text`` and ``cells``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"print({text!r}, {i})", id=f"cell-{i}") for i in range(cells)
    ]
    return dict(nb)


class JupyterServer:
    """One ``jupyter server`` process with an isolated root, config and data directory.

    ``bookstore=False`` starts the same server with the extension disabled, as
    a baseline for benchmarks.
    """

    def __init__(
        self,
        base: Path,
        *,
        env: Mapping[str, str] | None = None,
        bookstore: bool = True,
        port: int | None = None,
        args: Sequence[str] = (),
        app: str | None = None,
    ) -> None:
        self.base = base
        self.root = base / "root"
        self.data_dir = base / "data"
        self.config_dir = base / "config"
        self.log_file = base / "server.log"
        self.port = port or free_port()
        self.token = uuid.uuid4().hex
        self.extra_env = dict(env or {})
        self.bookstore = bookstore
        self.args = list(args)
        self.app = app
        """``lab`` or ``notebook``: run ``jupyter <app>`` as people do, with its own
        extensions, instead of a bare ``jupyter_server``."""
        self.process: subprocess.Popen[bytes] | None = None
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.token}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "bookstore" / "store"

    @property
    def index_file(self) -> Path:
        return self.data_dir / "bookstore" / "index.sqlite"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "bookstore" / "outbox"

    def start(self) -> JupyterServer:
        for directory in (self.root, self.data_dir, self.config_dir):
            directory.mkdir(parents=True, exist_ok=True)
        extensions = {"bookstore": self.bookstore}
        if self.app is None:
            extensions |= dict.fromkeys(_UNNEEDED_EXTENSIONS, False)
        config = {"ServerApp": {"jpserver_extensions": extensions}}
        (self.config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(self.config_dir),
            "JUPYTER_DATA_DIR": str(self.data_dir),
            "JUPYTER_RUNTIME_DIR": str(self.base / "runtime"),
            "JUPYTER_PLATFORM_DIRS": "1",
            **self.extra_env,
        }
        program = (
            [str(Path(sys.executable).with_name("jupyter")), self.app]
            if self.app
            else [sys.executable, "-m", "jupyter_server"]
        )
        command = [
            *program,
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True",
            *self.args,
        ]
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        wait_for(self._answers, timeout=START_TIMEOUT, what=f"jupyter server on {self.url}")
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"jupyter server exited early:\n{self.log()}")
        try:
            return self.session.get(f"{self.url}/api/status", timeout=2).ok
        except requests.ConnectionError:
            return False

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self, timeout: float = 30.0) -> int:
        """Stop as a service manager would (SIGTERM runs the shutdown hooks); return the code."""
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.process = None
        return code

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, as in a crash or an OOM kill."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.process = None

    def __enter__(self) -> JupyterServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.url}{path}", timeout=60, **kwargs)

    def mkdir(self, path: str) -> None:
        """Create a directory through the contents API."""
        response = self.api("PUT", f"/api/contents/{path}", json={"type": "directory"})
        assert response.status_code in (200, 201), response.text

    def save(self, path: str, content: dict[str, Any], kind: str = "notebook") -> dict[str, Any]:
        """Save through the contents API as JupyterLab does; fail the test if the save fails."""
        body = {
            "type": kind,
            "format": "json" if kind == "notebook" else "text",
            "content": content,
        }
        response = self.api("PUT", f"/api/contents/{path}", json=body)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    def status(self) -> dict[str, Any]:
        response = self.api("GET", "/api/bookstore")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_archived(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until archiving has begun and the backlog is empty."""

        def drained() -> dict[str, Any] | None:
            status = self.status()
            archive = status["archive"]
            return status if archive["ready"] and archive["backlog"] == 0 else None

        return dict(wait_for(drained, timeout=timeout, what="the archive backlog to drain"))
