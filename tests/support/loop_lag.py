"""A loop-lag probe inside a real ``jupyter server``, loaded as a server extension.

A task sleeps 10 ms at a time on the server's event loop and records how late
each wake-up is. ``GET /api/loop-lag`` reports the worst since the last
``POST /api/loop-lag`` (which starts the probe and resets it).

The lag it counts is the server's own: a wake-up that is late while the process
did no work (the machine gave its CPUs to other processes, as on a busy CI
runner) is not bookstore's doing, so each wake-up's lateness is capped by the
CPU time the whole process used meanwhile (``time.process_time``, every thread:
a worker thread that holds the interpreter lock delays the loop too).

Load it with ``loop_lag_config(server)`` before the server starts; measure with
``LoopLag.during(server, action)``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from tests.support.jupyter_process import JupyterServer, wait_for

__all__ = ["INTERVAL", "LoopLag", "loop_lag_config"]

INTERVAL = 0.010
"""The probe's period: it expects to wake every 10 ms."""

_SETTINGS_KEY = "loop_lag_probe"
_ROUTE = "/api/loop-lag"


class LoopLag(NamedTuple):
    """The worst lateness of the probe's wake-ups over one measurement, in milliseconds."""

    worst_ms: float
    """Capped by the process's CPU time: the lag the server's own work caused."""
    worst_wall_ms: float
    """As the clock on the wall saw it, whatever else the machine was doing."""
    samples: int

    @classmethod
    def read(cls, server: JupyterServer) -> LoopLag:
        answer = server.api("GET", _ROUTE)
        assert answer.status_code == 200, answer.text
        return cls(**answer.json())

    @classmethod
    def during(cls, server: JupyterServer, action: Callable[[], Any]) -> LoopLag:
        """The server's loop lag while ``action`` runs (from the test process)."""
        assert server.api("POST", _ROUTE).status_code == 204
        wait_for(lambda: cls.read(server).samples >= 5, what="the loop-lag probe to run")
        assert server.api("POST", _ROUTE).status_code == 204
        action()
        # Two wake-ups after it, so that a stall at its very end is counted too.
        done = cls.read(server).samples
        return wait_for(lambda: (lag := cls.read(server)).samples >= done + 2 and lag)

    def __str__(self) -> str:
        return (
            f"worst loop lag {self.worst_ms:.1f} ms "
            f"(wall clock {self.worst_wall_ms:.1f} ms, {self.samples} wake-ups)"
        )


def loop_lag_config(server: JupyterServer) -> None:
    """Make ``server`` load the probe when it starts (call before ``start``)."""
    extra = server.config_dir / "jupyter_server_config.d"
    extra.mkdir(parents=True, exist_ok=True)
    config = {"ServerApp": {"jpserver_extensions": {__name__: True}}}
    (extra / "loop_lag.json").write_text(json.dumps(config))


class _Probe:
    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.reset()

    def reset(self) -> None:
        self.worst = 0.0
        self.worst_wall = 0.0
        self.samples = 0

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            wall, cpu = loop.time(), time.process_time()
            await asyncio.sleep(INTERVAL)
            late = max(0.0, loop.time() - wall - INTERVAL)
            busy = time.process_time() - cpu
            self.worst_wall = max(self.worst_wall, late)
            self.worst = max(self.worst, min(late, busy))
            self.samples += 1


class _ProbeHandler(APIHandler):
    @property
    def probe(self) -> _Probe:
        probe: _Probe = self.settings[_SETTINGS_KEY]
        return probe

    @web.authenticated
    def get(self) -> None:
        self.finish(
            {
                "worst_ms": round(self.probe.worst * 1000, 3),
                "worst_wall_ms": round(self.probe.worst_wall * 1000, 3),
                "samples": self.probe.samples,
            }
        )

    @web.authenticated
    def post(self) -> None:
        self.probe.start()
        self.probe.reset()
        self.set_status(204)
        self.finish()


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": __name__}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    web_app = serverapp.web_app
    web_app.settings[_SETTINGS_KEY] = _Probe()
    route = url_path_join(web_app.settings["base_url"], _ROUTE)
    web_app.add_handlers(".*$", [(route, _ProbeHandler)])
