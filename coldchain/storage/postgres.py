"""PostgresStore: the production engine (asyncpg connection pool).

Readings are partitioned by the UTC month of their device time (``sql/postgres/0018_partitioned_readings.sql``)
and written two ways. Readings the service knows are new (ingest decides it under the tracker's lock) go straight
in with binary COPY into ``readings``, which routes each row to its month's partition: no staging, no look-up.
The careful path, for callers that cannot know (a logger file imported again), COPYs into a per-connection
temporary staging table, then one ``INSERT ... SELECT`` moves in the rows whose (tracker, seq) no partition holds.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from coldchain.domain.readings import Reading
from coldchain.domain.retention import month_end
from coldchain.storage._sql import SqlTransaction, load_queries
from coldchain.storage.base import ConnectionUse, Engine, StorageError, Transaction
from coldchain.storage.evaluation import EXCURSION_UPSERT
from coldchain.storage.migrations import MIGRATIONS_TABLE, discover_migrations, pending_migrations
from coldchain.storage.portal import BUCKET_SELECT

__all__ = ["PostgresStore"]


def _advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


MIGRATION_LOCK = _advisory_key("coldchain:migrations")
AUDIT_LOCK = _advisory_key("coldchain:audit_log")

_STAGE_COLUMNS = (
    "seq", "device_time", "utc_offset_min", "temperature_c", "humidity_pct", "pressure_kpa",
    "latitude", "longitude", "battery_pct",
)  # fmt: skip

# A per-connection staging table: COPY fills it (the fastest way in), one INSERT moves the rows on.
_CREATE_STAGE = """
CREATE TEMP TABLE reading_stage (
    seq BIGINT, device_time TIMESTAMPTZ, utc_offset_min SMALLINT, temperature_c DOUBLE PRECISION,
    humidity_pct DOUBLE PRECISION, pressure_kpa DOUBLE PRECISION, latitude DOUBLE PRECISION,
    longitude DOUBLE PRECISION, battery_pct DOUBLE PRECISION
) ON COMMIT DELETE ROWS
"""

_MOVE_STAGE = """
WITH staged AS (DELETE FROM reading_stage RETURNING *)
INSERT INTO readings (tracker_id, seq, device_time, utc_offset_min, received_at, temperature_c, humidity_pct,
                      pressure_kpa, latitude, longitude, battery_pct)
SELECT $1, s.seq, s.device_time, s.utc_offset_min, $2, s.temperature_c, s.humidity_pct, s.pressure_kpa,
       s.latitude, s.longitude, s.battery_pct
FROM staged s
WHERE NOT EXISTS (SELECT 1 FROM readings r WHERE r.tracker_id = $1 AND r.seq = s.seq)
ON CONFLICT DO NOTHING
RETURNING seq
"""

_READING_COLUMNS = (
    "tracker_id", "seq", "device_time", "utc_offset_min", "received_at", "temperature_c", "humidity_pct",
    "pressure_kpa", "latitude", "longitude", "battery_pct",
)  # fmt: skip

# The tracker's row of sync state, locked for the transaction: the lock and the read in one round trip, with the span
# the tracker's assignments cover and whether a shipment of them has a decision a batch could change.
_LOCKED_SYNC_STATE = """
SELECT s.tracker_id, s.acked_through, s.max_seq, s.readings_new, s.readings_duplicate, s.readings_quarantined,
       s.readings_conflicting, s.batches, s.last_sync_at, s.last_sent_at, s.clock_offset_s, s.clock_flagged,
       s.max_refused_seq, s.judge_from, s.judge_until, s.judge_since, s.judge_count, s.judge_round,
       w.watched_from, w.watched_to,
       EXISTS (SELECT 1 FROM tracker_assignments a JOIN decisions d ON d.shipment_id = a.shipment_id
               WHERE a.tracker_id = s.tracker_id AND d.evaluation_changed_at IS NULL) AS decided
FROM tracker_sync_state s,
     LATERAL (SELECT min(a.starts_at) AS watched_from,
                     CASE WHEN bool_or(a.ends_at IS NULL) THEN NULL ELSE max(a.ends_at) END AS watched_to
              FROM tracker_assignments a WHERE a.tracker_id = s.tracker_id) w
WHERE s.tracker_id = $1 FOR UPDATE OF s
"""

# PostgreSQL's binary COPY format (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format"): a
# signature, flags and header extension length; per row a field count, then each field as its byte length and
# its bytes in network order (-1 for NULL); -1 at the end. A timestamptz is an int64 of microseconds since
# 2000-01-01 00:00 UTC.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
_COPY_NULL = struct.pack("!i", -1)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ROW_START = struct.Struct("!hiq")  # field count, tracker_id
_ROW_REST = struct.Struct("!iqiqihiq" + "id" * 6)  # seq, device_time, utc_offset_min, received_at, six quantities
_ROW_KEYS = struct.Struct("!iqiqihiq")
_DOUBLE = struct.Struct("!id")
_ROW_TEMPERATURE_ONLY = struct.Struct("!iqiqihiqid" + "i" * 5)  # a logger's usual row: the other five NULL


def _binary_copy(tracker_id: int, readings: Sequence[Reading], *, received_at: datetime) -> bytes:
    """``readings`` as the body of a binary COPY into ``readings`` (columns ``_READING_COLUMNS``).

    Built here rather than by the driver's record encoder, which converts each of the two datetimes of every row
    on its own (most of the client's cost of a COPY): the time received is the same for the whole batch, and a
    device time (in UTC) is one subtraction. A row with every quantity measured takes one ``pack``, and so does a
    temperature logger's row (temperature alone: the others NULL), told first since a NULL makes the first
    ``pack`` raise; any other quantity not measured is a NULL field of its own (a third of the speed).
    """
    start = _ROW_START.pack(len(_READING_COLUMNS), 8, tracker_id)
    received = (received_at - _PG_EPOCH) // _MICROSECOND
    rows: list[bytes] = []
    append = rows.append
    # A logger's readings follow each other by one interval: a reading as far after the previous one as that one
    # after its own is that many microseconds later, an addition instead of a division of timedeltas.
    previous: datetime | None = None
    step: timedelta | None = None
    step_us = micros = 0
    for r in readings:
        moment = r.device_time
        try:
            if previous is not None and moment - previous == step:
                micros += step_us
            else:
                at = (moment - _PG_EPOCH) // _MICROSECOND
                step = None if previous is None else moment - previous
                step_us = at - micros
                micros = at
        except TypeError:
            raise ValueError("naive datetime: storage takes aware datetimes only") from None
        previous = moment
        # fmt: off
        if (
            r.humidity_pct is None and r.pressure_kpa is None and r.latitude is None and r.longitude is None
            and r.battery_pct is None and r.temperature_c is not None
        ):  # a temperature logger's row, told before the exception a NULL would cost
            append(_ROW_TEMPERATURE_ONLY.pack(
                8, r.seq, 8, micros, 2, r.utc_offset_min, 8, received, 8, r.temperature_c, -1, -1, -1, -1, -1,
            ))
            continue
        try:  # each value after its length in bytes
            append(_ROW_REST.pack(
                8, r.seq, 8, micros, 2, r.utc_offset_min, 8, received,
                8, r.temperature_c, 8, r.humidity_pct, 8, r.pressure_kpa, 8, r.latitude, 8, r.longitude,
                8, r.battery_pct,
            ))
        except struct.error:  # a quantity not measured (None): each field on its own
            quantities = (r.temperature_c, r.humidity_pct, r.pressure_kpa, r.latitude, r.longitude, r.battery_pct)
            append(
                _ROW_KEYS.pack(8, r.seq, 8, micros, 2, r.utc_offset_min, 8, received)
                + b"".join(_COPY_NULL if value is None else _DOUBLE.pack(8, value) for value in quantities)
            )
        # fmt: on
    return b"".join((_COPY_HEADER, start, start.join(rows), _COPY_TRAILER))


_READINGS_NUMBERED = """
SELECT seq, device_time, utc_offset_min, temperature_c, humidity_pct, pressure_kpa, latitude, longitude, battery_pct
FROM readings WHERE tracker_id = $1 AND seq = ANY($2::bigint[])
"""

_QUARANTINED_NUMBERED = """
SELECT seq, reason, reading FROM quarantined_readings WHERE tracker_id = $1 AND seq = ANY($2::bigint[])
"""

_INSERT_QUARANTINED = """
INSERT INTO quarantined_readings (tracker_id, seq, received_at, reason, reading)
SELECT $1, q.seq, $2, q.reason, q.reading
FROM unnest($3::bigint[], $4::text[], $5::text[]) WITH ORDINALITY AS q(seq, reason, reading, position)
ORDER BY q.position
ON CONFLICT DO NOTHING
RETURNING seq
"""

# A batch's excursions of one stream in one statement: new ones inserted, known ones (by key) brought up to date.
_UPSERT_EXCURSIONS = (
    """
INSERT INTO excursions (assignment_id, shipment_id, event_key, rule, metric, direction, threshold, started_at,
                        start_seq, ended_at, duration_min, uncredited_min, peak, degree_min, custodian_id,
                        detected_at, updated_at)
SELECT $1, $2, e.event_key, e.rule, e.metric, e.direction, e.threshold, e.started_at, e.start_seq, e.ended_at,
       e.duration_min, e.uncredited_min, e.peak, e.degree_min, e.custodian_id, $3, $3
FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::float8[], $9::timestamptz[], $10::bigint[],
            $11::timestamptz[], $12::float8[], $13::float8[], $14::float8[], $15::float8[], $16::bigint[])
     WITH ORDINALITY AS e(event_key, rule, metric, direction, threshold, started_at, start_seq, ended_at,
                          duration_min, uncredited_min, peak, degree_min, custodian_id, position)
ORDER BY e.position
"""
    + EXCURSION_UPSERT
)

# A batch's newly raised alarms of one shipment in one statement; a key its stream holds is left alone (the same
# condition is never raised twice).
_INSERT_ALARMS = """
INSERT INTO alarms (assignment_id, shipment_id, event_key, rule, action, metric, direction, threshold, mode, scope,
                    delay_min, began_at, began_seq, met_at, detected_at, late, updated_at)
SELECT a.assignment_id, $1, a.event_key, a.rule, a.action, a.metric, a.direction, a.threshold, a.mode, a.scope,
       a.delay_min, a.began_at, a.began_seq, a.met_at, $2, a.late, $2
FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::float8[], $10::text[],
            $11::text[], $12::float8[], $13::timestamptz[], $14::bigint[], $15::timestamptz[], $16::boolean[])
     WITH ORDINALITY AS a(assignment_id, event_key, rule, action, metric, direction, threshold, mode, scope,
                          delay_min, began_at, began_seq, met_at, late, position)
ORDER BY a.position
ON CONFLICT (assignment_id, event_key) DO NOTHING
RETURNING *
"""

# A batch of notifications and, from them, the deliveries to every live webhook of each recipient subscribed to
# the kind, in one statement (the deliveries' foreign key is checked at its end, when the notifications exist).
_INSERT_NOTIFICATIONS = """
WITH added AS (
    INSERT INTO notifications (organisation_id, kind, shipment_id, subject, payload, created_at)
    SELECT n.organisation_id, n.kind, n.shipment_id, n.subject, n.payload, $6
    FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[]) WITH ORDINALITY
         AS n(organisation_id, kind, shipment_id, subject, payload, position)
    ORDER BY n.position
    RETURNING id, organisation_id, kind
), delivered AS (
    INSERT INTO webhook_deliveries (webhook_id, notification_id, status, attempts, next_attempt_at, created_at)
    SELECT w.id, added.id, 'pending', 0, $6, $6
    FROM added
    JOIN webhooks w ON w.organisation_id = added.organisation_id AND w.deleted_at IS NULL
    JOIN webhook_kinds k ON k.webhook_id = w.id AND k.kind = added.kind
    ORDER BY added.id, w.id
    ON CONFLICT DO NOTHING
)
SELECT id FROM added ORDER BY id
"""

# Making or dropping a partition locks the whole of readings: give up after a while rather than hold every
# ingest behind the lock queue (the hourly job tries again; the default partition takes the rows meanwhile).
_PARTITION_LOCK_TIMEOUT = "5s"

_MONTHLY_PARTITION = re.compile(r"^readings_(\d{4})_(\d{2})$")

_PARTITIONS = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'readings'::regclass
"""


def _partition_name(month: date) -> str:
    return f"readings_{month.year:04d}_{month.month:02d}"


async def _prepare_connection(conn: asyncpg.Connection) -> None:
    """Once per pooled connection: the staging table survives the pool's reset between uses."""
    await conn.execute(_CREATE_STAGE)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A connection's reset on its way back to the pool: nothing to send.

    The driver's default sends ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` every time, a round
    trip per use of the pool (per sync batch). The store leaves nothing of that kind behind: every use is one
    transaction (the driver still rolls back one left open), its locks are transaction locks, its settings
    ``SET LOCAL``, and it neither listens nor keeps cursors.
    """


_BUCKET_SQL = BUCKET_SELECT.format(
    bucket="floor(extract(epoch FROM r.device_time) / $1)::bigint", shipment_id="$2", start="$3", end="$4"
)


class PostgresTransaction(SqlTransaction):
    async def _bucket_rows(
        self, shipment_id: int, *, start: datetime, end: datetime, seconds: int
    ) -> list[tuple[Any, ...]]:
        rows = await self._conn.fetch(_BUCKET_SQL, float(seconds), shipment_id, start, end)
        return [tuple(row) for row in rows]

    def _time_in(self, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("naive datetime: storage takes aware datetimes only")
        return value

    def _time_out(self, value: Any) -> datetime:
        result: datetime = value.astimezone(UTC)
        return result

    def _date_in(self, value: date) -> date:
        return value

    def _date_out(self, value: Any) -> date:
        result: date = value
        return result

    async def _lock(self, name: str) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", _advisory_key(f"coldchain:{name}"))

    async def _try_lock(self, name: str) -> bool:
        taken = await self._conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _advisory_key(f"coldchain:{name}"))
        return bool(taken)

    async def _lock_audit_chain(self) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", AUDIT_LOCK)

    async def _locked_sync_state_row(self, tracker_id: int) -> Any:
        return await self._conn.fetchrow(_LOCKED_SYNC_STATE, tracker_id)

    async def _lock_sync_states_of_shipment(self, shipment_id: int) -> None:
        await self._conn.execute(
            "SELECT 1 FROM tracker_sync_state WHERE tracker_id IN "
            "(SELECT tracker_id FROM tracker_assignments WHERE shipment_id = $1) ORDER BY tracker_id FOR UPDATE",
            shipment_id,
        )

    async def insert_readings(
        self, tracker_id: int, readings: Sequence[Reading], *, received_at: datetime
    ) -> list[int]:
        if not readings:
            return []
        first_copies: dict[int, Reading] = {}
        for reading in readings:
            first_copies.setdefault(reading.seq, reading)
        await self._conn.copy_records_to_table(
            "reading_stage",
            records=[
                (
                    r.seq,
                    self._time_in(r.device_time),
                    r.utc_offset_min,
                    r.temperature_c,
                    r.humidity_pct,
                    r.pressure_kpa,
                    r.latitude,
                    r.longitude,
                    r.battery_pct,
                )
                for r in first_copies.values()
            ],
            columns=_STAGE_COLUMNS,
        )
        rows = await self._conn.fetch(_MOVE_STAGE, tracker_id, self._time_in(received_at))
        return [row[0] for row in rows]

    async def append_readings(self, tracker_id: int, readings: Sequence[Reading], *, received_at: datetime) -> None:
        if not readings:
            return
        await self._conn.copy_to_table(
            "readings",
            # A memoryview: the driver would take bytes for a file name.
            source=memoryview(_binary_copy(tracker_id, readings, received_at=self._time_in(received_at))),
            columns=_READING_COLUMNS,
            format="binary",
        )

    async def _readings_numbered(self, tracker_id: int, seqs: Sequence[int]) -> list[Any]:
        return list(await self._conn.fetch(_READINGS_NUMBERED, tracker_id, list(seqs)))

    async def _quarantined_numbered(self, tracker_id: int, seqs: Sequence[int]) -> list[Any]:
        return list(await self._conn.fetch(_QUARANTINED_NUMBERED, tracker_id, list(seqs)))

    async def _insert_quarantined(
        self, tracker_id: int, rows: Sequence[tuple[int, str, str]], *, received_at: datetime
    ) -> list[int]:
        seqs, reasons, readings = (list(column) for column in zip(*rows, strict=True))
        found = await self._conn.fetch(
            _INSERT_QUARANTINED, tracker_id, self._time_in(received_at), seqs, reasons, readings
        )
        return [row["seq"] for row in found]

    async def _insert_notifications(
        self, rows: Sequence[tuple[int, str, int | None, str, str]], *, created_at: datetime
    ) -> list[int]:
        columns = list(zip(*rows, strict=True))
        found = await self._conn.fetch(_INSERT_NOTIFICATIONS, *columns, self._time_in(created_at))
        return [row["id"] for row in found]

    async def _upsert_excursion_rows(
        self, assignment_id: int, shipment_id: int, rows: Sequence[tuple[Any, ...]], *, now: datetime
    ) -> None:
        columns = list(zip(*rows, strict=True))
        await self._conn.execute(_UPSERT_EXCURSIONS, assignment_id, shipment_id, self._time_in(now), *columns)

    async def _insert_alarm_rows(
        self, shipment_id: int, rows: Sequence[tuple[Any, ...]], *, detected_at: datetime
    ) -> list[Any]:
        columns = list(zip(*rows, strict=True))
        return list(await self._conn.fetch(_INSERT_ALARMS, shipment_id, self._time_in(detected_at), *columns))

    async def prepare_reading_months(self, months: Sequence[date]) -> list[date]:
        await self._conn.execute(f"SET LOCAL lock_timeout = '{_PARTITION_LOCK_TIMEOUT}'")
        made = []
        try:
            for month in sorted(set(months)):
                if await self._conn.fetchval("SELECT readings_partition($1)", month):
                    made.append(month)
        except asyncpg.LockNotAvailableError as exc:
            raise StorageError(f"readings are busy: no partition made within {_PARTITION_LOCK_TIMEOUT}") from exc
        return made

    async def reading_months(self, *, ending_by: datetime) -> list[date]:
        months = []
        for row in await self._conn.fetch(_PARTITIONS):
            match = _MONTHLY_PARTITION.match(row["relname"])
            if match is not None:
                month = date(int(match[1]), int(match[2]), 1)
                if month_end(month) <= ending_by:
                    months.append(month)
        return sorted(months)

    async def remove_reading_month(self, month: date) -> int:
        name = _partition_name(month)
        if name not in {row["relname"] for row in await self._conn.fetch(_PARTITIONS)}:
            return 0
        await self._conn.execute(f"SET LOCAL lock_timeout = '{_PARTITION_LOCK_TIMEOUT}'")
        try:
            # The name is made from a date and checked against the partitions of readings above.
            count: int = await self._conn.fetchval(f"SELECT count(*) FROM {name}")
            await self._conn.execute(f"DROP TABLE {name}")
        except asyncpg.LockNotAvailableError as exc:
            raise StorageError(f"readings are busy: {name} not dropped within {_PARTITION_LOCK_TIMEOUT}") from exc
        return count


class PostgresStore:
    """The :class:`~coldchain.storage.base.Store` on a PostgreSQL database."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._queries = load_queries("asyncpg")

    @property
    def engine(self) -> Engine:
        return "postgresql"

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10, migrate: bool = True) -> PostgresStore:
        pool = await asyncpg.create_pool(
            url, min_size=1, max_size=pool_size, init=_prepare_connection, reset=_keep_session
        )
        store = cls(pool)
        if migrate:
            try:
                await store.migrate()
            except BaseException:
                await pool.close()
                raise
        return store

    async def migrate(self) -> list[str]:
        """Apply pending migrations in one transaction under an advisory lock; returns those applied."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
            )
            applied = {
                row["version"]: row["checksum"]
                for row in await conn.fetch(f"SELECT version, checksum FROM {MIGRATIONS_TABLE}")
            }
            pending = pending_migrations(discover_migrations("postgresql"), applied)
            for migration in pending:
                await conn.execute(migration.sql)
                await conn.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                    datetime.now(UTC),
                )
            return [migration.label for migration in pending]

    @asynccontextmanager
    async def transaction(self, *, snapshot: bool = False) -> AsyncIterator[Transaction]:
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read" if snapshot else None, readonly=snapshot),
        ):
            tx = PostgresTransaction(conn, self._queries, one_moment=snapshot)
            yield tx
            await tx.chain_audit()

    async def ping(self) -> bool:
        try:
            async with self._pool.acquire(timeout=2) as conn:
                return bool(await conn.fetchval("SELECT 1", timeout=2) == 1)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False

    async def pending_migrations(self) -> list[str]:
        async with self._pool.acquire() as conn:
            exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", MIGRATIONS_TABLE)
            rows = await conn.fetch(f"SELECT version, checksum FROM {MIGRATIONS_TABLE}") if exists else []
        applied = {row["version"]: row["checksum"] for row in rows}
        return [m.label for m in pending_migrations(discover_migrations("postgresql"), applied)]

    def connections(self) -> ConnectionUse:
        size, idle = self._pool.get_size(), self._pool.get_idle_size()
        return ConnectionUse(in_use=size - idle, idle=idle, max=self._pool.get_max_size())

    async def close(self) -> None:
        if not self._pool.is_closing():
            await self._pool.close()
