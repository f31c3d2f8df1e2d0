"""Records of the evaluation area: the EvaluationRecords contract and its SQL (shared by both engines).

A shipment is judged as streams, one per tracker assignment: the readings of that tracker inside the assignment's
time range. Each stream keeps the engine's state as opaque bytes (:func:`coldchain.domain.evaluation.encode_state`)
next to the profile version it was made for. What a stream finds is stored by the stable ``key`` of each finding:
excursions and alarms are upserted (the same condition is one row, however often it is judged), and a finding
that late data took back is marked withdrawn, never deleted. Logger files imported into a shipment's evidence keep
their original bytes and, for summary-only devices, their per-day figures.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from coldchain.domain.canonical import canonical_text
from coldchain.domain.evaluation import ReadingKey
from coldchain.domain.excursions import Excursion
from coldchain.domain.findings import EvaluationStream, StoredAlarm, StoredExcursion
from coldchain.domain.logger_files import DayLimit, LoggerDay, LoggerFile
from coldchain.domain.lot_budget import Spending
from coldchain.domain.profiles import Profile
from coldchain.domain.quarantine import QuarantinedReading
from coldchain.domain.readings import Reading
from coldchain.domain.rules import Alarm
from coldchain.domain.shipments import Assignment
from coldchain.storage._sqlbase import SqlBase

__all__ = [
    "DayLimit",
    "EvaluationRecords",
    "EvaluationSql",
    "EvaluationStream",
    "LoggerDay",
    "LoggerFile",
    "StoredAlarm",
    "StoredExcursion",
]

#: Stands for "no end" of an open assignment in range queries (both engines hold it exactly).
_END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)

EXCURSION_UPSERT = """
ON CONFLICT (assignment_id, event_key) DO UPDATE
SET ended_at = excluded.ended_at, duration_min = excluded.duration_min, uncredited_min = excluded.uncredited_min,
    peak = excluded.peak, degree_min = excluded.degree_min,
    custodian_id = COALESCE(excluded.custodian_id, excursions.custodian_id),
    updated_at = excluded.updated_at, withdrawn_at = NULL
"""
"""How both engines' batch upsert of excursions brings a stored one up to date: its figures and end, a custodian
it already has kept, and no longer withdrawn."""

_intervals = msgspec.msgpack.Encoder()
_intervals_of = msgspec.msgpack.Decoder(tuple[tuple[float, float, int], ...])


class EvaluationRecords(Protocol):
    """What a transaction offers for evaluation."""

    async def assignments_with_streams(
        self, tracker_id: int, *, earliest: datetime, latest: datetime
    ) -> list[tuple[Assignment, EvaluationStream | None]]:
        """The tracker's assignments that overlap ``[earliest, latest]``, by start, each with its stream (``None``
        before the stream's first judged reading). Locks nothing: ingest holds the tracker's sync-state lock."""
        ...

    async def evaluation_stream(self, assignment_id: int) -> EvaluationStream | None: ...

    async def evaluation_streams(self, shipment_id: int) -> list[EvaluationStream]:
        """The shipment's streams, by assignment id."""
        ...

    async def stream_readings(self, shipment_id: int) -> dict[int, int]:
        """How many readings each stream of the shipment has judged, by assignment id (every judged batch
        changes it: a cheap look at whether a stream moved on)."""
        ...

    async def save_evaluation_stream(self, stream: EvaluationStream) -> None:
        """Insert or replace the stream's state (its profile pin is kept from the first save)."""
        ...

    async def readings_after(
        self, tracker_id: int, after: ReadingKey | None, *, starts_at: datetime, ends_at: datetime | None
    ) -> list[Reading]:
        """The tracker's readings with ``starts_at <= device_time < ends_at`` (no end when ``None``) whose
        (device_time, seq) comes after ``after`` (all of them when ``None``), in that order."""
        ...

    async def count_readings_between(self, tracker_id: int, *, starts_at: datetime, ends_at: datetime | None) -> int:
        """How many readings of the tracker have ``starts_at <= device_time < ends_at`` (no end when ``None``)."""
        ...

    async def save_budget_spent(self, assignment_id: int, shipment_id: int, spendings: Sequence[Spending]) -> None:
        """What the stream spent of each lifetime rule so far: minutes and their intervals in device time."""
        ...

    async def lock_lot(self, lot_id: int) -> None:
        """Serialise, until the transaction ends, every transaction judging the budget of this lot (two trackers
        of one lot syncing at once must not both miss the crossing)."""
        ...

    async def lock_shipment_budget(self, shipment_id: int) -> None:
        """:meth:`lock_lot` for the budget of a shipment that belongs to no lot (its own)."""
        ...

    async def lot_spending(self, lot_id: int) -> list[Spending]:
        """Every stream's spending of every lifetime rule, over the lot's shipments."""
        ...

    async def shipment_spending(self, shipment_id: int) -> list[Spending]:
        """The shipment's streams' spending of every lifetime rule."""
        ...

    async def lifetime_alarms(self, *, lot_id: int | None, shipment_id: int) -> list[StoredAlarm]:
        """The standing lifetime alarms of the lot's shipments (of the shipment alone without a lot)."""
        ...

    async def lot_spent_totals(self, *, lot_id: int | None, shipment_id: int) -> tuple[dict[str, float], int]:
        """In one statement: each rule's minutes spent by the streams of the lot's shipments (of the shipment
        alone without a lot), summed, and how many lifetime alarms stand on them."""
        ...

    async def quarantined_between(
        self, tracker_id: int, *, starts_at: datetime, ends_at: datetime | None
    ) -> list[QuarantinedReading]:
        """The tracker's quarantined readings with ``starts_at <= device_time < ends_at`` (no end when ``None``),
        by sequence number."""
        ...

    async def upsert_excursions(
        self,
        assignment_id: int,
        shipment_id: int,
        found: Sequence[tuple[Excursion, int | None]],
        *,
        now: datetime,
    ) -> None:
        """Store each excursion (with its custodian's id) under its key, all in one statement: new, or an update
        of the same excursion (restored if it was withdrawn; a custodian of ``None`` keeps the one stored). Of two
        with one key, the later counts."""
        ...

    async def withdraw_excursion(self, assignment_id: int, key: str, *, now: datetime) -> None: ...

    async def stream_finding_keys(self, assignment_id: int) -> set[str]:
        """The keys of the stream's excursions and of its own alarms (not the lot's lifetime alarms), withdrawn
        ones left out."""
        ...

    async def excursions_of_shipment(self, shipment_id: int, *, withdrawn: bool = False) -> list[StoredExcursion]:
        """The shipment's excursions by start; withdrawn ones too when ``withdrawn``."""
        ...

    async def alarm_by_key(self, assignment_id: int, key: str) -> StoredAlarm | None: ...

    async def get_alarm(self, alarm_id: int) -> StoredAlarm | None: ...

    async def insert_alarms(
        self, shipment_id: int, found: Sequence[tuple[int, Alarm, bool]], *, detected_at: datetime
    ) -> list[StoredAlarm]:
        """Store newly raised alarms ``(assignment id, alarm, late)`` of the shipment, in one statement; those
        stored now, in the order given. An alarm whose key its stream holds already is left alone (and not
        returned); of two with one key, the first counts."""
        ...

    async def restore_alarm(self, alarm_id: int, alarm: Alarm, *, now: datetime) -> StoredAlarm:
        """The same condition judged again: its ``met_at`` follows the data, it is no longer withdrawn, and
        everything else (first detection, acknowledgement, escalation) stays."""
        ...

    async def withdraw_alarm(self, assignment_id: int, key: str, *, now: datetime) -> StoredAlarm | None:
        """Mark the alarm withdrawn (late data took its condition back); ``None`` when none was standing."""
        ...

    async def alarms_of_shipment(self, shipment_id: int, *, withdrawn: bool = False) -> list[StoredAlarm]:
        """The shipment's alarms by the time their condition began; withdrawn ones too when ``withdrawn``."""
        ...

    async def acknowledge_alarm(self, alarm_id: int, *, by: str, comment: str, now: datetime) -> StoredAlarm | None:
        """Acknowledge once; ``None`` when the alarm was already acknowledged (nothing changes then)."""
        ...

    async def escalate_alarms(self, *, detected_before: datetime, now: datetime) -> list[StoredAlarm]:
        """Mark standing alarms detected before ``detected_before`` and still unacknowledged as escalated, each
        once; returns those marked by this call."""
        ...

    async def insert_logger_file(
        self,
        *,
        shipment_id: int,
        tracker_id: int | None,
        vendor: str,
        model: str,
        serial: str,
        file_name: str | None,
        file_sha256: str,
        content: bytes,
        utc_offset_min: int,
        readings: Sequence[Reading],
        document: Mapping[str, Any],
        days: Sequence[LoggerDay],
        imported_by: str,
        now: datetime,
    ) -> LoggerFile | None:
        """Keep a logger export and its days as evidence; ``None`` when the shipment already holds this file."""
        ...

    async def logger_file_by_digest(self, shipment_id: int, file_sha256: str) -> LoggerFile | None: ...

    async def logger_files(self, shipment_id: int) -> list[LoggerFile]: ...

    async def logger_days(self, logger_file_id: int) -> list[LoggerDay]: ...


class EvaluationSql(SqlBase):
    """:class:`EvaluationRecords` in SQL."""

    def _optional_time(self, value: Any) -> datetime | None:
        return None if value is None else self._time_out(value)

    def _stream(self, row: Any, assignment_id: int) -> EvaluationStream:
        profile = msgspec.json.decode(row["profile_document"], type=Profile)
        return EvaluationStream(
            assignment_id=assignment_id,
            shipment_id=row["shipment_id"],
            tracker_id=row["tracker_id"],
            profile=msgspec.structs.replace(profile, version=row["profile_version"]),
            state=bytes(row["state"]),
            readings=row["readings"],
            updated_at=self._time_out(row["updated_at"]),
        )

    async def assignments_with_streams(
        self, tracker_id: int, *, earliest: datetime, latest: datetime
    ) -> list[tuple[Assignment, EvaluationStream | None]]:
        rows = self._q.assignments_with_streams(
            self._conn, tracker_id=tracker_id, earliest=self._time_in(earliest), latest=self._time_in(latest)
        )
        found: list[tuple[Assignment, EvaluationStream | None]] = []
        async for row in rows:
            assignment = Assignment(
                id=row["id"],
                shipment_id=row["shipment_id"],
                tracker_id=row["tracker_id"],
                starts_at=self._time_out(row["starts_at"]),
                ends_at=self._optional_time(row["ends_at"]),
                created_at=self._time_out(row["created_at"]),
            )
            stream = None if row["state"] is None else self._stream(row, assignment.id)
            found.append((assignment, stream))
        return found

    async def evaluation_stream(self, assignment_id: int) -> EvaluationStream | None:
        row = await self._q.evaluation_stream(self._conn, assignment_id=assignment_id)
        return None if row is None else self._stream(row, row["assignment_id"])

    async def evaluation_streams(self, shipment_id: int) -> list[EvaluationStream]:
        rows = self._q.evaluation_streams_of_shipment(self._conn, shipment_id=shipment_id)
        return [self._stream(row, row["assignment_id"]) async for row in rows]

    async def stream_readings(self, shipment_id: int) -> dict[int, int]:
        rows = self._q.stream_readings_of_shipment(self._conn, shipment_id=shipment_id)
        return {row["assignment_id"]: row["readings"] async for row in rows}

    _SAVE_STREAM = "save_evaluation_stream"
    """The named statement that stores a stream: its conflict target is the engine's key of the stream."""

    async def save_evaluation_stream(self, stream: EvaluationStream) -> None:
        await getattr(self._q, self._SAVE_STREAM)(
            self._conn,
            assignment_id=stream.assignment_id,
            shipment_id=stream.shipment_id,
            tracker_id=stream.tracker_id,
            profile_id=stream.profile.id,
            profile_version=stream.profile.version,
            state=stream.state,
            readings=stream.readings,
            updated_at=self._time_in(stream.updated_at),
        )

    async def readings_after(
        self, tracker_id: int, after: ReadingKey | None, *, starts_at: datetime, ends_at: datetime | None
    ) -> list[Reading]:
        if after is None or after.device_time < starts_at:
            after_time, after_seq = starts_at, 0  # every reading of the range comes after the key
        else:
            after_time, after_seq = after.device_time, after.seq
        rows = self._q.readings_of_tracker_after(
            self._conn,
            tracker_id=tracker_id,
            starts_at=self._time_in(starts_at),
            ends_at=self._time_in(_END_OF_TIME if ends_at is None else ends_at),
            after_time=self._time_in(after_time),
            after_seq=after_seq,
        )
        return [self._reading(row) async for row in rows]

    async def count_readings_between(self, tracker_id: int, *, starts_at: datetime, ends_at: datetime | None) -> int:
        count = await self._q.count_readings_of_tracker_between(
            self._conn,
            tracker_id=tracker_id,
            starts_at=self._time_in(starts_at),
            ends_at=self._time_in(_END_OF_TIME if ends_at is None else ends_at),
        )
        return int(count)

    async def save_budget_spent(self, assignment_id: int, shipment_id: int, spendings: Sequence[Spending]) -> None:
        for spending in sorted(spendings, key=lambda spending: spending.rule):
            await self._q.save_budget_spent(
                self._conn,
                assignment_id=assignment_id,
                rule=spending.rule,
                shipment_id=shipment_id,
                spent_min=spending.total_min,
                spending=_intervals.encode(spending.intervals),
            )

    async def lock_lot(self, lot_id: int) -> None:
        await self._lock(f"lot:{lot_id}")

    async def lock_shipment_budget(self, shipment_id: int) -> None:
        await self._lock(f"shipment-budget:{shipment_id}")

    def _spending(self, row: Any) -> Spending:
        held = bytes(row["spending"])
        return Spending.of(
            stream_id=row["assignment_id"],
            shipment_id=row["shipment_id"],
            rule=row["rule"],
            spent_min=float(row["spent_min"]),
            intervals=_intervals_of.decode(held) if held else (),
        )

    async def lot_spending(self, lot_id: int) -> list[Spending]:
        return [self._spending(row) async for row in self._q.lot_spending(self._conn, lot_id=lot_id)]

    async def shipment_spending(self, shipment_id: int) -> list[Spending]:
        return [self._spending(row) async for row in self._q.shipment_spending(self._conn, shipment_id=shipment_id)]

    async def lot_spent_totals(self, *, lot_id: int | None, shipment_id: int) -> tuple[dict[str, float], int]:
        if lot_id is None:
            rows = self._q.shipment_spent_totals(self._conn, shipment_id=shipment_id)
        else:
            rows = self._q.lot_spent_totals(self._conn, lot_id=lot_id)
        totals: dict[str, float] = {}
        standing = 0
        async for row in rows:
            if row["rule"] is None:
                standing = int(row["spent_min"])
            else:
                totals[row["rule"]] = float(row["spent_min"])
        return totals, standing

    async def lifetime_alarms(self, *, lot_id: int | None, shipment_id: int) -> list[StoredAlarm]:
        if lot_id is None:
            rows = self._q.shipment_lifetime_alarms(self._conn, shipment_id=shipment_id)
        else:
            rows = self._q.lot_lifetime_alarms(self._conn, lot_id=lot_id)
        return [self._stored_alarm(row) async for row in rows]

    async def quarantined_between(
        self, tracker_id: int, *, starts_at: datetime, ends_at: datetime | None
    ) -> list[QuarantinedReading]:
        found = []
        async for row in self._q.quarantined_of_tracker(self._conn, tracker_id=tracker_id):
            reading = msgspec.json.decode(row["reading"], type=Reading)
            if starts_at <= reading.device_time and (ends_at is None or reading.device_time < ends_at):
                found.append(
                    QuarantinedReading(
                        tracker_id=tracker_id,
                        reading=reading,
                        reason=row["reason"],
                        received_at=self._time_out(row["received_at"]),
                    )
                )
        return found

    # -- excursions ------------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def _upsert_excursion_rows(
        self, assignment_id: int, shipment_id: int, rows: Sequence[tuple[Any, ...]], *, now: datetime
    ) -> None:
        """Upsert ``(event_key, rule, metric, direction, threshold, started_at, start_seq, ended_at, duration_min,
        uncredited_min, peak, degree_min, custodian_id)`` rows (times already converted), one key each, in one
        statement (see :meth:`upsert_excursions`)."""

    async def upsert_excursions(
        self,
        assignment_id: int,
        shipment_id: int,
        found: Sequence[tuple[Excursion, int | None]],
        *,
        now: datetime,
    ) -> None:
        if not found:
            return
        # One row per key, the later winning: one statement may not update a row twice.
        latest = {excursion.key: (excursion, custodian_id) for excursion, custodian_id in found}
        rows = [
            (
                excursion.key,
                excursion.rule,
                excursion.metric,
                excursion.direction,
                excursion.threshold,
                self._time_in(excursion.start),
                excursion.start_seq,
                None if excursion.end is None else self._time_in(excursion.end),
                excursion.duration_min,
                excursion.uncredited_min,
                excursion.peak,
                excursion.degree_min,
                custodian_id,
            )
            for excursion, custodian_id in latest.values()
        ]
        await self._upsert_excursion_rows(assignment_id, shipment_id, rows, now=now)

    async def stream_finding_keys(self, assignment_id: int) -> set[str]:
        return {row["event_key"] async for row in self._q.stream_finding_keys(self._conn, assignment_id=assignment_id)}

    async def withdraw_excursion(self, assignment_id: int, key: str, *, now: datetime) -> None:
        await self._q.withdraw_excursion(self._conn, assignment_id=assignment_id, event_key=key, now=self._time_in(now))

    def _stored_excursion(self, row: Any) -> StoredExcursion:
        excursion = msgspec.convert(
            {
                "rule": row["rule"],
                "metric": row["metric"],
                "direction": row["direction"],
                "threshold": row["threshold"],
                "start": self._time_out(row["started_at"]),
                "start_seq": row["start_seq"],
                "end": self._optional_time(row["ended_at"]),
                "duration_min": row["duration_min"],
                "uncredited_min": row["uncredited_min"],
                "peak": row["peak"],
                "degree_min": row["degree_min"],
            },
            Excursion,
        )
        return StoredExcursion(
            id=row["id"],
            assignment_id=row["assignment_id"],
            shipment_id=row["shipment_id"],
            excursion=excursion,
            custodian_id=row["custodian_id"],
            detected_at=self._time_out(row["detected_at"]),
            updated_at=self._time_out(row["updated_at"]),
            withdrawn_at=self._optional_time(row["withdrawn_at"]),
        )

    async def excursions_of_shipment(self, shipment_id: int, *, withdrawn: bool = False) -> list[StoredExcursion]:
        rows = self._q.excursions_of_shipment(self._conn, shipment_id=shipment_id, withdrawn=withdrawn)
        return [self._stored_excursion(row) async for row in rows]

    # -- alarms ----------------------------------------------------------------------------------------------

    def _stored_alarm(self, row: Any) -> StoredAlarm:
        alarm = msgspec.convert(
            {
                "rule": row["rule"],
                "action": row["action"],
                "metric": row["metric"],
                "direction": row["direction"],
                "threshold": row["threshold"],
                "mode": row["mode"],
                "scope": row["scope"],
                "delay_min": row["delay_min"],
                "began_at": self._time_out(row["began_at"]),
                "began_seq": row["began_seq"],
                "met_at": self._time_out(row["met_at"]),
            },
            Alarm,
        )
        return StoredAlarm(
            id=row["id"],
            assignment_id=row["assignment_id"],
            shipment_id=row["shipment_id"],
            alarm=alarm,
            detected_at=self._time_out(row["detected_at"]),
            late=bool(row["late"]),
            acknowledged_at=self._optional_time(row["acknowledged_at"]),
            acknowledged_by=row["acknowledged_by"],
            acknowledgement=row["acknowledgement"],
            escalated_at=self._optional_time(row["escalated_at"]),
            withdrawn_at=self._optional_time(row["withdrawn_at"]),
            updated_at=self._time_out(row["updated_at"]),
        )

    async def alarm_by_key(self, assignment_id: int, key: str) -> StoredAlarm | None:
        row = await self._q.alarm_by_key(self._conn, assignment_id=assignment_id, event_key=key)
        return None if row is None else self._stored_alarm(row)

    async def get_alarm(self, alarm_id: int) -> StoredAlarm | None:
        row = await self._q.get_alarm(self._conn, id=alarm_id)
        return None if row is None else self._stored_alarm(row)

    @abc.abstractmethod
    async def _insert_alarm_rows(
        self, shipment_id: int, rows: Sequence[tuple[Any, ...]], *, detected_at: datetime
    ) -> list[Any]:
        """Insert ``(assignment_id, event_key, rule, action, metric, direction, threshold, mode, scope, delay_min,
        began_at, began_seq, met_at, late)`` rows (times already converted), one key each, in one statement,
        leaving alone a key its stream holds; the rows inserted (every column)."""

    async def insert_alarms(
        self, shipment_id: int, found: Sequence[tuple[int, Alarm, bool]], *, detected_at: datetime
    ) -> list[StoredAlarm]:
        first: dict[tuple[int, str], tuple[int, Alarm, bool]] = {}
        for assignment_id, alarm, late in found:
            first.setdefault((assignment_id, alarm.key), (assignment_id, alarm, late))
        if not first:
            return []
        rows = [
            (
                assignment_id,
                alarm.key,
                alarm.rule,
                alarm.action,
                alarm.metric,
                alarm.direction,
                alarm.threshold,
                alarm.mode,
                alarm.scope,
                alarm.delay_min,
                self._time_in(alarm.began_at),
                alarm.began_seq,
                self._time_in(alarm.met_at),
                late,
            )
            for assignment_id, alarm, late in first.values()
        ]
        added = await self._insert_alarm_rows(shipment_id, rows, detected_at=detected_at)
        inserted = {(stored.assignment_id, stored.alarm.key): stored for stored in map(self._stored_alarm, added)}
        return [inserted[place] for place in first if place in inserted]

    async def restore_alarm(self, alarm_id: int, alarm: Alarm, *, now: datetime) -> StoredAlarm:
        row = await self._q.restore_alarm(
            self._conn, id=alarm_id, met_at=self._time_in(alarm.met_at), now=self._time_in(now)
        )
        return self._stored_alarm(row)

    async def withdraw_alarm(self, assignment_id: int, key: str, *, now: datetime) -> StoredAlarm | None:
        row = await self._q.withdraw_alarm(
            self._conn, assignment_id=assignment_id, event_key=key, now=self._time_in(now)
        )
        return None if row is None else self._stored_alarm(row)

    async def alarms_of_shipment(self, shipment_id: int, *, withdrawn: bool = False) -> list[StoredAlarm]:
        rows = self._q.alarms_of_shipment(self._conn, shipment_id=shipment_id, withdrawn=withdrawn)
        return [self._stored_alarm(row) async for row in rows]

    async def acknowledge_alarm(self, alarm_id: int, *, by: str, comment: str, now: datetime) -> StoredAlarm | None:
        row = await self._q.acknowledge_alarm(
            self._conn, id=alarm_id, acknowledged_by=by, acknowledgement=comment, now=self._time_in(now)
        )
        return None if row is None else self._stored_alarm(row)

    async def escalate_alarms(self, *, detected_before: datetime, now: datetime) -> list[StoredAlarm]:
        rows = self._q.escalate_alarms(
            self._conn, detected_before=self._time_in(detected_before), now=self._time_in(now)
        )
        escalated = [self._stored_alarm(row) async for row in rows]
        return sorted(escalated, key=lambda stored: stored.id)

    # -- logger files ----------------------------------------------------------------------------------------

    def _logger_file(self, row: Any) -> LoggerFile:
        return LoggerFile(
            id=row["id"],
            shipment_id=row["shipment_id"],
            tracker_id=row["tracker_id"],
            vendor=row["vendor"],
            model=row["model"],
            serial=row["serial"],
            file_name=row["file_name"],
            file_sha256=row["file_sha256"],
            utc_offset_min=row["utc_offset_min"],
            readings=row["readings"],
            first_reading_at=self._optional_time(row["first_reading_at"]),
            last_reading_at=self._optional_time(row["last_reading_at"]),
            imported_by=row["imported_by"],
            imported_at=self._time_out(row["imported_at"]),
        )

    async def insert_logger_file(
        self,
        *,
        shipment_id: int,
        tracker_id: int | None,
        vendor: str,
        model: str,
        serial: str,
        file_name: str | None,
        file_sha256: str,
        content: bytes,
        utc_offset_min: int,
        readings: Sequence[Reading],
        document: Mapping[str, Any],
        days: Sequence[LoggerDay],
        imported_by: str,
        now: datetime,
    ) -> LoggerFile | None:
        times = [reading.device_time for reading in readings]
        row = await self._q.insert_logger_file(
            self._conn,
            shipment_id=shipment_id,
            tracker_id=tracker_id,
            vendor=vendor,
            model=model,
            serial=serial,
            file_name=file_name,
            file_sha256=file_sha256,
            content=content,
            utc_offset_min=utc_offset_min,
            readings=len(readings),
            first_reading_at=self._time_in(min(times)) if times else None,
            last_reading_at=self._time_in(max(times)) if times else None,
            document=canonical_text(document),
            imported_by=imported_by,
            imported_at=self._time_in(now),
        )
        if row is None:
            return None
        logger_file = self._logger_file(row)
        for number, day in enumerate(days, start=1):
            await self._q.insert_logger_day(
                self._conn,
                logger_file_id=logger_file.id,
                day_no=number,
                day=self._date_in(day.day),
                min_c=day.min_c,
                min_at=None if day.min_at is None else self._time_in(day.min_at),
                max_c=day.max_c,
                max_at=None if day.max_at is None else self._time_in(day.max_at),
                mean_c=day.mean_c,
                beyond=canonical_text(day.beyond),
                events=day.events,
                sensor_timeout_min=day.sensor_timeout_min,
            )
        return logger_file

    async def logger_file_by_digest(self, shipment_id: int, file_sha256: str) -> LoggerFile | None:
        row = await self._q.logger_file_by_digest(self._conn, shipment_id=shipment_id, file_sha256=file_sha256)
        return None if row is None else self._logger_file(row)

    async def logger_files(self, shipment_id: int) -> list[LoggerFile]:
        rows = self._q.logger_files_of_shipment(self._conn, shipment_id=shipment_id)
        return [self._logger_file(row) async for row in rows]

    async def logger_days(self, logger_file_id: int) -> list[LoggerDay]:
        rows = self._q.logger_days_of_file(self._conn, logger_file_id=logger_file_id)
        return [
            LoggerDay(
                day=self._date_out(row["day"]),
                min_c=row["min_c"],
                min_at=self._optional_time(row["min_at"]),
                max_c=row["max_c"],
                max_at=self._optional_time(row["max_at"]),
                mean_c=row["mean_c"],
                beyond=msgspec.json.decode(row["beyond"], type=list[DayLimit]),
                events=row["events"],
                sensor_timeout_min=row["sensor_timeout_min"],
            )
            async for row in rows
        ]
