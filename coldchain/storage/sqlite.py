"""SqliteStore: the embedded engine (aiosqlite), for a pharmacy, a pilot or a laptop.

One connection in WAL mode with foreign keys on; transactions are serialised in the process and take SQLite's
write lock up front (``BEGIN IMMEDIATE``), so a transaction never fails half-way for lack of the lock. Times are
stored as ISO 8601 UTC text with microseconds, which sorts in time order.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import aiosqlite

from coldchain.domain.readings import Reading
from coldchain.domain.retention import month_end, month_start
from coldchain.storage._sql import SqlTransaction, load_queries
from coldchain.storage.base import ConnectionUse, Engine, Transaction
from coldchain.storage.evaluation import EXCURSION_UPSERT
from coldchain.storage.migrations import MIGRATIONS_TABLE, discover_migrations, pending_migrations
from coldchain.storage.portal import BUCKET_SELECT

__all__ = ["SqliteStore", "sqlite_path"]

_READING_COLUMNS = (
    "tracker_id, seq, device_time, utc_offset_min, received_at, temperature_c, humidity_pct, pressure_kpa,"
    " latitude, longitude, battery_pct"
)
_READING_WIDTH = 11
_ROWS_PER_STATEMENT = 500  # 5,500 parameters, well under SQLITE_MAX_VARIABLE_NUMBER (32,766)


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` URL (``:memory:`` allowed)."""
    path = url.removeprefix("sqlite://")
    return path.removeprefix("/") if path != "/:memory:" else ":memory:"


def _time_text(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime: storage takes aware datetimes only")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


@cache
def _insert_readings_sql(rows: int, *, known_new: bool = False) -> str:
    """A multi-row INSERT: ignoring held numbers (the careful path), or not (readings known new: a held number
    is then an error, so a broken promise cannot pass unseen)."""
    values = ", ".join(["(" + ", ".join(["?"] * _READING_WIDTH) + ")"] * rows)
    if known_new:
        return f"INSERT INTO readings ({_READING_COLUMNS}) VALUES {values}"
    return f"INSERT INTO readings ({_READING_COLUMNS}) VALUES {values} ON CONFLICT DO NOTHING RETURNING seq"


_READINGS_NUMBERED = """
SELECT seq, device_time, utc_offset_min, temperature_c, humidity_pct, pressure_kpa, latitude, longitude, battery_pct
FROM readings WHERE tracker_id = ? AND seq IN (SELECT value FROM json_each(?))
"""

_QUARANTINED_NUMBERED = """
SELECT seq, reason, reading FROM quarantined_readings WHERE tracker_id = ? AND seq IN (SELECT value FROM json_each(?))
"""

# The rows as one JSON array of [seq, reason, reading] (an INSERT ... SELECT with an upsert clause needs a WHERE).
_INSERT_QUARANTINED = """
INSERT INTO quarantined_readings (tracker_id, seq, received_at, reason, reading)
SELECT ?, json_extract(value, '$[0]'), ?, json_extract(value, '$[1]'), json_extract(value, '$[2]')
FROM json_each(?) WHERE true ORDER BY key
ON CONFLICT DO NOTHING
RETURNING seq
"""

# A batch of notifications as one JSON array of [organisation_id, kind, shipment_id, subject, payload] (one writer
# at a time: the ids of one statement are in commit order, and the position trigger copies them), then the
# deliveries to every live webhook of each recipient subscribed to the kind, from the ids just given.
_INSERT_NOTIFICATIONS = """
INSERT INTO notifications (organisation_id, kind, shipment_id, subject, payload, created_at)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       json_extract(value, '$[3]'), json_extract(value, '$[4]'), ?
FROM json_each(?) ORDER BY key
RETURNING id
"""

# A batch's excursions of one stream, as one JSON array of rows, in one statement: new ones inserted, known ones
# (by key) brought up to date.
_UPSERT_EXCURSIONS = (
    """
INSERT INTO excursions (assignment_id, shipment_id, event_key, rule, metric, direction, threshold, started_at,
                        start_seq, ended_at, duration_min, uncredited_min, peak, degree_min, custodian_id,
                        detected_at, updated_at)
SELECT ?1, ?2, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'),
       json_extract(value, '$[6]'), json_extract(value, '$[7]'), json_extract(value, '$[8]'),
       json_extract(value, '$[9]'), json_extract(value, '$[10]'), json_extract(value, '$[11]'),
       json_extract(value, '$[12]'), ?3, ?3
FROM json_each(?4) WHERE true ORDER BY key
"""
    + EXCURSION_UPSERT
)

# A batch's newly raised alarms of one shipment, as one JSON array of rows, in one statement; a key its stream
# holds is left alone (the same condition is never raised twice).
_INSERT_ALARMS = """
INSERT INTO alarms (assignment_id, shipment_id, event_key, rule, action, metric, direction, threshold, mode, scope,
                    delay_min, began_at, began_seq, met_at, detected_at, late, updated_at)
SELECT json_extract(value, '$[0]'), ?1, json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'),
       json_extract(value, '$[6]'), json_extract(value, '$[7]'), json_extract(value, '$[8]'),
       json_extract(value, '$[9]'), json_extract(value, '$[10]'), json_extract(value, '$[11]'),
       json_extract(value, '$[12]'), ?2, json_extract(value, '$[13]'), ?2
FROM json_each(?3) WHERE true ORDER BY key
ON CONFLICT (assignment_id, event_key) DO NOTHING
RETURNING *
"""

_INSERT_DELIVERIES = """
INSERT INTO webhook_deliveries (webhook_id, notification_id, status, attempts, next_attempt_at, created_at)
SELECT w.id, n.id, 'pending', 0, ?, ?
FROM notifications n
JOIN webhooks w ON w.organisation_id = n.organisation_id AND w.deleted_at IS NULL
JOIN webhook_kinds k ON k.webhook_id = w.id AND k.kind = n.kind
WHERE n.id IN (SELECT value FROM json_each(?))
ORDER BY n.id, w.id
ON CONFLICT DO NOTHING
"""

# Times are ISO 8601 UTC text, so a reading's month is the text's first seven characters.
_READING_MONTHS = (
    "SELECT DISTINCT substr(device_time, 1, 7) AS month FROM readings WHERE device_time < ? ORDER BY month"
)


# Times are ISO 8601 text in UTC: julianday() reads them, and the Julian day of the Unix epoch is 2440587.5.
_BUCKET_SQL = BUCKET_SELECT.format(
    bucket="CAST(((julianday(r.device_time) - 2440587.5) * 86400.0) / ? AS INTEGER)",
    shipment_id="?",
    start="?",
    end="?",
)


class SqliteTransaction(SqlTransaction):
    _time_in = staticmethod(_time_text)
    _SAVE_STREAM = "save_evaluation_stream_sqlite"

    async def _bucket_rows(
        self, shipment_id: int, *, start: datetime, end: datetime, seconds: int
    ) -> list[tuple[Any, ...]]:
        params = (seconds, shipment_id, _time_text(start), _time_text(end))
        async with self._conn.execute(_BUCKET_SQL, params) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]

    def _time_out(self, value: Any) -> datetime:
        return datetime.fromisoformat(value)

    def _date_in(self, value: date) -> str:
        return value.isoformat()

    def _date_out(self, value: Any) -> date:
        return date.fromisoformat(value)

    async def _lock(self, name: str) -> None:
        """``BEGIN IMMEDIATE`` already holds the database's only write lock."""

    async def _try_lock(self, name: str) -> bool:
        """``BEGIN IMMEDIATE`` already holds the database's only write lock: nobody else holds ``name``."""
        return True

    async def _lock_audit_chain(self) -> None:
        """``BEGIN IMMEDIATE`` already holds the database's only write lock."""

    async def _locked_sync_state_row(self, tracker_id: int) -> Any:
        """``BEGIN IMMEDIATE`` already holds the database's only write lock."""
        return await self._q.get_sync_state(self._conn, tracker_id=tracker_id)

    async def _lock_sync_states_of_shipment(self, shipment_id: int) -> None:
        """``BEGIN IMMEDIATE`` already holds the database's only write lock."""

    async def insert_readings(
        self, tracker_id: int, readings: Sequence[Reading], *, received_at: datetime
    ) -> list[int]:
        new: list[int] = []
        for chunk, params in _chunks(tracker_id, readings, received_at):
            async with self._conn.execute(_insert_readings_sql(len(chunk)), params) as cursor:
                new += [row[0] for row in await cursor.fetchall()]
        return new

    async def append_readings(self, tracker_id: int, readings: Sequence[Reading], *, received_at: datetime) -> None:
        for chunk, params in _chunks(tracker_id, readings, received_at):
            await self._conn.execute(_insert_readings_sql(len(chunk), known_new=True), params)

    async def _readings_numbered(self, tracker_id: int, seqs: Sequence[int]) -> list[Any]:
        async with self._conn.execute(_READINGS_NUMBERED, (tracker_id, json.dumps(list(seqs)))) as cursor:
            return list(await cursor.fetchall())

    async def _quarantined_numbered(self, tracker_id: int, seqs: Sequence[int]) -> list[Any]:
        async with self._conn.execute(_QUARANTINED_NUMBERED, (tracker_id, json.dumps(list(seqs)))) as cursor:
            return list(await cursor.fetchall())

    async def _upsert_excursion_rows(
        self, assignment_id: int, shipment_id: int, rows: Sequence[tuple[Any, ...]], *, now: datetime
    ) -> None:
        params = (assignment_id, shipment_id, _time_text(now), json.dumps([list(row) for row in rows]))
        await self._conn.execute(_UPSERT_EXCURSIONS, params)

    async def _insert_alarm_rows(
        self, shipment_id: int, rows: Sequence[tuple[Any, ...]], *, detected_at: datetime
    ) -> list[Any]:
        params = (shipment_id, _time_text(detected_at), json.dumps([list(row) for row in rows]))
        async with self._conn.execute(_INSERT_ALARMS, params) as cursor:
            return list(await cursor.fetchall())

    async def _insert_quarantined(
        self, tracker_id: int, rows: Sequence[tuple[int, str, str]], *, received_at: datetime
    ) -> list[int]:
        params = (tracker_id, _time_text(received_at), json.dumps([list(row) for row in rows]))
        async with self._conn.execute(_INSERT_QUARANTINED, params) as cursor:
            return [row[0] for row in await cursor.fetchall()]

    async def _insert_notifications(
        self, rows: Sequence[tuple[int, str, int | None, str, str]], *, created_at: datetime
    ) -> list[int]:
        at = _time_text(created_at)
        async with self._conn.execute(_INSERT_NOTIFICATIONS, (at, json.dumps([list(row) for row in rows]))) as cursor:
            ids = sorted(row[0] for row in await cursor.fetchall())
        await self._conn.execute(_INSERT_DELIVERIES, (at, at, json.dumps(ids)))
        return ids

    async def prepare_reading_months(self, months: Sequence[date]) -> list[date]:
        """SQLite's readings are one table: every month is ready."""
        return []

    async def reading_months(self, *, ending_by: datetime) -> list[date]:
        async with self._conn.execute(_READING_MONTHS, (_time_text(ending_by),)) as cursor:
            found = [date(int(row[0][:4]), int(row[0][5:7]), 1) for row in await cursor.fetchall()]
        return [month for month in found if month_end(month) <= ending_by]

    async def remove_reading_month(self, month: date) -> int:
        async with self._conn.execute(
            "DELETE FROM readings WHERE device_time >= ? AND device_time < ?",
            (_time_text(month_start(month)), _time_text(month_end(month))),
        ) as cursor:
            return int(cursor.rowcount)


def _chunks(
    tracker_id: int, readings: Sequence[Reading], received_at: datetime
) -> list[tuple[Sequence[Reading], list[Any]]]:
    """The readings in statements of at most ``_ROWS_PER_STATEMENT`` rows, each with its parameters."""
    received = _time_text(received_at)
    chunks = []
    for start in range(0, len(readings), _ROWS_PER_STATEMENT):
        chunk = readings[start : start + _ROWS_PER_STATEMENT]
        params: list[Any] = []
        for r in chunk:
            params += (
                tracker_id,
                r.seq,
                _time_text(r.device_time),
                r.utc_offset_min,
                received,
                r.temperature_c,
                r.humidity_pct,
                r.pressure_kpa,
                r.latitude,
                r.longitude,
                r.battery_pct,
            )
        chunks.append((chunk, params))
    return chunks


class SqliteStore:
    """The :class:`~coldchain.storage.base.Store` on an SQLite file."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self._path = path
        self._queries = load_queries("aiosqlite")
        self._lock = asyncio.Lock()

    @property
    def engine(self) -> Engine:
        return "sqlite"

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> SqliteStore:
        path = sqlite_path(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA busy_timeout = 10000")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable across process crashes
        await conn.execute("PRAGMA foreign_keys = ON")
        store = cls(conn, path)
        if migrate:
            await store.migrate()
        return store

    async def migrate(self) -> list[str]:
        """Apply pending migrations; returns those applied by this call."""
        async with self._lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                await self._conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
                    " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                    " checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
                async with self._conn.execute(f"SELECT version, checksum FROM {MIGRATIONS_TABLE}") as cursor:
                    applied = {row[0]: row[1] for row in await cursor.fetchall()}
                pending = pending_migrations(discover_migrations("sqlite"), applied)
                for migration in pending:
                    for statement in _statements(migration.sql):
                        await self._conn.execute(statement)
                    await self._conn.execute(
                        f"INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                        (
                            migration.version,
                            migration.name,
                            migration.checksum,
                            _time_text(datetime.now(UTC)),
                        ),
                    )
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")
            return [migration.label for migration in pending]

    @asynccontextmanager
    async def transaction(self, *, snapshot: bool = False) -> AsyncIterator[Transaction]:
        # Every transaction holds the write lock from its start: it sees one moment, snapshot or not.
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                tx = SqliteTransaction(self._conn, self._queries, one_moment=True)
                yield tx
                await tx.chain_audit()
            except BaseException:
                await self._end("ROLLBACK")
                raise
            await self._end("COMMIT")

    async def _end(self, statement: str) -> None:
        """COMMIT or ROLLBACK, carried through even when the task is being cancelled (a client that goes away from
        an event stream cancels its request mid-transaction): the one connection must never be left inside a
        transaction for the next one. The lock is still held here, so nothing runs between."""
        ending = asyncio.ensure_future(self._conn.execute(statement))
        cancelled = False
        while not ending.done():
            try:
                await asyncio.shield(ending)
            except asyncio.CancelledError:
                cancelled = True
        try:
            ending.result()
        except sqlite3.OperationalError as exc:
            # Cancelled before BEGIN ran: there is nothing to roll back.
            if statement != "ROLLBACK" or "no transaction is active" not in str(exc):
                raise
        if cancelled:
            raise asyncio.CancelledError

    async def ping(self) -> bool:
        try:
            async with self._conn.execute("SELECT 1") as cursor:
                return await cursor.fetchone() is not None
        except (sqlite3.Error, ValueError):
            return False

    async def pending_migrations(self) -> list[str]:
        async with self._conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (MIGRATIONS_TABLE,)
        ) as cursor:
            row = await cursor.fetchone()
        applied: dict[int, str] = {}
        if row is not None and row[0]:
            async with self._conn.execute(f"SELECT version, checksum FROM {MIGRATIONS_TABLE}") as cursor:
                applied = {row[0]: row[1] for row in await cursor.fetchall()}
        return [m.label for m in pending_migrations(discover_migrations("sqlite"), applied)]

    def connections(self) -> ConnectionUse:
        """One connection, in use while a transaction holds it."""
        in_use = 1 if self._lock.locked() else 0
        return ConnectionUse(in_use=in_use, idle=1 - in_use, max=1)

    async def close(self) -> None:
        await self._conn.close()


def _statements(script: str) -> list[str]:
    """Split a script into complete statements (``sqlite3.complete_statement`` knows about triggers)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip() and not all(part.strip().startswith("--") or not part.strip() for part in pending.splitlines()):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {pending.strip()[:60]!r}")
    return statements
