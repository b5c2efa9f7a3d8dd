"""A server process a test starts with a command and waits on until it answers."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import requests
from typing_extensions import Self

from tests.support.jupyter_process import wait_for

__all__ = ["START_TIMEOUT", "ServerProcess"]

START_TIMEOUT = 60.0


class ServerProcess:
    """A server process of the stack: started with a command, ready once its health URL
    answers, stopped with SIGTERM (SIGKILL after 30 s) or killed."""

    name = "a process"
    log_name = "process.log"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> tuple[list[str], dict[str, str] | None]:
        """The program and its arguments, and its environment (``None``: this one's)."""
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether the process answers yet (it is running)."""
        raise NotImplementedError

    def start(self) -> ServerProcess:
        """Start the process, unless it runs already, and wait until it answers."""
        if self.process is not None:
            return self
        self.base.mkdir(parents=True, exist_ok=True)
        command, env = self.command()
        with open(self.base / self.log_name, "ab") as log:
            self.process = subprocess.Popen(command, env=env, cwd=self.base, stdout=log, stderr=log)
        wait_for(self._answers, timeout=START_TIMEOUT, what=f"{self.name} to answer")
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited early:\n{self.log()}")
        try:
            return self.ready()
        except requests.ConnectionError:
            return False

    def log(self) -> str:
        log = self.base / self.log_name
        return log.read_text(errors="replace") if log.exists() else ""

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash or an eviction."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
