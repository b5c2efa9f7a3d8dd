"""Start-up failures are reported, never silent, and never hidden behind another error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jupyter_server.serverapp import ServerApp

from tests.support.inprocess import LiveServer, Run, until
from tests.support.jupyter_process import notebook


@pytest.fixture
def bookstore_config(tmp_path: Path) -> dict[str, Any]:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the outbox's parent directory should be")
    return {"outbox_dir": str(blocked / "outbox")}


async def test_an_outbox_that_cannot_be_read_at_start_is_reported_in_last_error(
    live: LiveServer,
) -> None:
    async def reported() -> str | None:
        error: str | None = (await live.status())["archive"]["last_error"]
        return error

    error = await until(reported, 10, "a start-up failure in last_error")
    assert error.startswith("could not read the outbox")
    assert "Not a directory" in error
    assert (await live.status())["archive"]["ready"] is False
    await live.save("still saved.ipynb", notebook("saved"))  # the save itself succeeds
    assert (live.root / "still saved.ipynb").is_file()


class TestAServerThatFailsBeforeBookstoreIsSetUp:
    @pytest.fixture
    def bookstore_config(self) -> dict[str, Any]:
        return {"storage": "s3"}  # and no bucket: refused while the settings are read

    def test_stops_without_an_error_of_its_own(
        self,
        jp_configurable_serverapp: Any,
        jp_server_cleanup: None,
        run: Run[Any],
    ) -> None:
        with pytest.raises(SystemExit):
            jp_configurable_serverapp()

        # As the server does on its way out; an error here would hide the real one.
        run(ServerApp.instance().extension_manager.stop_all_extensions())  # type: ignore[no-untyped-call]
