"""The service's half of the sync protocol: what it holds of a tracker's log, and which readings it refuses.

A tracker numbers its readings 1, 2, 3... when it logs them. The service answers every batch with the highest
sequence number up to which it holds everything (the contiguous acknowledgement) and the ranges it is still
missing above that, so the tracker knows what it may forget and what to send again. Readings the service holds
include quarantined ones: a reading with impossible values is kept aside with its reason and acknowledged, so
one bad row never blocks a tracker's queue.

Sequence numbers run from 1 to :data:`SEQ_CEILING`. A reading numbered above the ceiling, or further past the
highest number held than one batch may jump, is kept in quarantine with the reason but does not extend the log:
otherwise every later answer would report the whole range below it missing, a range no tracker can fill.

A copy of a held sequence number with other values, or valid where the held reading was quarantined (or the
reverse), is a conflict: the held reading stays, and the copy is kept beside it with both values
(:class:`SyncConflict`), never dropped as a duplicate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Literal

import msgspec

from coldchain.domain.readings import Reading

__all__ = [
    "PHYSICAL_RANGES",
    "SEQ_CEILING",
    "Acknowledgement",
    "HeldAs",
    "SyncConflict",
    "SyncState",
    "Watched",
    "acknowledge",
    "all_acceptable",
    "clock_offset_s",
    "conflicts_with",
    "extend_acknowledgement",
    "is_fresh",
    "quarantine_reason",
    "sequence_refusal",
]

SEQ_CEILING = 2**62
"""The highest sequence number a tracker may use: at one reading a millisecond, more than a hundred million years
of readings. Readings numbered above it go to quarantine."""

HeldAs = Literal["reading", "quarantined"]

PHYSICAL_RANGES: dict[str, tuple[float, float]] = {
    "temperature_c": (-100.0, 100.0),  # beyond any cold-chain sensor; a disconnected probe reads -127 or 85+
    "humidity_pct": (0.0, 100.0),
    "pressure_kpa": (10.0, 120.0),  # aircraft holds stay above ~55 kPa; sea level is ~101 kPa
    "battery_pct": (0.0, 100.0),
    "latitude": (-90.0, 90.0),
    "longitude": (-180.0, 180.0),
}


class SyncState(msgspec.Struct, kw_only=True):
    """What the service holds of one tracker's log, and how its syncs have gone."""

    tracker_id: int
    acked_through: int = 0
    max_seq: int = 0
    readings_new: int = 0
    readings_duplicate: int = 0
    readings_quarantined: int = 0
    readings_conflicting: int = 0
    batches: int = 0
    last_sync_at: datetime | None = None
    last_sent_at: datetime | None = None
    """The ``sent_at`` of the newest fresh batch: a batch sent no later is a replay or a late copy."""
    clock_offset_s: float | None = None
    clock_flagged: bool = False
    max_refused_seq: int = 0
    """The highest number quarantined for being too far past ``max_seq``: numbers up to it may be held."""
    judge_from: datetime | None = None
    """Judging after commit: the earliest device time of the tracker's readings stored, or quarantined, and not
    judged yet (``None``: nothing waits to be judged)."""
    judge_until: datetime | None = None
    """Judging after commit: the latest device time of the readings waiting (with ``judge_from``, the span whose
    signed decisions are re-checked)."""
    judge_since: datetime | None = None
    """Judging after commit: when the first of the readings waiting was received."""
    judge_count: int = 0
    """Judging after commit: how many stored readings wait to be judged."""
    judge_round: int = 0
    """Judging after commit: how many times the tracker's waiting readings were judged. A batch handed to the
    judge in memory carries the round it waits for, so a stale one is told from a current one."""


class Watched(msgspec.Struct, frozen=True, kw_only=True):
    """The device time a tracker's assignments to shipments cover, as one span: from the first one's start to the
    last one's end (``None``: one is open). A reading outside it belongs to no shipment, so nothing is judged of it.
    """

    starts_at: datetime
    ends_at: datetime | None
    decided: bool = False
    """Whether a shipment of these assignments has a signed decision not yet marked changed: only then can a batch
    change an evaluation someone signed, so only then does ingest re-check decisions."""

    def meets(self, earliest: datetime, latest: datetime) -> bool:
        """Whether ``[earliest, latest]`` meets the span."""
        return self.starts_at <= latest and (self.ends_at is None or earliest < self.ends_at)


class SyncConflict(msgspec.Struct, frozen=True, kw_only=True):
    """A copy of a held sequence number that disagrees with the reading held: both are kept."""

    seq: int
    received_at: datetime
    held_as: HeldAs
    held: Reading
    sent: Reading
    sent_reason: str | None
    """Why the copy would have been quarantined, ``None`` when it is a valid reading."""


class Acknowledgement(msgspec.Struct, frozen=True, kw_only=True):
    acked_through: int
    missing: list[tuple[int, int]]


def acknowledge(acked_through: int, held_above: Iterable[int]) -> Acknowledgement:
    """The contiguous acknowledgement and the missing ranges, given every held sequence number above
    ``acked_through`` in ascending order. Missing ranges are inclusive and lie below the highest held number.
    """
    missing: list[tuple[int, int]] = []
    expected = acked_through + 1
    contiguous = True
    for seq in held_above:
        if seq < expected:
            continue
        if seq > expected:
            missing.append((expected, seq - 1))
            contiguous = False
        if contiguous:
            acked_through = seq
        expected = seq + 1
    return Acknowledgement(acked_through=acked_through, missing=missing)


def extend_acknowledgement(acked_through: int, max_seq: int, seqs: Iterable[int]) -> int | None:
    """The new contiguous acknowledgement when nothing is missing and ``seqs`` continue the log without a
    hole (the common case: no query needed), else ``None``. Sequence numbers already acknowledged are fine.
    """
    if max_seq > acked_through:
        return None
    # A set: a number repeated in the batch must not pass for the one missing ([1, 1, 3] leaves 2 missing).
    fresh = {seq for seq in seqs if seq > acked_through}
    if not fresh:
        return acked_through
    lowest, highest = min(fresh), max(fresh)
    if lowest != acked_through + 1 or highest - lowest != len(fresh) - 1:
        return None
    return highest


def quarantine_reason(reading: Reading, *, now: datetime, max_future: timedelta) -> str | None:
    """Why ``reading`` cannot be accepted as a measurement, or ``None`` when it can.

    Refused: a device time with no UTC form (its offset pushes it before year 1 or past 9999), NaN or infinite
    values, values outside what the quantity can physically be, a position with only one of latitude and
    longitude, and a device time further than ``max_future`` ahead of the service's clock.
    """
    try:
        reading.device_time.astimezone(UTC)
    except OverflowError:
        return f"device_time {reading.device_time.isoformat()} falls outside years 1 to 9999 in UTC"
    for name, (low, high) in PHYSICAL_RANGES.items():
        value = getattr(reading, name)
        if value is None:
            continue
        if not math.isfinite(value):
            return f"{name} is {value}"
        if not low <= value <= high:
            return f"{name} {value} is outside the physical range {low} to {high}"
    if (reading.latitude is None) != (reading.longitude is None):
        return "a position needs both latitude and longitude"
    if reading.device_time > now + max_future:
        ahead_h = (reading.device_time - now) / timedelta(hours=1)
        return f"device_time is {ahead_h:.1f} h ahead of the service's clock"
    return None


def all_acceptable(
    readings: Sequence[Reading], *, now: datetime, max_future: timedelta, quantities_checked: bool = False
) -> bool:
    """Whether :func:`quarantine_reason` finds nothing against any of ``readings``, told a column at a time.

    A batch of valid readings (nearly every batch) is checked by a few passes over each quantity in C (``sum``,
    ``min``, ``max``) rather than a call per reading. ``True`` only when every reading would pass; ``False`` when
    one may not, and the caller then asks :func:`quarantine_reason` reading by reading for the exact reasons. A NaN
    or an infinity makes its column's sum not finite; the earliest and the latest device time by instant bound
    every other one, so when those two have a UTC form and the latest is not too far ahead, all do and none is.
    ``quantities_checked``: the caller found every quantity present finite and within its physical range; the
    positions' pairs and the device times are still checked.
    """
    if not readings:
        return True
    unset: set[str] = set()  # the quantities some reading lacks
    if quantities_checked:
        unset = {name for name in ("latitude", "longitude") if None in map(attrgetter(name), readings)}
    elif not _quantities_acceptable(readings, unset):
        return False
    if unset & {"latitude", "longitude"} and any(
        (reading.latitude is None) != (reading.longitude is None) for reading in readings
    ):
        return False
    times = list(map(attrgetter("device_time"), readings))
    earliest, latest = min(times), max(times)
    try:
        earliest.astimezone(UTC)
        latest.astimezone(UTC)
    except OverflowError:
        return False
    return not latest > now + max_future


def _quantities_acceptable(readings: Sequence[Reading], unset: set[str]) -> bool:
    """Whether every quantity present in ``readings`` is finite and within its physical range, a column at a time;
    adds to ``unset`` the quantities some reading lacks."""
    for name, (low, high) in PHYSICAL_RANGES.items():
        values = list(map(attrgetter(name), readings))
        try:
            total = sum(values)
        except TypeError:  # a reading without this quantity: the rarer case, filtered rather than tested every time
            unset.add(name)
            values = [value for value in values if value is not None]
            if not values:
                continue
            total = sum(values)
        if not (math.isfinite(total) and low <= min(values) and max(values) <= high):
            return False
    return True


def sequence_refusal(seq: int, *, max_seq: int | None, max_jump: int) -> str | None:
    """Why a reading numbered ``seq`` cannot extend a log held up to ``max_seq``, or ``None`` when it can.

    A batch may reach at most ``max_jump`` numbers past ``max_seq``: a tracker sends its oldest readings first,
    so a bigger jump is a broken counter, and acknowledging it would leave a range missing for ever. A source
    numbered by time (``max_seq`` ``None``) keeps only the ceiling.
    """
    if seq > SEQ_CEILING:
        return f"seq {seq} is above the ceiling {SEQ_CEILING}"
    if max_seq is not None and seq > max_seq + max_jump:
        return f"seq {seq} is more than {max_jump} past the highest sequence number held ({max_seq})"
    return None


def _comparable(reading: Reading) -> tuple[object, ...]:
    # Quarantine keeps a reading as JSON, where NaN and infinities become null: compare them as absent.
    values = tuple(
        None if isinstance(v, float) and not math.isfinite(v) else v
        for v in (
            reading.temperature_c,
            reading.humidity_pct,
            reading.pressure_kpa,
            reading.latitude,
            reading.longitude,
            reading.battery_pct,
        )
    )
    return (reading.seq, reading.device_time, reading.utc_offset_min, *values)


def conflicts_with(held: Reading, held_reason: str | None, sent: Reading, sent_reason: str | None) -> bool:
    """Whether ``sent``, a copy of the held reading's sequence number, disagrees with it: other values, or valid
    where the held one is quarantined (or the reverse)."""
    if (held_reason is None) != (sent_reason is None):
        return True
    return _comparable(held) != _comparable(sent)


def is_fresh(sent_at: datetime | None, last_sent_at: datetime | None, *, brought_anything: bool) -> bool:
    """Whether a batch counts as the tracker's contact (refreshing ``last_sync_at`` and the clock offset).

    A signed batch can be captured and sent again by anyone: one sent no later than the newest batch taken is a
    replay (or a late copy) and changes nothing but what it brings. A batch without ``sent_at`` counts only when
    it brings something not held before.
    """
    if sent_at is None:
        return brought_anything
    return last_sent_at is None or sent_at > last_sent_at


def clock_offset_s(sent_at: datetime, received_at: datetime) -> float:
    """How far the tracker's clock runs ahead (positive) or behind (negative) of the service's, in seconds.

    The transit time of the request counts as clock error; on a working link it is well under a second.
    """
    return (sent_at - received_at).total_seconds()
