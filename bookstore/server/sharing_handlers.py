"""Publish and clone endpoints, and the clone landing pages with their confirm button."""

from __future__ import annotations

import posixpath
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import path_regex
from jupyter_server.extension.handler import ExtensionHandlerJinjaMixin, ExtensionHandlerMixin
from jupyter_server.utils import url_path_join
from tornado import web

from bookstore.core.notebook import model_to_bytes
from bookstore.server.contents import current_content
from bookstore.server.handlers import BookstoreHandler, BookstorePaths
from bookstore.server.http_errors import http_errors
from bookstore.server.sharing import (
    check_fs_clone_source,
    publish,
    read_fs_clone,
    read_s3_clone,
    save_clone,
)

__all__ = ["sharing_handlers"]


def _required(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise web.HTTPError(400, f"{name} must be a non-empty string")
    return value


def _optional(body: dict[str, Any], name: str) -> str | None:
    return None if body.get(name) is None else _required(body, name)


class PublishHandler(BookstoreHandler):
    """``PUT /api/bookstore/publish/<path>``: copy a notebook to the published prefix.

    The body is a contents model (``{"type": "notebook", "content": {...}}``) as
    in the original bookstore; without a body the file as saved is published.
    """

    @web.authenticated
    @authorized
    async def put(self, path: str) -> None:
        settings = self.services.settings
        if not settings.enable_publish:
            raise web.HTTPError(404, "publishing is off (c.BookstoreSettings.enable_publish)")
        store = self.services.store
        assert store is not None, "publishing is offered in direct mode only"
        name = await self.checked_path(path)
        body = self.get_json_body()
        with http_errors():
            if body is None:
                _, content = await current_content(self.contents_manager, name)
            else:
                content = _model_bytes(body)
            key = await publish(store, settings, name, content)
        self.finish({"path": name, "store_key": key, "location": store.description})


def _model_bytes(model: Any) -> bytes:
    if not isinstance(model, dict) or model.get("type") != "notebook" or "content" not in model:
        raise web.HTTPError(400, 'the body must be a notebook model: {"type": "notebook", ...}')
    try:
        return model_to_bytes(model)
    except Exception as exc:
        raise web.HTTPError(400, f"the notebook in the body cannot be read: {exc}") from exc


class CloneHandler(BookstoreHandler):
    """``POST /api/bookstore/clone``: copy a notebook from an allowlisted S3 bucket."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        settings = self.services.settings
        if not settings.clone_s3_buckets:
            raise web.HTTPError(404, "S3 cloning is off (c.BookstoreSettings.clone_s3_buckets)")
        body = self.get_json_body() or {}
        bucket, key = _required(body, "s3_bucket"), _required(body, "s3_key")
        version_id = _optional(body, "s3_version_id")
        target = await self.checked_path(
            _optional(body, "target_path") or posixpath.basename(key), target=True
        )
        with http_errors():
            content = await read_s3_clone(settings, bucket, key, version_id)
            saved = await save_clone(self.contents_manager, content, target)
        self.set_status(201)
        self.finish({"path": saved, "source": f"s3://{bucket}/{key}"})


class FsCloneHandler(BookstoreHandler):
    """``POST /api/bookstore/fs-clone``: copy a notebook from the configured clone directory."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        settings = self.services.settings
        if not settings.fs_clone_dir:
            raise web.HTTPError(404, "directory cloning is off (c.BookstoreSettings.fs_clone_dir)")
        body = self.get_json_body() or {}
        relpath = _required(body, "relpath")
        target = await self.checked_path(
            _optional(body, "target_path") or posixpath.basename(relpath), target=True
        )
        allow_hidden = self.contents_manager.allow_hidden
        with http_errors():
            content = await read_fs_clone(settings, relpath, allow_hidden)
            saved = await save_clone(self.contents_manager, content, target)
        self.set_status(201)
        self.finish({"path": saved, "source": relpath})


class CloneLandingHandler(ExtensionHandlerJinjaMixin, ExtensionHandlerMixin, BookstorePaths):
    """``GET /bookstore/clone?s3_bucket=&s3_key=[&s3_version_id=]``: ask before cloning.

    Nothing is copied until the person presses the button, which POSTs (with
    the XSRF token) to the clone API and then opens the copy. A clone the
    contents API's rules would refuse is refused here already, with no button.
    """

    auth_resource = "contents"
    required: tuple[str, ...] = ("s3_bucket", "s3_key")
    optional: tuple[str, ...] = ("s3_version_id",)
    api_path = "api/bookstore/clone"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        missing = [name for name in self.required if not self.get_argument(name, "")]
        if missing:
            raise web.HTTPError(400, f"the link must give {' and '.join(missing)}")
        body = {
            name: self.get_argument(name)
            for name in (*self.required, *self.optional)
            if self.get_argument(name, "")
        }
        target = await self.checked_path(posixpath.basename(body[self.required[-1]]), target=True)
        self.check_source(body)
        self.finish(
            self.render_template(
                "clone.html",
                source=self.describe(body),
                target=target,
                api_url=url_path_join(self.base_url, self.api_path),
                open_url=url_path_join(self.base_url, "lab", "tree") + "/",
                request_body=body,
            )
        )

    def check_source(self, body: dict[str, str]) -> None:
        """Refuse a source the clone API would refuse before reading it (S3 has none)."""

    def describe(self, body: dict[str, str]) -> str:
        return f"s3://{body['s3_bucket']}/{body['s3_key']}"


class FsCloneLandingHandler(CloneLandingHandler):
    """``GET /bookstore/fs-clone?relpath=``: ask before cloning from the clone directory."""

    required = ("relpath",)
    optional = ()
    api_path = "api/bookstore/fs-clone"

    def check_source(self, body: dict[str, str]) -> None:
        settings = self.services.settings
        if settings.fs_clone_dir:  # when cloning is off, the clone API says so
            with http_errors():
                allow_hidden = self.contents_manager.allow_hidden
                check_fs_clone_source(settings, body["relpath"], allow_hidden)

    def describe(self, body: dict[str, str]) -> str:
        return body["relpath"]


sharing_handlers = [
    (rf"/api/bookstore/publish{path_regex}", PublishHandler),
    (r"/api/bookstore/clone", CloneHandler),
    (r"/api/bookstore/fs-clone", FsCloneHandler),
    (r"/bookstore/clone", CloneLandingHandler),
    (r"/bookstore/fs-clone", FsCloneLandingHandler),
]
