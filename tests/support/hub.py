"""A real JupyterHub (with configurable-http-proxy from npm) and real ``bookstore-service``
replicas, each in a process of its own, for the archive service's tests."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from tests.support.jupyter_process import JupyterServer, wait_for
from tests.support.moto_server import free_port
from tests.support.processes import START_TIMEOUT, ServerProcess

__all__ = [
    "ArchiveService",
    "Hub",
    "ServiceApi",
    "configurable_http_proxy",
    "imported_modules",
]

SERVICE = "bookstore"
ACCESS_SCOPE = f"access:services!service={SERVICE}"
REPOSITORY = Path(__file__).resolve().parents[2]


def configurable_http_proxy() -> Path:
    """The proxy npm installed with the front end's dependencies (``package.json``)."""
    program = REPOSITORY / "node_modules" / ".bin" / "configurable-http-proxy"
    assert program.exists(), f"{program} is missing: run `npm install` in {REPOSITORY}"
    return program


class Hub(ServerProcess):
    """One JupyterHub process with its proxy, the archive service registered at
    ``service_url``, and an admin service whose token makes users and their tokens."""

    name = "JupyterHub"
    log_name = "hub.log"

    def __init__(self, base: Path, service_url: str) -> None:
        super().__init__(base)
        self.homes = base / "homes"
        """Where the servers the Hub spawns keep their users' files (``{username}``)."""
        self.port = free_port()
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self.service_url = service_url
        self.service_token = secrets.token_hex(16)
        self.admin_token = secrets.token_hex(16)
        self.admin = requests.Session()
        self.admin.headers["Authorization"] = f"token {self.admin_token}"

    @property
    def url(self) -> str:
        """The proxy's public URL: where users (and their servers' requests) go."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}/hub/api"

    def config(self) -> dict[str, Any]:
        return {
            "JupyterHub": {
                "ip": "127.0.0.1",
                "port": self.port,
                "hub_ip": "127.0.0.1",
                "hub_port": self.hub_port,
                "db_url": f"sqlite:///{self.base / 'jupyterhub.sqlite'}",
                "cookie_secret_file": str(self.base / "cookie_secret"),
                "authenticator_class": "dummy",
                "services": [
                    {"name": SERVICE, "url": self.service_url, "api_token": self.service_token},
                    {"name": "hub-admin", "api_token": self.admin_token},
                ],
                "spawner_class": "simple",
                "load_roles": [
                    {"name": "user", "scopes": ["self", ACCESS_SCOPE]},
                    {
                        "name": "hub-admin",
                        "scopes": ["admin:users", "tokens", "servers"],
                        "services": ["hub-admin"],
                    },
                ],
            },
            # Users' servers as a hub in service mode spawns them: the service's URL
            # and the scope to use it, and no store or index setting.
            "SimpleLocalProcessSpawner": {"home_dir_template": str(self.homes / "{username}")},
            "Spawner": {
                "cmd": [str(Path(sys.executable).with_name("jupyterhub-singleuser"))],
                "args": ["--allow-root"],  # the tests run as root, as CI does
                "environment": {
                    "BOOKSTORE_SERVICE_URL": f"{self.url}/services/{SERVICE}/",
                    "BOOKSTORE_RETRY_INITIAL_DELAY": "0.05",
                    "BOOKSTORE_RETRY_MAX_DELAY": "0.5",
                },
                "server_token_scopes": [
                    "users:activity!user",
                    "access:servers!server",
                    ACCESS_SCOPE,
                ],
                "start_timeout": 60,
                "http_timeout": 60,
            },
            "ConfigurableHTTPProxy": {
                "command": [str(configurable_http_proxy())],
                "api_url": f"http://127.0.0.1:{self.proxy_api_port}",
                "auth_token": secrets.token_hex(16),
            },
        }

    def command(self) -> tuple[list[str], dict[str, str] | None]:
        self.base.mkdir(parents=True, exist_ok=True)
        config_file = self.base / "jupyterhub_config.json"
        config_file.write_text(json.dumps(self.config()))
        return [sys.executable, "-m", "jupyterhub", f"--config={config_file}"], None

    def ready(self) -> bool:
        # The Hub's own port: the proxy routes only once every service was looked for.
        return self.admin.get(f"{self.api_url}/", timeout=2).ok

    def routes_to(self, url: str) -> bool:
        """Whether ``url``, under the proxy, answers (routes are added after the Hub starts)."""
        try:
            return requests.get(f"{self.url}{url}", timeout=2).ok
        except requests.ConnectionError:
            return False

    # -- users and tokens, through the Hub's REST API -------------------------------

    def add_user(self, name: str) -> None:
        response = self.admin.post(f"{self.api_url}/users/{name}", timeout=10)
        assert response.status_code in (201, 409), response.text

    def token(self, user: str, scopes: list[str] | None = None) -> tuple[str, str]:
        """A new API token of ``user`` (with only ``scopes``, if given): (token, its id)."""
        body: dict[str, Any] = {"note": "test"}
        if scopes is not None:
            body["scopes"] = scopes
        response = self.admin.post(f"{self.api_url}/users/{user}/tokens", json=body, timeout=10)
        assert response.status_code == 201, response.text
        made = response.json()
        return made["token"], made["id"]

    def spawn(self, user: str) -> None:
        """Start ``user``'s server, as logging in does, and wait until it is ready."""
        response = self.admin.post(f"{self.api_url}/users/{user}/server", timeout=60)
        assert response.status_code in (201, 202), response.text

        def ready() -> bool:
            model = self.admin.get(f"{self.api_url}/users/{user}", timeout=10).json()
            server = model.get("servers", {}).get("")
            return bool(server and server.get("ready"))

        wait_for(ready, timeout=START_TIMEOUT, what=f"{user}'s server to be ready")

    def revoke(self, user: str, token_id: str) -> None:
        response = self.admin.delete(f"{self.api_url}/users/{user}/tokens/{token_id}", timeout=10)
        assert response.status_code == 204, response.text


class ArchiveService(ServerProcess):
    """One ``bookstore-service`` replica, registered with ``hub`` as the service."""

    name = "bookstore-service"
    log_name = "service.log"

    def __init__(
        self,
        base: Path,
        hub: Hub,
        port: int,
        env: Mapping[str, str],
        args: Sequence[str] = (),
        *,
        wait_for_index: bool = True,
    ) -> None:
        super().__init__(base)
        self.wait_for_index = wait_for_index
        self.hub = hub
        self.port = port
        self.env = dict(env)
        self.args = list(args)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/{SERVICE}"

    def command(self) -> tuple[list[str], dict[str, str] | None]:
        env = {
            **os.environ,
            "JUPYTERHUB_API_TOKEN": self.hub.service_token,
            "JUPYTERHUB_API_URL": self.hub.api_url,
            "JUPYTERHUB_SERVICE_NAME": SERVICE,
            "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{self.port}",
            "JUPYTERHUB_SERVICE_PREFIX": f"/services/{SERVICE}/",
            **self.env,
        }
        return [str(Path(sys.executable).with_name("bookstore-service")), *self.args], env

    def ready(self) -> bool:
        """Answering, with its index prepared (or only answering, without ``wait_for_index``)."""
        answer = requests.get(f"{self.url}/api/health", timeout=2)
        return answer.ok and (answer.json()["ready"] or not self.wait_for_index)


class ServiceApi:
    """The archive service's API through the Hub's proxy, with a token for each user."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.api = f"{hub.url}/services/{SERVICE}/api"
        self.tokens: dict[str, str] = {}

    def token(self, user: str) -> str:
        """A token of ``user`` with the Hub's default scopes (the service's access among them)."""
        if user not in self.tokens:
            self.hub.add_user(user)
            self.tokens[user] = self.hub.token(user)[0]
        return self.tokens[user]

    def get(self, token: str, endpoint: str, **params: Any) -> requests.Response:
        return requests.get(
            f"{self.api}/{endpoint}",
            params=params,
            headers={"Authorization": f"token {token}"},
            timeout=30,
        )

    def versions(self, user: str, path: str) -> list[tuple[int, bytes]]:
        """Every version of ``user``'s ``path``: its number and its bytes, oldest first."""
        token = self.token(user)
        listed = self.get(token, "versions", path=path).json()["versions"]
        return [
            (row["version"], self.get(token, "content", path=path, version=row["version"]).content)
            for row in listed
        ]

    def run_cli(self, cwd: Path, token: str | None, *args: str) -> subprocess.CompletedProcess[str]:
        """``bookstore-history`` as a user runs it on their own machine, pointed at the hub
        with ``token`` (none: without one)."""
        cli = shutil.which("bookstore-history", path=str(Path(sys.executable).parent))
        assert cli is not None
        env = {
            name: value for name, value in os.environ.items() if not name.startswith("BOOKSTORE")
        }
        env.pop("JUPYTERHUB_API_TOKEN", None)
        env["BOOKSTORE_SERVICE_URL"] = f"{self.hub.url}/services/{SERVICE}/"
        env["JUPYTER_CONFIG_DIR"] = str(cwd / ".jupyter")
        if token is not None:
            env["JUPYTERHUB_API_TOKEN"] = token
        return subprocess.run(
            [cli, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    def service_mode_server(
        self, base: Path, user: str, service_url: str | None = None
    ) -> JupyterServer:
        """A ``jupyter server`` of ``user`` pushing to the service through the Hub's proxy
        (or to ``service_url``), as the Hub's spawner sets it up; it logs every module it
        imports."""
        env = {
            "BOOKSTORE_SERVICE_URL": service_url or f"{self.hub.url}/services/{SERVICE}/",
            "JUPYTERHUB_API_TOKEN": self.token(user),
            "JUPYTERHUB_USER": user,
            "PYTHONPROFILEIMPORTTIME": "1",
            # Outages in tests last seconds: retry within a second, not 30.
            "BOOKSTORE_RETRY_INITIAL_DELAY": "0.05",
            "BOOKSTORE_RETRY_MAX_DELAY": "0.5",
        }
        return JupyterServer(base, env=env)


def imported_modules(server: JupyterServer) -> set[str]:
    """The top-level packages a server imported (``-X importtime`` lines in its log)."""
    found = set()
    for line in server.log().splitlines():
        if line.startswith("import time:") and "|" in line:
            found.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return found
