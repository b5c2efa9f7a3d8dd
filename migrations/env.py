"""Alembic environment for bookstore's index.

The server and CLI pass an open connection in ``config.attributes["connection"]``;
``alembic upgrade head`` from a checkout connects to BookstoreSettings' index_url.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from bookstore.index.models import Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_migrations_offline() -> None:
    context.configure(url=_index_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    from bookstore.index.database import IndexDatabase

    database = IndexDatabase(_index_url())
    try:
        async with database.engine.execution_options(poolclass=NullPool).begin() as connection:
            await connection.run_sync(_run_with)
    finally:
        await database.close()


def _index_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from bookstore.config import BookstoreSettings

    return str(BookstoreSettings().index_url)


if context.is_offline_mode():
    run_migrations_offline()
elif (connection := config.attributes.get("connection")) is not None:
    _run_with(connection)
else:
    asyncio.run(_run_standalone())
