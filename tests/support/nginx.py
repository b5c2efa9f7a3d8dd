"""Debian's nginx as the load balancer in front of archive service replicas."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import requests

from tests.support.jupyter_process import wait_for
from tests.support.moto_server import free_port

__all__ = ["LoadBalancer"]

CONFIG = """
worker_processes 1;
error_log {base}/error.log;
pid {base}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log {base}/access.log;
    client_body_temp_path {base}/body;
    proxy_temp_path {base}/proxy;
    client_max_body_size 0;
    # Bodies stream through: no temporary files, which nginx's unprivileged worker
    # could not write under a directory the tests made as root.
    proxy_request_buffering off;
    proxy_buffering off;
    upstream replicas {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://replicas;
            proxy_set_header Host $http_host;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_connect_timeout 2s;
        }}
    }}
}}
"""


def nginx() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    assert found, "nginx is not installed (apt-get install -y nginx)"
    return found


class LoadBalancer:
    """One nginx process spreading requests over ``upstreams`` (host:port each)."""

    def __init__(self, base: Path, upstreams: list[str]) -> None:
        self.base = base
        self.port = free_port()
        self.upstreams = upstreams
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoadBalancer:
        self.base.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"        server {upstream};" for upstream in self.upstreams)
        config = self.base / "nginx.conf"
        config.write_text(CONFIG.format(base=self.base, servers=servers, port=self.port))
        self.process = subprocess.Popen(
            [nginx(), "-c", str(config), "-p", str(self.base), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._listening, timeout=30, what=f"nginx on {self.url}")
        return self

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"nginx exited: {(self.base / 'error.log').read_text()}")
        try:
            requests.get(self.url, timeout=2)
        except requests.ConnectionError:
            return False
        return True

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def __enter__(self) -> LoadBalancer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
