"""Per-day evidence from readings: min, max, mean and time beyond each rule's threshold, per local day.

This is what logging fridge indicators print per day (Berlinger Fridge-tag ``Hist`` blocks: min/max/avg and
accumulated minutes beyond each alarm limit). Computed from readings with the engine's time accounting, it
lets a device's own summary be checked against its data, and gives summary-only devices and loggers the same
shape.

Time accounting: each reading's value holds from its time until the next reading, never across a gap longer
than ``max_gap_min``; a held value is split at the device's local midnight (device time plus the reading's own
``utc_offset_min``). An excursion continues across uncredited time when the readings on both sides are beyond
the threshold, as in :mod:`coldchain.domain.evaluation`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

import msgspec

from coldchain.domain.excursions import classify_fault
from coldchain.domain.profiles import AlarmRule, Metric
from coldchain.domain.readings import Reading

__all__ = ["DaySummary", "daily_summaries"]

_FIELD: dict[Metric, str] = {
    "temperature": "temperature_c",
    "humidity": "humidity_pct",
    "pressure": "pressure_kpa",
}


class DaySummary(msgspec.Struct, frozen=True, kw_only=True):
    """One local day of a device: temperature min/max of its readings, time-weighted mean over credited time,
    and per rule the minutes beyond the threshold and how many excursions had time in that day."""

    day: date
    readings: int
    min_c: float | None
    max_c: float | None
    mean_c: float | None
    credited_min: float
    beyond_min: dict[str, float]
    excursions: dict[str, int]


class _Day:
    __slots__ = ("beyond_min", "celsius_min", "credited_min", "excursions", "max_c", "min_c", "readings")

    def __init__(self, rules: Sequence[AlarmRule]) -> None:
        self.readings = 0
        self.min_c: float | None = None
        self.max_c: float | None = None
        self.credited_min = 0.0
        self.celsius_min = 0.0
        self.beyond_min = {rule.name: 0.0 for rule in rules}
        self.excursions: dict[str, set[int]] = {rule.name: set() for rule in rules}


def _local(moment: datetime, offset_min: int) -> datetime:
    return (moment + timedelta(minutes=offset_min)).replace(tzinfo=None)


class _Days:
    """The days met so far, created on first use."""

    def __init__(self, rules: Sequence[AlarmRule]) -> None:
        self.rules = rules
        self.by_date: dict[date, _Day] = {}

    def of(self, moment: datetime, offset_min: int) -> _Day:
        local_date = _local(moment, offset_min).date()
        if local_date not in self.by_date:
            self.by_date[local_date] = _Day(self.rules)
        return self.by_date[local_date]


def daily_summaries(readings: Iterable[Reading], rules: Sequence[AlarmRule], *, max_gap_min: float) -> list[DaySummary]:
    """Per local day summaries of readings in device time order (a day appears once it has a reading or
    credited time)."""
    days = _Days(rules)
    max_gap = timedelta(minutes=max_gap_min)
    ordinal = {rule.name: 0 for rule in rules}
    is_open = {rule.name: False for rule in rules}
    previous: Reading | None = None
    for reading in readings:
        if previous is not None:
            if reading.device_time < previous.device_time:
                raise ValueError(f"readings out of device time order at seq {reading.seq}")
            if reading.device_time - previous.device_time <= max_gap:
                _credit(previous, reading.device_time, rules, ordinal, days)
        entry = days.of(reading.device_time, reading.utc_offset_min)
        entry.readings += 1
        temperature_c = reading.temperature_c
        if temperature_c is not None and classify_fault("temperature", temperature_c) is None:
            entry.min_c = temperature_c if entry.min_c is None else min(entry.min_c, temperature_c)
            entry.max_c = temperature_c if entry.max_c is None else max(entry.max_c, temperature_c)
        for rule in rules:
            value = getattr(reading, _FIELD[rule.metric])
            if value is None or classify_fault(rule.metric, value) is not None:
                continue  # a faulted reading neither opens nor closes an excursion
            beyond = rule.is_beyond(value)
            if beyond and not is_open[rule.name]:
                ordinal[rule.name] += 1
            is_open[rule.name] = beyond
        previous = reading
    return [
        DaySummary(
            day=local_date,
            readings=entry.readings,
            min_c=entry.min_c,
            max_c=entry.max_c,
            mean_c=entry.celsius_min / entry.credited_min if entry.credited_min > 0 else None,
            credited_min=entry.credited_min,
            beyond_min=entry.beyond_min,
            excursions={name: len(ordinals) for name, ordinals in entry.excursions.items()},
        )
        for local_date, entry in sorted(days.by_date.items())
    ]


def _credit(held: Reading, until: datetime, rules: Sequence[AlarmRule], ordinal: dict[str, int], days: _Days) -> None:
    """Credit ``held``'s values from its time until ``until``, split at the device's local midnights."""
    offset = timedelta(minutes=held.utc_offset_min)
    start = held.device_time
    while start < until:
        local_start = _local(start, held.utc_offset_min)
        next_midnight = datetime.combine(local_start.date() + timedelta(days=1), datetime.min.time())
        end = min(until, next_midnight.replace(tzinfo=start.tzinfo) - offset)
        minutes = (end - start).total_seconds() / 60.0
        entry = days.of(start, held.utc_offset_min)
        temperature_c = held.temperature_c
        if temperature_c is not None and classify_fault("temperature", temperature_c) is None:
            entry.credited_min += minutes
            entry.celsius_min += temperature_c * minutes
        for rule in rules:
            value = getattr(held, _FIELD[rule.metric])
            if value is not None and classify_fault(rule.metric, value) is None and rule.is_beyond(value):
                entry.beyond_min[rule.name] += minutes
                entry.excursions[rule.name].add(ordinal[rule.name])
        start = end
