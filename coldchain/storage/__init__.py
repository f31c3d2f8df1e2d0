"""Storage: the only package that knows SQL and database drivers.

It owns the :class:`Store` contract and its two engines (``SqliteStore``, ``PostgresStore``), the migrations
under ``sql/`` and the mapping between rows and domain objects. It may import ``coldchain.domain`` and nothing
else of coldchain.
"""

from __future__ import annotations

from coldchain.storage.base import (
    AlreadyExists,
    ConnectionUse,
    Engine,
    MigrationError,
    StorageError,
    Store,
    Transaction,
)
from coldchain.storage.emails import OpenAlarm

__all__ = [
    "AlreadyExists",
    "ConnectionUse",
    "Engine",
    "MigrationError",
    "OpenAlarm",
    "StorageError",
    "Store",
    "Transaction",
    "open_store",
]


async def open_store(url: str, *, pool_size: int = 10, migrate: bool = True) -> Store:
    """Open the store a database URL names, applying pending migrations unless ``migrate`` is false."""
    if url.startswith("sqlite://"):
        from coldchain.storage.sqlite import SqliteStore

        return await SqliteStore.open(url, migrate=migrate)
    if url.startswith(("postgresql://", "postgres://")):
        from coldchain.storage.postgres import PostgresStore

        return await PostgresStore.open(url, pool_size=pool_size, migrate=migrate)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://...")
