"""Who may use the history API, and what hostile input cannot make it do, on real servers.

* every endpoint (bookstore's and the checkpoints it serves): anonymous -> 403,
  token -> served, browser session -> served, but only with the XSRF token
  for anything but GET, a refusing authorizer -> 403;
* no handler loads without authentication (an auth warning fails the start);
* hostile paths never cause a 5xx, a write outside the root, or another
  path's history;
* S3 credentials appear in no answer and no log line, even when S3 fails.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jupyter_server.serverapp import ServerWebApplication

from bookstore.server.handlers import VersionsHandler, handlers
from tests.support.archives import index_rows
from tests.support.jupyter_process import JupyterServer, notebook, wait_for
from tests.support.moto_server import MotoServer, s3_env
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[1]

AUTH_WARNINGS_ARE_ERRORS = """\
# Written by tests/test_security.py: an auth warning while handlers load fails the start.
import sys
import warnings

from jupyter_server.utils import JupyterServerAuthWarning

warnings.simplefilter("error", JupyterServerAuthWarning)
print("test_security: JupyterServerAuthWarning is an error", file=sys.stderr)
"""

#: Paths with history on the main server, and how many versions each has.
HISTORIES = {
    "m.ipynb": 2,
    "a.ipynb": 2,
    "a b.ipynb": 1,
    "a@b.ipynb": 1,
    "a%40b.ipynb": 1,
    "\u00e9.ipynb": 1,  # NFC; its NFD spelling is another path
    "dir/a.ipynb": 1,
}

HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# -- servers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """The main server: jupyter_server's default settings, local store, HISTORIES saved.

    Defaults matter: with ``allow_unauthenticated_access`` left True, only
    bookstore's own decorators keep anonymous requests out.
    Its root sits two directories below the watched temp directory, so a ``..``
    that escaped would land where ``tree_outside_root`` looks.
    """
    base = tmp_path_factory.mktemp("security") / "outer" / "server"
    with JupyterServer(base) as server:
        server.mkdir("dir")
        for path, count in HISTORIES.items():
            for n in range(count):
                server.save(quote(path), notebook(f"{path} v{n + 1}", cells=n + 1))
        server.wait_archived()
        yield server


@pytest.fixture(scope="module")
def browser(server: JupyterServer) -> requests.Session:
    """A session logged in through /login with the token, as a person in a browser is."""
    session = requests.Session()
    assert session.get(f"{server.url}/login", timeout=30).status_code == 200
    login = session.post(
        f"{server.url}/login",
        data={"password": server.token, "_xsrf": session.cookies["_xsrf"]},
        allow_redirects=False,
        timeout=30,
    )
    assert login.status_code == 302, login.text
    assert any(cookie.name.startswith("username-") for cookie in session.cookies)
    return session


class RefusedServer(JupyterServer):
    """A server whose authorizer refuses even ``/api/status``: a 403 there means it is up."""

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"jupyter server exited early:\n{self.log()}")
        try:
            return self.session.get(f"{self.url}/api/status", timeout=2).status_code == 403
        except requests.ConnectionError:
            return False


@pytest.fixture(scope="module")
def refusing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """A server whose authorizer refuses everything, and that is strict about auth at load.

    jupyter_server 2.21 only checks extension handlers for a missing
    ``@web.authenticated`` when ``allow_unauthenticated_access`` is False, and
    then only warns (``JupyterServerAuthWarning``). Python ignores
    ``PYTHONWARNINGS=error::jupyter_server.utils.JupyterServerAuthWarning``
    ("invalid module name": it cannot import the module that early), so a
    config file makes the warning an error, and a failing extension fails the start.
    """
    base = tmp_path_factory.mktemp("refusing")
    (base / "config").mkdir(parents=True)
    (base / "config" / "jupyter_server_config.py").write_text(AUTH_WARNINGS_ARE_ERRORS)
    python_path = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    server = RefusedServer(
        base,
        env={"PYTHONPATH": python_path},
        args=[
            "--ServerApp.authorizer_class=tests.support.deny_authorizer.DenyAllAuthorizer",
            "--ServerApp.allow_unauthenticated_access=False",
            "--ServerApp.reraise_server_extension_failures=True",
        ],
    )
    with server:
        yield server


# -- the endpoints ---------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    url: str
    served: int
    action: str
    resource: str
    #: When being served means bookstore's own refusal: words of its message.
    refusal: str = ""

    def was_served(self, response: requests.Response) -> bool:
        if response.status_code != self.served:
            return False
        return not self.refusal or self.refusal in response.json()["message"]


ENDPOINTS = {
    "status": Endpoint("GET", "/api/bookstore", 200, "read", "bookstore"),
    "versions": Endpoint("GET", "/api/bookstore/versions/m.ipynb", 200, "read", "contents"),
    "content": Endpoint("GET", "/api/bookstore/content/1/m.ipynb", 200, "read", "contents"),
    "restore": Endpoint("POST", "/api/bookstore/restore/1/m.ipynb", 200, "write", "contents"),
    "diff": Endpoint("GET", "/api/bookstore/diff/1/m.ipynb?to=2", 200, "read", "contents"),
    "unlabel": Endpoint("DELETE", "/api/bookstore/label/1/m.ipynb", 200, "write", "contents"),
    "pin": Endpoint("PUT", "/api/bookstore/pin/1/m.ipynb", 200, "write", "contents"),
    "unpin": Endpoint("DELETE", "/api/bookstore/pin/1/m.ipynb", 200, "write", "contents"),
    "checkpoints-list": Endpoint(
        "GET", "/api/contents/m.ipynb/checkpoints", 200, "read", "contents"
    ),
    "checkpoints-create": Endpoint(
        "POST", "/api/contents/m.ipynb/checkpoints", 201, "write", "contents"
    ),
    "checkpoints-restore": Endpoint(
        "POST", "/api/contents/m.ipynb/checkpoints/1", 204, "write", "contents"
    ),
    "checkpoints-delete": Endpoint(
        "DELETE",
        "/api/contents/m.ipynb/checkpoints/1",
        403,
        "write",
        "contents",
        refusal="bookstore keeps every version",
    ),
}


def versions_of(server: JupyterServer, path: str) -> dict[int, str]:
    """{version: sha256} of ``path``, read from the index file, not through the API."""
    return {number: sha256 for name, number, _, _, sha256 in index_rows(server) if name == path}


def state(server: JupyterServer) -> tuple[bytes, dict[int, str]]:
    """What a refused request must not change: m.ipynb and its history (once archived)."""
    server.wait_archived()
    return (server.root / "m.ipynb").read_bytes(), versions_of(server, "m.ipynb")


# -- who may -------------------------------------------------------------------------


def _anonymous(server: JupyterServer, who: str) -> tuple[requests.Session, dict[str, str]]:
    session = requests.Session()
    if who == "wrong-token":
        return session, {"Authorization": "token not-the-servers-token"}
    if who == "genuine-xsrf-pair":
        # A real XSRF cookie and header: the XSRF check passes, authentication must not.
        session.get(f"{server.url}/login", timeout=30)
        return session, {"X-XSRFToken": session.cookies["_xsrf"]}
    return session, {}


@pytest.mark.parametrize("who", ["nobody", "wrong-token", "genuine-xsrf-pair"])
@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_anonymous_requests_are_forbidden_and_change_nothing(
    server: JupyterServer, name: str, who: str
) -> None:
    endpoint = ENDPOINTS[name]
    before = state(server) if endpoint.method != "GET" else None
    session, headers = _anonymous(server, who)
    response = session.request(
        endpoint.method,
        f"{server.url}{endpoint.url}",
        headers=headers,
        allow_redirects=False,
        timeout=60,
    )
    assert response.status_code == 403, response.text
    assert "bookstore keeps" not in response.text  # refused before bookstore was asked
    if before is not None:
        assert state(server) == before


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_token_requests_are_served(server: JupyterServer, name: str) -> None:
    endpoint = ENDPOINTS[name]
    response = server.api(endpoint.method, endpoint.url, allow_redirects=False)
    assert endpoint.was_served(response), (response.status_code, response.text)


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_a_browser_session_needs_the_xsrf_token_for_all_but_get(
    server: JupyterServer, browser: requests.Session, name: str
) -> None:
    endpoint = ENDPOINTS[name]
    url = f"{server.url}{endpoint.url}"
    if endpoint.method == "GET":
        response = browser.get(url, allow_redirects=False, timeout=60)
        assert endpoint.was_served(response), (response.status_code, response.text)
        return
    before = state(server)
    wrong = "2|00000000|00000000000000000000000000000000|1700000000"
    for headers in ({}, {"X-XSRFToken": wrong}):
        refused = browser.request(endpoint.method, url, headers=headers, timeout=60)
        assert refused.status_code == 403, refused.text
        assert "xsrf" in refused.json()["message"].lower()
    assert state(server) == before
    served = browser.request(
        endpoint.method, url, headers={"X-XSRFToken": browser.cookies["_xsrf"]}, timeout=60
    )
    assert endpoint.was_served(served), (served.status_code, served.text)


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_an_authorizer_that_refuses_is_obeyed_by_every_endpoint(
    refusing_server: JupyterServer, name: str
) -> None:
    endpoint = ENDPOINTS[name]
    logged = len(refusing_server.log())
    response = refusing_server.api(endpoint.method, endpoint.url, allow_redirects=False)
    assert response.status_code == 403, response.text
    assert "bookstore keeps" not in response.text
    asked = refusing_server.log()[logged:]
    assert f"deny-authorizer: refused {endpoint.action} on {endpoint.resource}" in asked, asked


def test_no_handler_loads_without_authentication(refusing_server: JupyterServer) -> None:
    log = refusing_server.log()
    marker = "test_security: JupyterServerAuthWarning is an error"
    assert marker in log  # the warning really was an error in that process
    assert "bookstore | extension was successfully loaded." in log
    assert "JupyterServerAuthWarning" not in log.replace(marker, "")
    assert "endpoints without" not in log
    assert "without authentication" not in log


def test_the_load_time_check_passes_bookstore_and_would_catch_a_careless_handler() -> None:
    check = ServerWebApplication._check_handler_auth
    for pattern, handler in handlers:
        assert check(None, pattern, handler) == [], handler  # type: ignore[arg-type]

    class Careless(VersionsHandler):
        async def get(self, path: str) -> None:  # no @web.authenticated
            self.finish({})

    assert check(None, "/careless", Careless)  # type: ignore[arg-type]


# -- hostile paths ---------------------------------------------------------------

#: Raw URL path segments (already as a client would send them).
RAW_SEGMENTS = [
    "a.ipynb",
    "a.ipynb2",
    "a.ipynb%32",
    "A.ipynb",
    "a%20b.ipynb",
    "a+b.ipynb",
    "a@b.ipynb",
    "a%40b.ipynb",
    "a%2540b.ipynb",
    "%C3%A9.ipynb",
    "e%CC%81.ipynb",
    "dir",
    "dir%2Fa.ipynb",
    "..",
    ".",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e",
    "%00",
    "a.ipynb%00",
    "%5c",
    "..%5c..",
    "%5C..%5Ca.ipynb",
    "..\\a.ipynb",
    "%2f",
    "%2F..%2F",
    "~",
    "etc",
    "passwd",
    "%FF",
    "%C0%AE%C0%AE",
    "%E2%80%AE",
    "a.ipynb;x",
    "a.ipynb%3F",
    "%23",
    "%25",
    "%252e%252e",
]

_segment = st.one_of(
    st.sampled_from(RAW_SEGMENTS),
    st.builds(
        quote, st.text(min_size=1, max_size=12), safe=st.sampled_from(["", "/", "./\\", "@~"])
    ),
    st.integers(100, 3000).map(lambda n: "a" * n + ".ipynb"),
)
#: Mostly routed: a leading or trailing slash leaves the bookstore routes (404, redirect).
_mostly_empty = st.sampled_from(["", "", "", "/"])
raw_paths = st.builds(
    lambda lead, parts, trail: lead + "/".join(parts) + trail,
    _mostly_empty,
    st.lists(_segment, min_size=1, max_size=5),
    _mostly_empty,
)


def is_plain(path: str) -> bool:
    """A path that names a file under the root and nothing else.

    A backslash is an ordinary character in a POSIX file name, not a separator.
    """
    parts = path.split("/")
    return bool(path) and all(part not in ("", ".", "..") for part in parts) and "\0" not in path


def raw_request(server: JupyterServer, method: str, target: str) -> tuple[int, Any, bytes]:
    """Send ``target`` byte for byte (requests would resolve ``..`` before sending)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request(
            method,
            target,
            body=b"" if method == "POST" else None,
            headers={"Authorization": f"token {server.token}"},
        )
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def tree_outside_root(server: JupyterServer) -> set[str]:
    """Every file and directory near the server but outside its root and data."""
    watched = server.base.parent.parent
    skipped = {server.root, server.data_dir, server.base / "runtime"}
    found = {f"{watched.parent}/{name}" for name in os.listdir(watched.parent)}
    for directory, subdirectories, files in os.walk(watched):
        subdirectories[:] = [d for d in subdirectories if Path(directory, d) not in skipped]
        found.update(os.path.join(directory, name) for name in [*subdirectories, *files])
    return found


def assert_store_holds_only_versions(server: JupyterServer) -> None:
    store = server.store_dir.resolve()
    for item in store.rglob("*"):
        assert item.resolve().is_relative_to(store), item
        parts = item.relative_to(store).parts
        assert parts[0] in ("data", "meta", "tmp"), item
        assert parts[0] == "tmp" or len(parts) == 1 or parts[1] == "files", item


@example(endpoint="versions", version=1, raw="a.ipynb2")
@example(endpoint="content", version=1, raw="a.ipynb2")
@example(endpoint="content", version=1, raw="A.ipynb")
@example(endpoint="content", version=1, raw="a+b.ipynb")
@example(endpoint="content", version=1, raw="a%2540b.ipynb")
@example(endpoint="content", version=1, raw="a%40b.ipynb")
@example(endpoint="content", version=1, raw="e%CC%81.ipynb")
@example(endpoint="versions", version=1, raw="%2e%2e/%2e%2e/%2e%2e/etc/passwd")
@example(endpoint="content", version=1, raw="..%2F..%2Fa.ipynb")
@example(endpoint="diff", version=1, raw="a.ipynb%00")
@example(endpoint="restore", version=1, raw="dir%2Fa.ipynb")
@example(endpoint="restore", version=1, raw="..%5Ca.ipynb")
@example(endpoint="versions", version=1, raw="a" * 5000 + ".ipynb")
@HYPOTHESIS
@given(
    endpoint=st.sampled_from(["versions", "content", "diff", "restore"]),
    version=st.sampled_from([1, 2, 3]),
    raw=raw_paths,
)
def check_hostile_url_path(server: JupyterServer, endpoint: str, version: int, raw: str) -> None:
    if endpoint == "versions":
        method, target = "GET", f"/api/bookstore/versions/{raw}"
    else:
        method = "POST" if endpoint == "restore" else "GET"
        target = f"/api/bookstore/{endpoint}/{version}/{raw}"
    status, headers, body = raw_request(server, method, target)
    assert status < 500, (target, status, body[:300])
    if status != 200:
        return
    name = unquote_to_bytes(raw).decode("utf-8").strip("/")  # what the server must have read
    assert is_plain(name), (target, name)
    history = versions_of(server, name)
    if endpoint == "content":
        digest = headers["X-Bookstore-Sha256"]
        assert hashlib.sha256(body).hexdigest() == digest == history[version], target
        return
    answer = json.loads(body)
    assert answer["path"] == name
    if endpoint == "versions":
        for item in answer["versions"]:
            assert (item["path"], item["sha256"]) == (name, history[item["version"]]), target
    elif endpoint == "diff":
        assert answer["from"] == version
    else:
        assert (answer["version"], answer["target"]) == (version, name)


def test_hostile_paths_in_urls_write_nothing_outside_the_root(server: JupyterServer) -> None:
    before = tree_outside_root(server)
    check_hostile_url_path(server)
    assert tree_outside_root(server) == before
    assert_store_holds_only_versions(server)


TARGET_PARTS = [
    "..",
    ".",
    "",
    "a.ipynb",
    "a.ipynb2",
    "x.ipynb",
    "\\",
    "..\\..",
    "\0",
    "~",
    "etc",
    "dir",
    "\u00e9",
    "e\u0301",
    "%2e%2e",
    "a b.ipynb",
    "$HOME",
    "x" * 300,
]
restore_targets = st.one_of(
    st.builds(
        lambda lead, parts: lead + "/".join(parts),
        st.sampled_from(["", "/", "//"]),
        st.lists(
            st.one_of(st.sampled_from(TARGET_PARTS), st.text(min_size=1, max_size=10)),
            min_size=1,
            max_size=4,
        ),
    ),
    st.text(max_size=30),
)


def landing_places(root: Path, target: str) -> list[str]:
    """Where a file for ``target`` could land if it were resolved rather than refused."""
    if "\0" in target:
        return []
    spellings = {target, target.replace("\\", "/")}
    places = set()
    for spelling in spellings:
        places.add(os.path.normpath(os.path.join(root, spelling)))  # absolute stays absolute
        places.add(os.path.normpath(os.path.join(root, spelling.lstrip("/"))))
    return sorted(places)


def _inside(place: str, root: Path) -> bool:
    return place.startswith(f"{root}{os.sep}")


@example(target="../escaped.ipynb", overwrite=True)
@example(target="/tmp/escaped.ipynb", overwrite=True)
@example(target="..\\escaped.ipynb", overwrite=True)
@example(target="dir/../../escaped.ipynb", overwrite=True)
@example(target="a.ipynb\0.txt", overwrite=True)
@example(target="a.ipynb2", overwrite=False)
@HYPOTHESIS
@given(target=restore_targets, overwrite=st.booleans())
def check_hostile_restore_target(server: JupyterServer, target: str, overwrite: bool) -> None:
    root = server.root
    places = {place: os.path.lexists(place) for place in landing_places(root, target)}
    response = server.api(
        "POST",
        "/api/bookstore/restore/1/a.ipynb",
        json={"target": target, "overwrite": overwrite},
    )
    assert response.status_code < 500, (target, response.status_code, response.text[:300])
    if response.status_code == 200:
        written = response.json()["target"]
        assert written == (target.strip("/") if target else "a.ipynb")
        assert is_plain(written)
        file = root / written
        assert file.resolve().is_relative_to(root.resolve())
        expected = versions_of(server, "a.ipynb")[1]
        assert hashlib.sha256(file.read_bytes()).hexdigest() == expected
    for place, existed in places.items():
        if not existed and not (_inside(place, root) and response.status_code == 200):
            assert not os.path.lexists(place), (target, response.status_code, place)


def test_hostile_restore_targets_write_nothing_outside_the_root(server: JupyterServer) -> None:
    before = tree_outside_root(server)
    check_hostile_restore_target(server)
    assert tree_outside_root(server) == before
    assert_store_holds_only_versions(server)


# -- specific hostile requests (each was a 5xx or a silent write) -------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/api/bookstore/versions/a.ipynb?limit=%C2%B2"),  # "²".isdigit() is True
        ("GET", "/api/bookstore/versions/a.ipynb?offset=%C2%B2"),
        ("GET", "/api/bookstore/diff/1/a.ipynb?to=%C2%B2"),
        ("GET", "/api/bookstore/content/99999999999999999999/a.ipynb"),  # > SQLite INTEGER
        ("GET", "/api/bookstore/diff/99999999999999999999/a.ipynb"),
        ("GET", "/api/bookstore/diff/1/a.ipynb?to=99999999999999999999"),
        ("POST", "/api/bookstore/restore/99999999999999999999/a.ipynb"),
    ],
)
def test_odd_numbers_are_client_errors(server: JupyterServer, method: str, url: str) -> None:
    response = server.api(method, url)
    assert response.status_code in (400, 404), (response.status_code, response.text)


@pytest.mark.parametrize(
    "target",
    ["missing/x.ipynb", "a.ipynb/x.ipynb", "dir", "x" * 300 + ".ipynb"],
    ids=["folder-missing", "under-a-file", "a-folder", "name-too-long"],
)
def test_restore_targets_that_cannot_be_written_are_client_errors(
    server: JupyterServer, target: str
) -> None:
    response = server.api(
        "POST", "/api/bookstore/restore/1/a.ipynb", json={"target": target, "overwrite": True}
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert str(server.root) not in response.text  # no server file-system paths in answers


@pytest.mark.parametrize("target", [".hidden.ipynb", "dir/.hidden.ipynb"])
def test_restore_refuses_hidden_targets_as_the_contents_api_does(
    server: JupyterServer, target: str
) -> None:
    model = {"type": "notebook", "format": "json", "content": notebook("hidden")}
    assert server.api("PUT", f"/api/contents/{quote(target)}", json=model).status_code == 400
    response = server.api("POST", "/api/bookstore/restore/1/a.ipynb", json={"target": target})
    assert response.status_code == 400, (response.status_code, response.text)
    assert not (server.root / target).exists()


@pytest.mark.parametrize(
    "target", [5, True, ["x.ipynb"], {"path": "x.ipynb"}], ids=["int", "bool", "list", "dict"]
)
def test_restore_target_must_be_a_string(server: JupyterServer, target: Any) -> None:
    before = set(os.listdir(server.root))
    response = server.api("POST", "/api/bookstore/restore/1/a.ipynb", json={"target": target})
    assert response.status_code == 400, (response.status_code, response.text)
    assert set(os.listdir(server.root)) == before


# -- credentials -------------------------------------------------------------------

SENTINEL_KEY = "AKIASENTINEL0000001"
SENTINEL_SECRET = "sentinel-secret-do-not-leak-123456"


def test_s3_credentials_never_leak(
    tmp_path: Path, moto_server: MotoServer, s3_bucket: str, s3_proxy: TcpProxy
) -> None:
    server = JupyterServer(
        tmp_path,
        env={
            **s3_env(
                s3_bucket,
                s3_proxy.endpoint_url,
                access_key_id=SENTINEL_KEY,
                secret_access_key=SENTINEL_SECRET,
            ),
            "BOOKSTORE_RETRY_MAX_DELAY": "1",
        },
        args=["--ServerApp.log_level=DEBUG"],
    )
    seen: list[str] = []
    last_errors: list[str] = []

    def drive() -> list[int]:
        statuses = []
        for endpoint in ENDPOINTS.values():
            response = server.api(endpoint.method, endpoint.url, allow_redirects=False)
            seen.extend([response.text, json.dumps(dict(response.headers))])
            statuses.append(response.status_code)
        status = server.api("GET", "/api/bookstore")
        seen.append(status.text)
        if status.json()["archive"]["last_error"]:
            last_errors.append(status.json()["archive"]["last_error"])
        return statuses

    def failing() -> bool:
        return bool(server.status()["archive"]["last_error"])

    with server:
        for n in range(2):
            server.save("m.ipynb", notebook(f"s3 v{n + 1}"))
        server.wait_archived()
        assert set(drive()) <= {200, 201, 204, 403}

        with moto_server.enforce_auth():  # S3 now refuses these credentials
            server.save("m.ipynb", notebook("while S3 refuses the credentials"))
            wait_for(failing, what="archiving to fail on refused credentials")
            assert 503 in drive()
        server.wait_archived()

        s3_proxy.set_mode("refuse")  # S3 unreachable: connection refused
        server.save("m.ipynb", notebook("while S3 is unreachable"))
        wait_for(failing, what="archiving to fail on a refused connection")
        assert 503 in drive()
        s3_proxy.set_mode("forward")
        server.wait_archived()

    assert len(last_errors) >= 2, last_errors
    log = server.log()
    assert "could not" in log or "cannot" in log  # the failures were logged
    for secret in (SENTINEL_KEY, SENTINEL_SECRET):
        assert not [text for text in seen if secret in text]
        assert not [error for error in last_errors if secret in error]
        assert secret not in log
