"""The Jupyter Server extension: it reads the settings and wires one of two modes.

* direct (``direct_mode``): the server archives its saves into the store and
  index its settings name;
* service (``service_mode``, when ``service_url`` is set, on JupyterHub): the
  server pushes its saves to the archive service, and holds no credentials.

Each mode is imported only when chosen: a server in service mode never imports
aiobotocore or SQLAlchemy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_server.extension.application import ExtensionApp, ExtensionAppJinjaMixin
from traitlets import TraitError

from bookstore.config import BookstoreSettings
from bookstore.core.errors import ConfigurationError

if TYPE_CHECKING:
    from bookstore.server.direct_mode import DirectMode
    from bookstore.server.service_mode import ServiceMode

__all__ = ["BookstoreExtension"]


class BookstoreExtension(ExtensionAppJinjaMixin, ExtensionApp):
    """Archives every save of the server's contents manager."""

    name = "bookstore"
    description = "Every save of every notebook, archived as a version."
    template_paths = [str(Path(__file__).parent / "templates")]  # noqa: RUF012
    classes = [*ExtensionApp.classes, BookstoreSettings]  # noqa: RUF012 (traitlets' own pattern)
    mode: DirectMode | ServiceMode | None = None
    """Set once the settings are read and checked; ``None`` if the server failed before."""

    def initialize_settings(self) -> None:
        try:
            settings = BookstoreSettings(parent=self)
            settings.validate()
            self.mode = self._mode_for(settings)
        except (ConfigurationError, TraitError) as exc:
            self.log.critical("bookstore cannot start: %s", exc)
            raise SystemExit(1) from exc

    def _mode_for(self, settings: BookstoreSettings) -> DirectMode | ServiceMode:
        if settings.service_url is not None:
            from bookstore.server.service_mode import ServiceMode

            return ServiceMode(self, settings)
        from bookstore.server.direct_mode import DirectMode

        return DirectMode(self, settings)

    def initialize_handlers(self) -> None:
        if self.mode is not None:
            self.handlers.extend(self.mode.handlers())

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        if self.mode is not None:
            self.mode.start()

    async def stop_extension(self) -> None:
        if self.mode is not None:
            await self.mode.stop()
