"""Use case: import a file exported from a USB temperature logger into a shipment's evidence.

Berlinger exports (Fridge-tag 2, 2 L, UL, Q-tag CLm doc LR) are parsed whole before anything is stored; a
malformed file is refused with the line number of the problem (:class:`MalformedLoggerFile`, a 422 at the edge)
and nothing of it is kept. A valid file is stored in one transaction:

- its ``Data:`` rows become readings of the logger as a tracker (serial ``berlinger-<device serial>``), assigned
  to the shipment for the time the rows span, and are judged like synced readings. A row's sequence number is
  its device time in whole minutes since the epoch (rows are minute-stamped and strictly increasing), so a
  later download of the same logger repeats the numbers of the rows it shares with an earlier one, and those
  are held once;
- its per-day summaries (``Hist:`` blocks: min, max, mean and minutes beyond each alarm limit) become per-day
  evidence, which is all that summary-only devices (Fridge-tag 2, UL) give;
- the file itself is kept byte for byte with its SHA-256, its device, configuration and run summary. The same
  file imported again into the same shipment changes nothing and answers the import already held.

Times in the files are the device's local clock without an offset: the caller says which offset it ran on.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.logger_files import DayLimit, LoggerDay, LoggerFile
from coldchain.domain.loggers.berlinger import BerlingerExport, LoggerFileError, parse_berlinger
from coldchain.domain.parties import Tracker
from coldchain.domain.readings import Reading
from coldchain.domain.shipments import Shipment, overlaps
from coldchain.domain.sync import quarantine_reason
from coldchain.services.access import require, visible_shipment
from coldchain.services.decisions import recheck_decisions, touched_span
from coldchain.services.errors import Conflict, Invalid
from coldchain.services.evaluation import judge_readings
from coldchain.storage import Store, Transaction

__all__ = ["MAX_FILE_NAME_CHARS", "MAX_UTC_OFFSET_MIN", "LoggerImport", "MalformedLoggerFile", "import_logger_file"]

#: Clocks run from UTC−12:00 to UTC+14:00.
MAX_UTC_OFFSET_MIN = 14 * 60

MAX_FILE_NAME_CHARS = 255

_SERIAL_PREFIX = "berlinger-"
_MAX_FUTURE = timedelta(hours=24)


class MalformedLoggerFile(Invalid):
    """The file is not a valid logger export: ``line`` (1-based) and what was wrong there."""

    def __init__(self, error: LoggerFileError) -> None:
        super().__init__(f"line {error.line}: {error.problem}")
        self.line = error.line
        self.problem = error.problem


class LoggerImport(msgspec.Struct, frozen=True, kw_only=True):
    """What an import did: the file as held, whether this call stored it, the readings it added, its days."""

    logger_file: LoggerFile
    new: bool
    readings_new: int
    days: list[LoggerDay]
    tracker_serial: str | None


def _minute_seq(reading: Reading) -> int:
    return int(reading.device_time.timestamp() // 60)


def _days(export: BerlingerExport) -> list[LoggerDay]:
    """The device's per-day summaries, each alarm slot named after the limit it was configured with."""
    limits = {limit.index: limit for limit in export.configuration.alarms}
    days = []
    for summary in export.days:
        beyond = []
        for slot in summary.alarms:
            limit = limits.get(slot.index)
            if limit is None:  # a disabled slot (Q-tag Type 0) counts nothing
                continue
            rule = limit.to_rule()
            beyond.append(
                DayLimit(
                    limit=rule.name,
                    direction=rule.direction,
                    threshold_c=limit.threshold_c,
                    delay_min=rule.delay_min,
                    minutes=float(slot.minutes),
                    alarm_met_at=slot.first_at,
                )
            )
        days.append(
            LoggerDay(
                day=summary.day,
                min_c=summary.min_c,
                min_at=summary.min_at,
                max_c=summary.max_c,
                max_at=summary.max_at,
                mean_c=summary.mean_c,
                beyond=beyond,
                events=summary.events,
                sensor_timeout_min=summary.sensor_timeout_min,
            )
        )
    return days


def _document(export: BerlingerExport) -> dict[str, Any]:
    """What the file says besides its rows and days, JSON-ready."""
    fields: dict[str, Any] = msgspec.to_builtins(
        {
            "device": export.device,
            "configuration": export.configuration,
            "activated_at": export.activated_at,
            "report_created_at": export.report_created_at,
            "run": export.run,
            "markers": export.markers,
            "signature": export.signature,
        }
    )
    return fields


async def _logger_tracker(tx: Transaction, export: BerlingerExport, organisation_id: int, *, now: datetime) -> Tracker:
    """The logger as a tracker, created on its first import. It never syncs: its secret is never handed out."""
    serial = _SERIAL_PREFIX + export.device.serial
    tracker = await tx.get_tracker(serial)
    if tracker is None:
        return await tx.create_tracker(
            serial=serial,
            secret=secrets.token_hex(32),
            organisation_id=organisation_id,
            model=export.device.model,
            now=now,
        )
    if tracker.model != export.device.model:
        raise Conflict(f"tracker {serial!r} exists and is a {tracker.model or 'device'}, not a {export.device.model}")
    return tracker


async def _assign_logger(
    tx: Transaction, shipment: Shipment, tracker: Tracker, readings: list[Reading], *, now: datetime
) -> None:
    """Assign the logger to the shipment for the time its rows span. A later download of the same logger for
    the same shipment extends that assignment (the stream goes on); rows before its start are kept, not judged."""
    starts_at = readings[0].device_time
    ends_at = readings[-1].device_time + timedelta(minutes=1)
    assignments = await tx.assignments_of_tracker(tracker.id)
    clash = overlaps(starts_at, ends_at, assignments)
    if clash is None:
        await tx.assign_tracker(
            shipment_id=shipment.id, tracker_id=tracker.id, starts_at=starts_at, ends_at=ends_at, now=now
        )
        return
    if clash.shipment_id == shipment.id:
        if clash.ends_at is None or clash.ends_at >= ends_at:
            return
        others = [assignment for assignment in assignments if assignment.id != clash.id]
        later = overlaps(clash.ends_at, ends_at, others)
        if later is None:
            await tx.end_assignment(clash.id, ends_at)
            return
        clash = later
    raise Conflict(
        f"logger {tracker.serial!r} is assigned to shipment {clash.shipment_id} from {clash.starts_at.isoformat()}:"
        f" its rows from {starts_at.isoformat()} to {readings[-1].device_time.isoformat()} cannot belong to"
        f" shipment {shipment.id} as well"
    )


async def _store_readings(
    tx: Transaction, shipment: Shipment, tracker: Tracker, export: BerlingerExport, *, now: datetime
) -> int:
    """Store and judge the file's rows as the logger's readings; returns how many were new."""
    readings = [msgspec.structs.replace(reading, seq=_minute_seq(reading)) for reading in export.readings]
    state = await tx.sync_state(tracker.id)  # lock: one import of a logger at a time
    await _assign_logger(tx, shipment, tracker, readings, now=now)
    accepted: list[Reading] = []
    refused: list[tuple[Reading, str]] = []
    for reading in readings:
        reason = quarantine_reason(reading, now=now, max_future=_MAX_FUTURE)
        if reason is None:
            accepted.append(reading)
        else:
            refused.append((reading, reason))
    stored = set(await tx.insert_readings(tracker.id, accepted, received_at=now)) if accepted else set()
    fresh = [reading for reading in accepted if reading.seq in stored]
    await judge_readings(tx, tracker.id, fresh, now=now)
    quarantined = len(await tx.quarantine_readings(tracker.id, refused, received_at=now)) if refused else 0
    if fresh or quarantined:
        span = touched_span([r.device_time for r in fresh] + [r.device_time for r, _ in refused])
        if span is not None:
            await recheck_decisions(tx, tracker.id, earliest=span[0], latest=span[1], now=now)
    state.readings_new += len(fresh)
    state.readings_quarantined += quarantined
    state.readings_duplicate += len(readings) - len(fresh) - quarantined
    state.batches += 1
    state.last_sync_at = now
    await tx.save_sync_state(state)
    return len(fresh)


async def import_logger_file(
    store: Store,
    principal: Principal,
    shipment_id: int,
    content: bytes,
    *,
    file_name: str | None = None,
    utc_offset_min: int = 0,
    now: datetime,
) -> LoggerImport:
    """Import a logger export into the evidence of a shipment the caller takes part in (role action
    ``custody``: those who handle the goods record what happened to them).

    Raises :class:`MalformedLoggerFile` for a file that is not a valid export (nothing is stored), and
    :class:`Conflict` when its rows overlap the logger's assignment to another shipment.
    """
    if abs(utc_offset_min) > MAX_UTC_OFFSET_MIN:
        raise Invalid(f"utc_offset_min: must be between -{MAX_UTC_OFFSET_MIN} and {MAX_UTC_OFFSET_MIN}")
    if file_name is not None and not 0 < len(file_name) <= MAX_FILE_NAME_CHARS:
        raise Invalid(f"file_name: 1 to {MAX_FILE_NAME_CHARS} characters")
    problem: LoggerFileError | None = None
    try:
        export = parse_berlinger(content, utc_offset_min=utc_offset_min)
    except LoggerFileError as error:
        problem = error
    digest = hashlib.sha256(content).hexdigest()
    async with store.transaction() as tx:
        shipment = await visible_shipment(tx, principal, shipment_id)
        require(principal, "custody")
        if problem is not None:
            raise MalformedLoggerFile(problem)
        if shipment.status in ("closed", "cancelled"):
            raise Conflict(f"shipment {shipment_id} is {shipment.status}: no evidence can be added")
        held = await tx.logger_file_by_digest(shipment_id, digest)
        if held is not None:
            days = await tx.logger_days(held.id)
            serial = _SERIAL_PREFIX + export.device.serial if held.tracker_id is not None else None
            return LoggerImport(logger_file=held, new=False, readings_new=0, days=days, tracker_serial=serial)
        tracker: Tracker | None = None
        readings_new = 0
        if export.readings:
            owner = shipment.organisation_id if principal.organisation_id is None else principal.organisation_id
            tracker = await _logger_tracker(tx, export, owner, now=now)
            readings_new = await _store_readings(tx, shipment, tracker, export, now=now)
        days = _days(export)
        logger_file = await tx.insert_logger_file(
            shipment_id=shipment_id,
            tracker_id=None if tracker is None else tracker.id,
            vendor="berlinger",
            model=export.device.model,
            serial=export.device.serial,
            file_name=file_name,
            file_sha256=digest,
            content=content,
            utc_offset_min=utc_offset_min,
            readings=export.readings,
            document=_document(export),
            days=days,
            imported_by=principal.actor,
            now=now,
        )
        if logger_file is None:
            raise Conflict(f"shipment {shipment_id} received this file concurrently; it is held once")
        detail = {
            "file_sha256": digest,
            "model": export.device.model,
            "serial": export.device.serial,
            "readings": len(export.readings),
            "readings_new": readings_new,
            "days": len(days),
        }
        await tx.append_audit(
            actor=principal.actor,
            action="logger.imported",
            subject=f"shipment:{shipment_id}",
            detail=msgspec.json.encode(detail).decode(),
            now=now,
        )
    return LoggerImport(
        logger_file=logger_file,
        new=True,
        readings_new=readings_new,
        days=days,
        tracker_serial=None if tracker is None else tracker.serial,
    )
