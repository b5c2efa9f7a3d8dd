"""docs/openapi.yaml is the truth: real requests to a real server, answers checked against it.

One server (archiving to moto S3 through a proxy, so the store can be cut off
for 503s) serves every case; each answer's status must be one the spec lists
for that operation, and its body must match the spec's schema.

That server is a real ``jupyter server`` process (the tests using it are marked
``e2e``) because one process for the whole module is quicker than a server in the
test process for each case: seeding each would cost more than the one start.
"""

from __future__ import annotations

import copy
import hashlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import yaml
from jsonschema import Draft202012Validator
from jupyter_server.base.handlers import APIHandler
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from bookstore.server.handlers import handlers
from tests.support.jupyter_process import JupyterServer, notebook
from tests.support.moto_server import MotoServer, s3_env
from tests.support.tcp_proxy import TcpProxy

DOCS = Path(__file__).resolve().parent.parent / "docs"
SPEC: dict[str, Any] = yaml.safe_load((DOCS / "openapi.yaml").read_text(encoding="utf-8"))
SPEC_URI = "urn:bookstore:openapi"
REGISTRY: Registry[Any] = Registry().with_resource(
    SPEC_URI, Resource.from_contents(SPEC, default_specification=DRAFT202012)
)
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
OPERATIONS: dict[str, tuple[str, str, dict[str, Any]]] = {
    operation["operationId"]: (path, method, operation)
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
    if method in HTTP_METHODS
}


# -- reading the spec ------------------------------------------------------------


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/components/...``) to the object it names."""
    while "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _absolute(schema: Any) -> Any:
    """The schema with local refs made absolute, so they resolve inside the spec."""
    if isinstance(schema, dict):
        return {
            key: f"{SPEC_URI}{value}"
            if key == "$ref" and isinstance(value, str) and value.startswith("#")
            else _absolute(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute(item) for item in schema]
    return schema


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """Raise ``ValidationError`` unless ``instance`` matches ``schema`` (a spec schema)."""
    validator = Draft202012Validator(
        _absolute(copy.deepcopy(schema)),
        registry=REGISTRY,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    validator.validate(instance)


def assert_request_matches_spec(operation_id: str, url: str, body: Any) -> None:
    """The request uses only documented query parameters, and a body the spec accepts."""
    _, _, operation = OPERATIONS[operation_id]
    declared = {
        parameter["name"]
        for parameter in map(resolve, operation.get("parameters", []))
        if parameter["in"] == "query"
    }
    sent = {name for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    assert sent <= declared, f"{operation_id}: undocumented query parameters {sent - declared}"
    if body is not None:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        validate(body, schema)


def assert_response_matches_spec(operation_id: str, response: requests.Response) -> None:
    """The status is one the operation documents, and headers and body match its schema."""
    _, _, operation = OPERATIONS[operation_id]
    status = str(response.status_code)
    assert status in operation["responses"], (
        f"{operation_id} answered {status}, which docs/openapi.yaml does not list: "
        f"{response.text[:300]}"
    )
    described = resolve(operation["responses"][status])
    for name, header in described.get("headers", {}).items():
        header = resolve(header)
        value = response.headers.get(name)
        assert value is not None or not header.get("required"), f"{operation_id}: no {name}"
        if value is not None:
            validate(value, header["schema"])
    content = described.get("content", {})
    if not content:
        assert response.content == b"", f"{operation_id} {status} documents no body"
        return
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    assert media_type in content, (
        f"{operation_id} {status} answered {media_type!r}; the spec has {sorted(content)}"
    )
    schema = content[media_type].get("schema")
    if media_type == "application/json" and schema is not None:
        validate(response.json(), schema)


# -- the server ------------------------------------------------------------------


@dataclass
class Seeded:
    """What the fixture put in place, for cases to refer to."""

    server: JupyterServer
    proxy: TcpProxy
    notebook_versions: list[bytes] = field(default_factory=list)


@pytest.fixture(scope="module")
def s3_link(moto_server: MotoServer) -> Iterator[tuple[str, TcpProxy]]:
    """A bucket of its own and a proxy to cut S3 off (the conftest ones are per test)."""
    bucket = f"spec-{uuid.uuid4().hex[:16]}"
    moto_server.make_bucket(bucket)
    proxy = TcpProxy(moto_server.port)
    yield bucket, proxy
    proxy.close()


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory,
    moto_server: MotoServer,
    s3_link: tuple[str, TcpProxy],
) -> Iterator[Seeded]:
    bucket, proxy = s3_link
    server = JupyterServer(
        tmp_path_factory.mktemp("rest-spec"),
        env={
            **s3_env(
                bucket,
                proxy.endpoint_url,
                access_key_id="spec-access-key",
                secret_access_key="spec-secret-key",
            ),
            "BOOKSTORE_RETRY_MAX_DELAY": "1",
            "BOOKSTORE_ARCHIVE_TYPES": "notebook,file",
        },
    )
    with server:
        seeded = Seeded(server, proxy)
        for n in range(3):
            server.save("nb.ipynb", notebook(f"nb v{n + 1}", cells=n + 1))
            seeded.notebook_versions.append((server.root / "nb.ipynb").read_bytes())
        server.save("notes.txt", "plain text, archived as a file\n", kind="file")
        for name in ("taken.ipynb", "junk.ipynb", "gone.ipynb", "corrupt.ipynb"):
            server.save(name, notebook(name))
        server.wait_archived()
        # The file on disk is no notebook now: a diff against it cannot be made.
        (server.root / "junk.ipynb").write_text("this is not JSON")
        # Deleted through the contents API: its history stays, the file does not.
        assert server.api("DELETE", "/api/contents/gone.ipynb").status_code == 204
        # The stored bytes no longer match the sha256 the index recorded.
        [corrupt] = server.api("GET", "/api/bookstore/versions/corrupt.ipynb").json()["versions"]
        with moto_server.client() as s3:
            s3.put_object(Bucket=bucket, Key=corrupt["store_key"], Body=b'{"cells": []}')
        yield seeded


# -- the cases -------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    operation: str
    method: str
    url: str
    status: int
    json: Any = None
    data: str | None = None
    anonymous: bool = False
    store_down: bool = False


P, V, C, R, D, L, PIN = (
    "/api/bookstore/paths",
    "/api/bookstore/versions",
    "/api/bookstore/content",
    "/api/bookstore/restore",
    "/api/bookstore/diff",
    "/api/bookstore/label",
    "/api/bookstore/pin",
)
CASES = {
    "status": Case("getStatus", "GET", "/api/bookstore", 200),
    "status-trailing-slash": Case("getStatus", "GET", "/api/bookstore/", 200),
    "status-anonymous": Case("getStatus", "GET", "/api/bookstore", 403, anonymous=True),
    "paths": Case("listPaths", "GET", P, 200),
    "paths-deleted": Case("listPaths", "GET", f"{P}?deleted=true", 200),
    "paths-limit": Case("listPaths", "GET", f"{P}?limit=1&deleted=false", 200),
    "paths-deleted-not-a-boolean": Case("listPaths", "GET", f"{P}?deleted=yes", 400),
    "paths-anonymous": Case("listPaths", "GET", P, 403, anonymous=True),
    "versions": Case("listVersions", "GET", f"{V}/nb.ipynb", 200),
    "versions-page": Case("listVersions", "GET", f"{V}/nb.ipynb?limit=1&offset=1", 200),
    "versions-last-page": Case("listVersions", "GET", f"{V}/nb.ipynb?limit=2&offset=2", 200),
    "versions-count-only": Case("listVersions", "GET", f"{V}/nb.ipynb?limit=0", 200),
    "versions-no-history": Case("listVersions", "GET", f"{V}/dir/none.ipynb", 200),
    "versions-hidden": Case("listVersions", "GET", f"{V}/.hidden.ipynb", 404),
    "versions-limit-too-large": Case("listVersions", "GET", f"{V}/nb.ipynb?limit=1001", 400),
    "versions-negative-offset": Case("listVersions", "GET", f"{V}/nb.ipynb?offset=-1", 400),
    "versions-escaping-path": Case("listVersions", "GET", f"{V}/%2e%2e/nb.ipynb", 400),
    "versions-anonymous": Case("listVersions", "GET", f"{V}/nb.ipynb", 403, anonymous=True),
    "versions-newest": Case("listVersions", "GET", f"{V}/nb.ipynb?order=newest&limit=2", 200),
    "versions-bad-order": Case("listVersions", "GET", f"{V}/nb.ipynb?order=latest", 400),
    "content-notebook": Case("getVersionContent", "GET", f"{C}/1/nb.ipynb", 200),
    "content-file": Case("getVersionContent", "GET", f"{C}/1/notes.txt", 200),
    "content-missing-version": Case("getVersionContent", "GET", f"{C}/9/nb.ipynb", 404),
    "content-nul": Case("getVersionContent", "GET", f"{C}/1/nb.ipynb%00", 400),
    "content-corrupt": Case("getVersionContent", "GET", f"{C}/1/corrupt.ipynb", 422),
    "content-store-down": Case("getVersionContent", "GET", f"{C}/1/nb.ipynb", 503, store_down=True),
    "content-anonymous": Case("getVersionContent", "GET", f"{C}/1/nb.ipynb", 403, anonymous=True),
    "restore-copy": Case(
        "restoreVersion", "POST", f"{R}/1/nb.ipynb", 200, json={"target": "copy.ipynb"}
    ),
    "restore-in-place": Case("restoreVersion", "POST", f"{R}/2/nb.ipynb", 200),
    "restore-overwrite": Case(
        "restoreVersion",
        "POST",
        f"{R}/1/nb.ipynb",
        200,
        json={"target": "taken.ipynb", "overwrite": True},
    ),
    "restore-onto-existing": Case(
        "restoreVersion", "POST", f"{R}/1/nb.ipynb", 409, json={"target": "taken.ipynb"}
    ),
    "restore-body-not-object": Case("restoreVersion", "POST", f"{R}/1/nb.ipynb", 400, data="[1]"),
    "restore-body-not-json": Case("restoreVersion", "POST", f"{R}/1/nb.ipynb", 400, data="{x"),
    "restore-overwrite-not-bool": Case(
        "restoreVersion", "POST", f"{R}/1/nb.ipynb", 400, data='{"overwrite": "yes"}'
    ),
    "restore-target-hidden": Case(
        "restoreVersion", "POST", f"{R}/1/nb.ipynb", 400, json={"target": ".x.ipynb"}
    ),
    "restore-target-escapes": Case(
        "restoreVersion", "POST", f"{R}/1/nb.ipynb", 400, json={"target": "../x.ipynb"}
    ),
    "restore-missing-version": Case("restoreVersion", "POST", f"{R}/9/nb.ipynb", 404),
    "restore-corrupt": Case("restoreVersion", "POST", f"{R}/1/corrupt.ipynb", 422),
    "restore-store-down": Case(
        "restoreVersion",
        "POST",
        f"{R}/1/nb.ipynb",
        503,
        json={"target": "never.ipynb"},
        store_down=True,
    ),
    "restore-anonymous": Case("restoreVersion", "POST", f"{R}/1/nb.ipynb", 403, anonymous=True),
    "diff-between-versions": Case("diffVersion", "GET", f"{D}/1/nb.ipynb?to=3", 200),
    "diff-with-the-file": Case("diffVersion", "GET", f"{D}/1/nb.ipynb", 200),
    "diff-bad-to": Case("diffVersion", "GET", f"{D}/1/nb.ipynb?to=latest", 400),
    "diff-missing-version": Case("diffVersion", "GET", f"{D}/9/nb.ipynb", 404),
    "diff-missing-to": Case("diffVersion", "GET", f"{D}/1/nb.ipynb?to=99", 404),
    "diff-file-gone": Case("diffVersion", "GET", f"{D}/1/gone.ipynb", 404),
    "diff-corrupt": Case("diffVersion", "GET", f"{D}/1/corrupt.ipynb", 422),
    "diff-file-not-a-notebook": Case("diffVersion", "GET", f"{D}/1/junk.ipynb", 422),
    "diff-store-down": Case("diffVersion", "GET", f"{D}/1/nb.ipynb?to=2", 503, store_down=True),
    "diff-anonymous": Case("diffVersion", "GET", f"{D}/1/nb.ipynb", 403, anonymous=True),
    "diff-summary": Case("diffVersion", "GET", f"{D}/1/nb.ipynb?to=3&format=summary", 200),
    "diff-cells": Case("diffVersion", "GET", f"{D}/1/nb.ipynb?to=3&format=cells", 200),
    "diff-nbdime": Case("diffVersion", "GET", f"{D}/1/nb.ipynb?to=3&format=nbdime", 200),
    "diff-nbdime-with-the-file": Case("diffVersion", "GET", f"{D}/1/nb.ipynb?format=nbdime", 200),
    "diff-bad-format": Case("diffVersion", "GET", f"{D}/1/nb.ipynb?format=html", 400),
    "label": Case("setLabel", "PUT", f"{L}/1/nb.ipynb", 200, json={"label": "submitted"}),
    "label-not-a-string": Case("setLabel", "PUT", f"{L}/1/nb.ipynb", 400, data='{"label": 5}'),
    "label-two-lines": Case("setLabel", "PUT", f"{L}/1/nb.ipynb", 400, data='{"label": "a\\nb"}'),
    "label-missing-version": Case("setLabel", "PUT", f"{L}/9/nb.ipynb", 404, json={"label": "x"}),
    "label-store-down": Case(
        "setLabel", "PUT", f"{L}/2/nb.ipynb", 503, json={"label": "x"}, store_down=True
    ),
    "label-anonymous": Case(
        "setLabel", "PUT", f"{L}/1/nb.ipynb", 403, json={"label": "x"}, anonymous=True
    ),
    "label-remove": Case("removeLabel", "DELETE", f"{L}/1/nb.ipynb", 200),
    "label-remove-missing-version": Case("removeLabel", "DELETE", f"{L}/9/nb.ipynb", 404),
    "label-remove-escaping-path": Case("removeLabel", "DELETE", f"{L}/1/%2e%2e/nb.ipynb", 400),
    "label-remove-anonymous": Case("removeLabel", "DELETE", f"{L}/1/nb.ipynb", 403, anonymous=True),
    "pin": Case("pinVersion", "PUT", f"{PIN}/1/nb.ipynb", 200),
    "pin-missing-version": Case("pinVersion", "PUT", f"{PIN}/9/nb.ipynb", 404),
    "pin-store-down": Case("pinVersion", "PUT", f"{PIN}/2/nb.ipynb", 503, store_down=True),
    "pin-anonymous": Case("pinVersion", "PUT", f"{PIN}/1/nb.ipynb", 403, anonymous=True),
    "unpin": Case("unpinVersion", "DELETE", f"{PIN}/1/nb.ipynb", 200),
    "unpin-escaping-path": Case("unpinVersion", "DELETE", f"{PIN}/1/%2e%2e/nb.ipynb", 400),
    "unpin-anonymous": Case("unpinVersion", "DELETE", f"{PIN}/1/nb.ipynb", 403, anonymous=True),
}


def send(seeded: Seeded, case: Case) -> requests.Response:
    server = seeded.server
    client = requests.Session() if case.anonymous else server.session
    if case.store_down:
        seeded.proxy.set_mode("refuse")
    try:
        return client.request(
            case.method,
            f"{server.url}{case.url}",
            json=case.json,
            data=case.data,
            timeout=60,
            allow_redirects=False,
        )
    finally:
        seeded.proxy.set_mode("forward")


@pytest.mark.e2e
@pytest.mark.parametrize("name", list(CASES))
def test_every_answer_is_one_the_spec_documents(seeded: Seeded, name: str) -> None:
    case = CASES[name]
    assert_request_matches_spec(case.operation, case.url, case.json)
    response = send(seeded, case)
    assert response.status_code == case.status, response.text[:500]
    assert_response_matches_spec(case.operation, response)


@pytest.mark.e2e
def test_pages_follow_the_pagination_contract(seeded: Seeded) -> None:
    server = seeded.server
    pages, offset = [], 0
    while offset is not None:
        page = server.api("GET", f"/api/bookstore/versions/nb.ipynb?limit=2&offset={offset}")
        assert_response_matches_spec("listVersions", page)
        pages.append(page.json())
        offset = page.json()["next_offset"]
    listed = [v["version"] for page in pages for v in page["versions"]]
    assert listed == list(range(1, pages[0]["total"] + 1))
    assert pages[-1]["next_offset"] is None


@pytest.mark.e2e
def test_newest_first_pages_follow_the_pagination_contract(seeded: Seeded) -> None:
    server = seeded.server
    pages, offset = [], 0
    while offset is not None:
        url = f"/api/bookstore/versions/nb.ipynb?order=newest&limit=2&offset={offset}"
        page = server.api("GET", url)
        assert_response_matches_spec("listVersions", page)
        pages.append(page.json())
        offset = page.json()["next_offset"]
    listed = [v["version"] for page in pages for v in page["versions"]]
    assert listed == list(range(pages[0]["total"], 0, -1))
    assert pages[-1]["next_offset"] is None


@pytest.mark.e2e
def test_content_is_the_saved_bytes_with_their_documented_digest(seeded: Seeded) -> None:
    response = seeded.server.api("GET", "/api/bookstore/content/2/nb.ipynb")
    assert_response_matches_spec("getVersionContent", response)
    assert response.content == seeded.notebook_versions[1]
    digest = hashlib.sha256(response.content).hexdigest()
    assert response.headers["X-Bookstore-Sha256"] == digest


# -- the spec itself ---------------------------------------------------------------


def test_the_spec_is_valid_openapi() -> None:
    validate_openapi(SPEC)


def test_every_example_in_the_spec_matches_its_schema() -> None:
    checked = 0
    for _, _, operation in OPERATIONS.values():
        bodies = [resolve(r) for r in operation["responses"].values()]
        if "requestBody" in operation:
            bodies.append(operation["requestBody"])
        for body in bodies:
            for media in body.get("content", {}).values():
                examples = [e["value"] for e in media.get("examples", {}).values()]
                examples += [media["example"]] if "example" in media else []
                for example in examples:
                    validate(example, media["schema"])
                    checked += 1
    assert checked >= len(OPERATIONS) * 2


def _route_methods(handler: type[APIHandler]) -> set[str]:
    return {m for m in HTTP_METHODS if getattr(handler, m) is not getattr(APIHandler, m)}


def _sample_urls(template: str) -> list[str]:
    """Concrete URLs for a spec path, with one- and several-segment notebook paths."""
    with_version = template.replace("{version}", "12")
    return [with_version.replace("{path}", p) for p in ("x.ipynb", "dir/sub/12")]


def test_every_route_is_in_the_spec_and_every_spec_path_is_a_route() -> None:
    routes = {pattern: handler for pattern, handler in handlers}
    matched: set[str] = set()
    for template, item in SPEC["paths"].items():
        for url in _sample_urls(template):
            matching = [p for p in routes if re.fullmatch(p, url)]
            assert len(matching) == 1, f"{url} (from {template}) matches routes {matching}"
            [pattern] = matching
            matched.add(pattern)
            documented = {m for m in item if m in HTTP_METHODS}
            assert documented == _route_methods(routes[pattern]), template
            path_parameters = {
                p["name"]
                for operation in item.values()
                for p in map(resolve, operation.get("parameters", []))
                if p["in"] == "path"
            }
            assert path_parameters == set(re.compile(pattern).groupindex), template
    assert matched == set(routes), f"routes missing from the spec: {set(routes) - matched}"


def test_every_operation_is_exercised_and_guarded() -> None:
    exercised = {case.operation for case in CASES.values()}
    assert exercised == set(OPERATIONS)
    for operation_id, (_, _, operation) in OPERATIONS.items():
        statuses = {case.status for case in CASES.values() if case.operation == operation_id}
        assert {200, 403} <= statuses, operation_id
        assert "403" in operation["responses"], operation_id
    assert SPEC["security"] == [{"token": []}]
    scheme = SPEC["components"]["securitySchemes"]["token"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")


def _shell_commands(page: str) -> list[str]:
    """The page's shell commands, with backslash-continued lines joined."""
    commands, current = [], ""
    for line in page.splitlines():
        current += line.strip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.startswith("curl"):
            commands.append(current)
        current = ""
    return commands


def test_the_human_page_shows_every_endpoint_and_links_the_spec() -> None:
    page = (DOCS / "rest-api.md").read_text(encoding="utf-8")
    assert "(openapi.yaml)" in page
    commands = [c for c in _shell_commands(page) if "$JUPYTER/api/" in c]
    for command in commands:
        by_token = '-H "Authorization: token $TOKEN"' in command
        by_browser = " -b " in command and "X-XSRFToken" in command
        assert by_token or by_browser, command
    for template, item in SPEC["paths"].items():
        prefix = template.split("{")[0]
        shown = [c for c in commands if f"$JUPYTER{prefix}" in c]
        assert shown, f"no curl example for {template}"
        if "post" in item:
            assert any("-X POST" in c for c in shown), template
    for status in ("400", "403", "404", "409", "422", "503"):
        assert f"| {status} |" in page
