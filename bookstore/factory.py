"""Build the store, index, outbox and history a configuration names (server and CLI alike)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bookstore.archiving.outbox import Outbox
from bookstore.config import BookstoreSettings
from bookstore.index import IndexDatabase
from bookstore.store import Store

if TYPE_CHECKING:  # aiobotocore is imported only when S3 is used
    from bookstore.store.s3 import S3Store

__all__ = ["open_index", "open_outbox", "open_s3_store", "open_store"]


def open_store(settings: BookstoreSettings) -> Store:
    """The configured store; nothing is contacted until it is first used."""
    if settings.storage == "s3":
        return open_s3_store(settings, settings.s3_bucket)
    from bookstore.store.local import LocalStore

    return LocalStore(settings.local_store_dir)


def open_s3_store(settings: BookstoreSettings, bucket: str) -> S3Store:
    """``bucket`` with the configured S3 endpoint, credentials and connection pool."""
    from bookstore.store.s3 import S3Store

    return S3Store(
        bucket,
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region_name,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
        max_pool_connections=max(10, settings.archive_concurrency * 2),
    )


def open_index(
    settings: BookstoreSettings, *, create: bool = True, read_only: bool = False
) -> IndexDatabase:
    """The configured index; its schema is migrated by ``IndexDatabase.migrate``."""
    return IndexDatabase(settings.index_url, create=create, read_only=read_only)


def open_outbox(settings: BookstoreSettings) -> Outbox:
    """The configured outbox directory."""
    return Outbox(settings.outbox_dir)
