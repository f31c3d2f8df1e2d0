"""Schema migrations: numbered SQL files under ``sql/<dialect>/``, applied in order, each recorded once.

A file ``0003_custody.sql`` is migration 3. Applying is safe to repeat and safe from two processes at once: the
whole run holds a lock (an advisory lock on PostgreSQL, the write lock on SQLite) and re-reads what is applied
after taking it. A recorded migration whose file has since changed is refused, never re-applied.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import msgspec

from coldchain.storage._sql import sql_dir
from coldchain.storage.base import Engine, MigrationError

__all__ = ["Migration", "discover_migrations", "pending_migrations"]

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

MIGRATIONS_TABLE = "schema_migrations"


class Migration(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    name: str
    sql: str

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover_migrations(engine: Engine, directory: Path | None = None) -> list[Migration]:
    """The migration files for ``engine``, in version order."""
    folder = (directory or sql_dir()) / ("postgres" if engine == "postgresql" else "sqlite")
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_lowercase_name.sql")
        migrations.append(Migration(version=int(match[1]), name=match[2], sql=path.read_text(encoding="utf-8")))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version number in {folder.name}/")
    return migrations


def pending_migrations(available: list[Migration], applied: dict[int, str]) -> list[Migration]:
    """The migrations still to apply, given ``applied`` (version → checksum) as recorded in the database."""
    for migration in available:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationError(
                f"migration {migration.label} changed after it was applied;"
                " add a new migration instead of editing an applied one"
            )
    unknown = sorted(set(applied) - {m.version for m in available})
    if unknown:
        raise MigrationError(f"the database has migrations this version does not know: {unknown}")
    return [m for m in available if m.version not in applied]
