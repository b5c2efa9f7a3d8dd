"""Runs jupyter_server's own contents tests with bookstore loaded and started.

Copied by .ci/contents-api/run next to the tests of the jupyter_server sdist that
matches the installed release. Every test runs on a server where bookstore is
enabled and archiving has begun; the tests listed in docs/contents-api.md as
deliberate deviations must fail (strict xfail), every other test must pass.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

DEVIATIONS = Path(os.environ["BOOKSTORE_DEVIATIONS"])
_ROW = re.compile(r"^\|\s*`(?P<test>[^`]+)`\s*\|\s*(?P<reason>[^|]+?)\s*\|$")


def deviations() -> dict[str, str]:
    """Test ids (``file::name[parameters]``) and why bookstore answers otherwise."""
    return {
        match["test"]: match["reason"]
        for line in DEVIATIONS.read_text().splitlines()
        if (match := _ROW.match(line))
    }


@pytest.fixture(autouse=True)
def bookstore_enabled(jp_config_dir: Path) -> None:
    """Enable bookstore as ``pip install`` does (a jupyter_server_config.d file), whatever
    configuration a test module gives its servers."""
    enabled = jp_config_dir / "jupyter_server_config.d" / "bookstore.json"
    enabled.parent.mkdir(parents=True, exist_ok=True)
    enabled.write_text(json.dumps({"ServerApp": {"jpserver_extensions": {"bookstore": True}}}))


@pytest.fixture
def jp_serverapp(jp_serverapp: Any, jp_asyncio_loop: Any) -> Any:
    """The plugin's server, with bookstore's archiving started as the server starts it."""
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.start_all_extensions())
    assert "bookstore_services" in jp_serverapp.web_app.settings, "bookstore did not load"
    return jp_serverapp


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    expected = deviations()
    unused = set(expected)
    for item in items:
        test = f"{Path(item.location[0]).name}::{item.name}"
        if test in expected:
            unused.discard(test)
            item.add_marker(pytest.mark.xfail(reason=expected[test], strict=True))
    if unused:
        raise pytest.UsageError(f"docs/contents-api.md lists tests that do not exist: {unused}")
