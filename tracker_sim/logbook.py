"""The tracker's logbook: every reading, durable from the moment it is logged, until the service holds it.

SQLite through aiosqlite, in WAL mode with ``synchronous=FULL``. Why FULL and not NORMAL: in WAL mode NORMAL
already survives a crash of the process (``kill -9``), because a commit has handed the WAL frames to the
operating system before it returns; it can lose the last commits when the *machine* stops (power loss, battery
empty, kernel panic), and a tracker's battery running flat is the most ordinary way for a tracker to stop.
FULL syncs the WAL on every commit, so a reading is on storage once :meth:`Logbook.log` returns
(https://sqlite.org/pragma.html#pragma_synchronous). Bulk loading pays that sync once per transaction.

Sequence numbers come from ``INTEGER PRIMARY KEY AUTOINCREMENT``: 1, 2, 3, ... in logging order, never
reused, not even after pruning (https://sqlite.org/autoinc.html).

Acknowledgement is the service's: ``acked_through`` is the highest seq up to which it holds everything.
Readings above it that the service confirmed holding are marked *held* and not sent again unless the service
later reports them missing. Acknowledged readings stay for a retention period, then :meth:`Logbook.prune`
removes them; nothing unacknowledged is ever deleted.

Exceptions::

    LogbookError
    └── AcknowledgementAheadError   the service acknowledges readings this logbook never logged
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite
import msgspec

from tracker_sim.wire import rfc3339

__all__ = [
    "AcknowledgementAheadError",
    "Logbook",
    "LogbookError",
    "LogbookStatus",
    "LoggedReading",
    "Measurement",
    "open_logbook",
]


class LogbookError(Exception):
    """Base of the logbook's errors."""


class AcknowledgementAheadError(LogbookError):
    """The service acknowledges more than was ever logged here.

    The logbook file was replaced or reset while the service kept the tracker's readings: new readings would
    reuse sequence numbers the service already holds and be thrown away as duplicates. Stop and tell someone.
    """


class Measurement(msgspec.Struct, frozen=True, kw_only=True):
    """What the sensors produced at one logging instant, stamped by the device clock (aware, with offset)."""

    device_time: datetime
    temperature_c: float | None = None
    humidity_pct: float | None = None
    pressure_kpa: float | None = None
    latitude: float | None = None
    longitude: float | None = None
    battery_pct: float | None = None


class LoggedReading(msgspec.Struct, frozen=True, kw_only=True):
    """A measurement as the logbook holds it: with its sequence number, the device time as RFC 3339 text."""

    seq: int
    device_time: str
    temperature_c: float | None = None
    humidity_pct: float | None = None
    pressure_kpa: float | None = None
    latitude: float | None = None
    longitude: float | None = None
    battery_pct: float | None = None


class LogbookStatus(msgspec.Struct, frozen=True, kw_only=True):
    last_seq: int
    acked_through: int
    pending: int
    retained: int


def _load_statements() -> dict[str, str]:
    text = resources.files("tracker_sim").joinpath("logbook.sql").read_text(encoding="utf-8")
    parts = re.split(r"^-- name: (\w+)\s*$", text, flags=re.MULTILINE)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


_SQL = _load_statements()


def _row(measurement: Measurement) -> tuple[Any, ...]:
    return (
        rfc3339(measurement.device_time),
        measurement.temperature_c,
        measurement.humidity_pct,
        measurement.pressure_kpa,
        measurement.latitude,
        measurement.longitude,
        measurement.battery_pct,
    )


def _reading(row: Any) -> LoggedReading:
    return LoggedReading(
        seq=row[0],
        device_time=row[1],
        temperature_c=row[2],
        humidity_pct=row[3],
        pressure_kpa=row[4],
        latitude=row[5],
        longitude=row[6],
        battery_pct=row[7],
    )


def _utc_text(now: datetime) -> str:
    if now.tzinfo is None:
        raise ValueError("now must be aware")
    return now.astimezone(UTC).isoformat(timespec="microseconds")


def _runs(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Contiguous runs of sorted sequence numbers, as inclusive ranges: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    runs: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if runs and runs[-1][1] == seq - 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


class Logbook:
    """One tracker's logbook file. Open with :meth:`open` (or :func:`open_logbook`); one owner at a time."""

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        # aiosqlite serialises statements, not transactions: the lock keeps one coroutine's transaction from
        # interleaving with another's on the shared connection.
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path) -> Logbook:
        """Open (creating if needed) the logbook at ``path`` and resume where it left off."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; every write below states its own.
        connection = await aiosqlite.connect(path, isolation_level=None)
        try:
            await connection.execute("PRAGMA journal_mode = WAL")
            await connection.execute("PRAGMA synchronous = FULL")
            await connection.execute("PRAGMA busy_timeout = 10000")
            await connection.executescript(_SQL["create_schema"])
        except BaseException:
            await connection.close()
            raise
        return cls(connection, path)

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Logbook:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def log(self, measurement: Measurement) -> int:
        """Log one measurement and return its sequence number. Durable once this returns."""
        row = _row(measurement)
        async with self._lock:
            # One statement in autocommit mode is its own transaction: committed (and synced) on return.
            inserted = await self._db.execute_insert(_SQL["insert_reading"], row)
        if inserted is None:  # pragma: no cover - SQLite always reports last_insert_rowid
            raise LogbookError("SQLite did not report the new reading's rowid")
        return int(inserted[0])

    async def log_many(self, measurements: Iterable[Measurement]) -> range:
        """Log measurements in one transaction, in order; return their (consecutive) sequence numbers."""
        rows = [_row(measurement) for measurement in measurements]
        async with self._lock, self._transaction():
            if rows:
                await self._db.executemany(_SQL["insert_reading"], rows)
            last = await self._scalar("last_seq")
        return range(last - len(rows) + 1, last + 1)

    async def pending(self, limit: int) -> list[LoggedReading]:
        """Up to ``limit`` readings the service does not hold, oldest (lowest seq) first.

        These are the readings above the acknowledgement that were never confirmed, and those the service
        reported missing.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        async with self._lock:
            rows = await self._db.execute_fetchall(_SQL["pending"], (limit,))
        return [_reading(row) for row in rows]

    async def retained(self, from_seq: int = 1) -> list[LoggedReading]:
        """Every reading still in the logbook from ``from_seq`` on, acknowledged or not, in seq order."""
        async with self._lock:
            rows = await self._db.execute_fetchall(_SQL["readings_from"], (from_seq,))
        return [_reading(row) for row in rows]

    async def acknowledge(
        self,
        *,
        acked_through: int,
        missing: Sequence[tuple[int, int]] = (),
        delivered: Iterable[int] = (),
        now: datetime,
    ) -> int:
        """Record the service's answer to a batch; return the acknowledgement now in force.

        ``delivered`` are the seqs of the batch the answer belongs to: the service committed them, so those
        above ``acked_through`` are held, except those it lists as ``missing`` (which go back in the queue).
        An acknowledgement lower than the recorded one means the service lost data (restored from a backup):
        whatever is still retained above it is queued again.
        """
        if acked_through < 0:
            raise ValueError("acked_through must not be negative")
        now_text = _utc_text(now)
        async with self._lock, self._transaction():
            last_seq = await self._scalar("last_seq")
            if acked_through > last_seq:
                raise AcknowledgementAheadError(
                    f"the service acknowledges readings through seq {acked_through}, "
                    f"but this logbook ({self.path}) has logged only {last_seq}"
                )
            previous = await self._scalar("acked_through")
            if acked_through < previous:
                await self._db.execute(_SQL["unacknowledge_above"], (acked_through,))
            for first, last in _runs(seq for seq in delivered if seq > acked_through):
                await self._db.execute(_SQL["mark_held"], (first, last))
            for first, last in missing:
                await self._db.execute(_SQL["mark_missing"], (max(first, acked_through + 1), last))
            await self._db.execute(_SQL["mark_acked"], (now_text, min(previous, acked_through), acked_through))
            await self._db.execute(_SQL["set_acked_through"], (acked_through,))
        return acked_through

    async def prune(self, *, now: datetime, retention: timedelta) -> int:
        """Delete readings acknowledged at least ``retention`` before ``now``; return how many."""
        if retention < timedelta(0):
            raise ValueError("retention must not be negative")
        cutoff = _utc_text(now - retention)
        async with self._lock, self._transaction():
            cursor = await self._db.execute(_SQL["prune"], (cutoff,))
            return cursor.rowcount

    async def status(self) -> LogbookStatus:
        async with self._lock:
            last_seq = await self._scalar("last_seq")
            acked_through = await self._scalar("acked_through")
            rows = list(await self._db.execute_fetchall(_SQL["counts"]))
        retained, pending = rows[0]
        return LogbookStatus(
            last_seq=last_seq, acked_through=acked_through, pending=int(pending), retained=int(retained)
        )

    async def get_meta(self, key: str) -> str | None:
        """A value the owner stored with the logbook (tracker id, scenario, seed), or None."""
        async with self._lock:
            rows = list(await self._db.execute_fetchall(_SQL["get_meta"], (key,)))
        return str(rows[0][0]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        async with self._lock:
            await self._db.execute(_SQL["set_meta"], (key, value))

    async def _scalar(self, name: str) -> int:
        rows = list(await self._db.execute_fetchall(_SQL[name]))
        return int(rows[0][0])

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        # IMMEDIATE takes the write lock up front, so reading last_seq inside the transaction is exact.
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise
        await self._db.execute("COMMIT")


@asynccontextmanager
async def open_logbook(path: str | Path) -> AsyncIterator[Logbook]:
    """``async with open_logbook(path) as logbook:`` opens the logbook and closes it afterwards."""
    logbook = await Logbook.open(path)
    try:
        yield logbook
    finally:
        await logbook.close()
