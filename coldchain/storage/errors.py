"""What the storage layer raises.

Exceptions::

    StorageError            anything the storage layer refuses
    ├── AlreadyExists       a unique key is taken (a second tracker with the same serial, ...)
    └── MigrationError      the schema on disk and the migration files disagree
"""

from __future__ import annotations

__all__ = ["AlreadyExists", "MigrationError", "StorageError"]


class StorageError(Exception):
    """The storage layer refused an operation."""


class AlreadyExists(StorageError):
    """A unique key is already taken."""


class MigrationError(StorageError):
    """The migration files and the recorded migrations disagree."""
