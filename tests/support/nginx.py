"""Debian's nginx as the load balancer in front of archive service replicas."""

from __future__ import annotations

import shutil
from pathlib import Path

import requests

from tests.support.moto_server import free_port
from tests.support.processes import ServerProcess

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


class LoadBalancer(ServerProcess):
    """One nginx process spreading requests over ``upstreams`` (host:port each)."""

    name = "nginx"
    log_name = "error.log"

    def __init__(self, base: Path, upstreams: list[str]) -> None:
        super().__init__(base)
        self.port = free_port()
        self.upstreams = upstreams

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> tuple[list[str], dict[str, str] | None]:
        servers = "\n".join(f"        server {upstream};" for upstream in self.upstreams)
        config = self.base / "nginx.conf"
        config.write_text(CONFIG.format(base=self.base, servers=servers, port=self.port))
        return [nginx(), "-c", str(config), "-p", str(self.base), "-g", "daemon off;"], None

    def ready(self) -> bool:
        requests.get(self.url, timeout=2)  # any answer: nginx listens
        return True
