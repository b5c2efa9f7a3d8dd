"""Build the store, index and outbox a configuration names (shared by server and CLI)."""

from __future__ import annotations

from bookstore.config import BookstoreSettings
from bookstore.index import IndexDatabase
from bookstore.outbox import Outbox
from bookstore.store import Store

__all__ = ["open_index", "open_outbox", "open_store"]


def open_store(settings: BookstoreSettings) -> Store:
    """The configured store; nothing is contacted until it is first used."""
    if settings.storage == "s3":
        from bookstore.store.s3 import S3Store

        return S3Store(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region_name,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            max_pool_connections=max(10, settings.archive_concurrency * 2),
        )
    from bookstore.store.local import LocalStore

    return LocalStore(settings.local_store_dir)


def open_index(
    settings: BookstoreSettings, *, create: bool = True, read_only: bool = False
) -> IndexDatabase:
    """The configured index; its schema is migrated by ``IndexDatabase.migrate``."""
    return IndexDatabase(settings.index_url, create=create, read_only=read_only)


def open_outbox(settings: BookstoreSettings) -> Outbox:
    """The configured outbox directory."""
    return Outbox(settings.outbox_dir)
