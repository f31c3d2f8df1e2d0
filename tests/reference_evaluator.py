"""A deliberately naive reference evaluator: the rules of REFERENCE §3, MKT (§1) and the lot budget (§4) written
as plain loops over complete reading logs in time order, with no incremental state, no checkpoints and no buffers.

It shares no code with the engine (only the domain's result types and the fault classification), so the engine
must agree with it on random logs for the engine to be right. It covers instant, consecutive and cumulative
rules of scope shipment, lifetime budgets across the streams of a lot's shipments, gaps, sensor faults and MKT
(the shipment's, and the worst complete window found by trying every window that ends at a reading). Rolling
windows have tests of their own.

The convention it follows is the one the engine documents: each valid reading's value holds until the next
reading, never across a gap longer than ``max_gap_min``; an invalid reading credits nothing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from coldchain.domain.excursions import DataGap, Excursion, SensorFault, classify_fault
from coldchain.domain.profiles import AlarmRule, Profile
from coldchain.domain.readings import Reading
from coldchain.domain.rules import Alarm

__all__ = ["Findings", "LotFindings", "reference_lot", "reference_stream"]


@dataclass
class Findings:
    """What the reference finds in one stream, or in a shipment's streams put together."""

    excursions: list[Excursion] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)
    gaps: list[DataGap] = field(default_factory=list)
    faults: list[SensorFault] = field(default_factory=list)
    #: Per lifetime rule: the credited runs beyond the threshold, (start, end, the reading held at the start).
    spending: dict[str, list[tuple[datetime, datetime, Reading]]] = field(default_factory=dict)
    shipment_mkt_c: float | None = None
    window_mkt_c: float | None = None
    window_end: datetime | None = None


def _beyond(rule: AlarmRule, value: float) -> bool:
    if rule.direction == "above":
        return value >= rule.threshold if rule.inclusive else value > rule.threshold
    return value <= rule.threshold if rule.inclusive else value < rule.threshold


def _alarm(rule: AlarmRule, began: Reading, met_at: datetime) -> Alarm:
    return Alarm.of(rule, began_at=began.device_time, began_seq=began.seq, met_at=met_at)


def _minutes(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 60.0


def reference_stream(profile: Profile, log: Sequence[Reading]) -> Findings:
    """Everything but lifetime alarms for one stream's complete log (any order: sorted here)."""
    readings = sorted(log, key=lambda reading: (reading.device_time, reading.seq))
    found = Findings()
    max_gap = profile.gap_tolerance_min

    # Intervals between consecutive readings: (from, to, credited value or None).
    intervals: list[tuple[Reading, Reading, float | None]] = []
    for before, after in itertools.pairwise(readings):
        length = _minutes(before.device_time, after.device_time)
        if length > max_gap:
            found.gaps.append(DataGap(start=before.device_time, end=after.device_time, duration_min=length))
            intervals.append((before, after, None))
        elif classify_fault("temperature", before.temperature_c) is None:
            intervals.append((before, after, before.temperature_c))
        else:
            intervals.append((before, after, None))

    # Sensor faults: runs of invalid readings of one reason.
    run: list[Reading] = []
    reason = None
    for reading in readings:
        this = classify_fault("temperature", reading.temperature_c)
        if run and this != reason:
            found.faults.append(_fault(run, reason, end=reading.device_time))
            run = []
        if this is not None:
            run.append(reading)
            reason = this
    if run:
        found.faults.append(_fault(run, reason, end=None))

    for rule in profile.rules:
        _judge_rule(rule, readings, intervals, found)

    # MKT: Σ exp(-ΔH/RT)·Δt / Σ Δt over credited time; windows by brute force.
    settings = profile.mkt
    dh_over_r = (settings.activation_energy_kj_mol if settings else 83.144) * 1000.0 / 8.3144
    credited = [(a.device_time, b.device_time, value) for a, b, value in intervals if value is not None]
    total = sum(_minutes(a, b) for a, b, _ in credited)
    if total > 0:
        weighted = sum(math.exp(-dh_over_r / (value + 273.15)) * _minutes(a, b) for a, b, value in credited)
        found.shipment_mkt_c = dh_over_r / -math.log(weighted / total) - 273.15
    window_min = settings.window_min if settings else None
    if window_min is not None and readings:
        tolerance = profile.logging_interval_max_min or profile.gap_tolerance_min
        first = readings[0].device_time
        worst: float | None = None
        for reading in readings:
            end = reading.device_time
            if _minutes(first, end) < window_min - tolerance:
                continue
            start = end - timedelta(minutes=window_min)
            inside = [(max(a, start), min(b, end), v) for a, b, v in credited if b > start and a < end]
            minutes = sum(_minutes(a, b) for a, b, _ in inside)
            if minutes <= 0:
                continue
            ratio = sum(math.exp(-dh_over_r / (v + 273.15)) * _minutes(a, b) for a, b, v in inside) / minutes
            if worst is None or ratio > worst * (1 + 1e-12):
                worst, found.window_end = ratio, end
        if worst is not None:
            found.window_mkt_c = dh_over_r / -math.log(worst) - 273.15
    return found


def _fault(run: list[Reading], reason: object, *, end: datetime | None) -> SensorFault:
    first = run[0]
    return SensorFault(
        metric="temperature",
        reason=reason,  # type: ignore[arg-type]
        start=first.device_time,
        start_seq=first.seq,
        end=end,
        readings=len(run),
        first_value=first.temperature_c if reason == "out_of_range" else None,
    )


def _judge_rule(
    rule: AlarmRule,
    readings: list[Reading],
    intervals: list[tuple[Reading, Reading, float | None]],
    found: Findings,
) -> None:
    """One rule over the whole log: excursions are runs of valid readings beyond the threshold (invalid readings
    and gaps inside do not end them); the time after each reading is credited to the excursion when that
    reading's value counts, else left uncredited."""
    spent_total = 0.0
    first_start: Reading | None = None
    latched = False
    spending = found.spending.setdefault(rule.name, []) if rule.scope == "lifetime" else None
    opened: Reading | None = None
    credited = uncredited = degree = 0.0
    peak = 0.0
    end: datetime | None = None
    alarmed = False
    for index, reading in enumerate(readings):
        value = reading.temperature_c
        if classify_fault("temperature", value) is None:
            assert value is not None
            if _beyond(rule, value):
                if opened is None:
                    opened, credited, uncredited, degree, peak = reading, 0.0, 0.0, 0.0, value
                    end, alarmed = reading.device_time, False
                    first_start = first_start or reading
                    if rule.mode == "instant" or (rule.mode == "consecutive" and rule.delay_min == 0):
                        found.alarms.append(_alarm(rule, reading, reading.device_time))
                        alarmed = True
                    elif (
                        rule.mode == "cumulative"
                        and rule.scope == "shipment"
                        and not latched
                        and spent_total >= rule.delay_min
                    ):
                        found.alarms.append(_alarm(rule, first_start, reading.device_time))
                        latched = True
                elif (value > peak) if rule.direction == "above" else (value < peak):
                    peak = value
            elif opened is not None:
                found.excursions.append(_excursion(rule, opened, end, credited, uncredited, peak, degree))
                opened = None
        if opened is None or index == len(readings) - 1:
            continue
        start, stop, held = intervals[index]
        length = _minutes(start.device_time, stop.device_time)
        if held is None:
            uncredited += length
            continue
        before = credited
        credited += length
        excess = held - rule.threshold if rule.direction == "above" else rule.threshold - held
        if excess > 0:
            degree += excess * length
        end = stop.device_time
        if rule.mode == "consecutive" and not alarmed and before < rule.delay_min <= credited:
            met = start.device_time + timedelta(minutes=rule.delay_min - before)
            found.alarms.append(_alarm(rule, opened, met))
            alarmed = True
        cumulative = rule.mode == "cumulative" and rule.scope == "shipment"
        if cumulative and not latched and spent_total < rule.delay_min <= spent_total + length:
            met = start.device_time + timedelta(minutes=rule.delay_min - spent_total)
            assert first_start is not None
            found.alarms.append(_alarm(rule, first_start, met))
            latched = True
        spent_total += length
        if spending is not None and length > 0:
            if spending and spending[-1][1] == start.device_time:
                spending[-1] = (spending[-1][0], stop.device_time, spending[-1][2])
            else:
                spending.append((start.device_time, stop.device_time, start))
    if opened is not None:
        found.excursions.append(_excursion(rule, opened, None, credited, uncredited, peak, degree))


def _excursion(
    rule: AlarmRule,
    opened: Reading,
    end: datetime | None,
    credited: float,
    uncredited: float,
    peak: float,
    degree: float,
) -> Excursion:
    return Excursion(
        rule=rule.name,
        metric=rule.metric,
        direction=rule.direction,
        threshold=rule.threshold,
        start=opened.device_time,
        start_seq=opened.seq,
        end=end,
        duration_min=credited,
        uncredited_min=uncredited,
        peak=peak,
        degree_min=degree,
    )


@dataclass
class LotFindings:
    """Per shipment (in the order given): its streams' findings, the lot alarms it carries, and per lifetime
    rule what the lot had spent by its last reading and what it spent itself."""

    streams: list[list[Findings]]
    lot_alarms: list[list[Alarm]]
    consumed_min: list[dict[str, float]]
    spent_in_shipment_min: list[dict[str, float]]
    lot_spent_min: dict[str, float]


def reference_lot(profile: Profile, shipments: Sequence[Sequence[Sequence[Reading]]]) -> LotFindings:
    """The lot of ``shipments`` (each a list of stream logs, streams numbered in that order): each lifetime rule's
    budget runs out where the lot's spending, summed minute by minute over every stream in device time, reaches
    the allowance, on the stream spending then whose current run began first."""
    streams = [[reference_stream(profile, log) for log in logs] for logs in shipments]
    alarms: list[list[Alarm]] = [[] for _ in shipments]
    consumed: list[dict[str, float]] = [{} for _ in shipments]
    own: list[dict[str, float]] = [{} for _ in shipments]
    lot_total: dict[str, float] = {}
    for rule in profile.rules:
        if rule.scope != "lifetime":
            continue
        runs = [
            (number, stream_no, start, stop)
            for number, found in enumerate(streams)
            for stream_no, stream in enumerate(found)
            for start, stop, _ in stream.spending[rule.name]
        ]
        lot_total[rule.name] = sum(_minutes(start, stop) for _, _, start, stop in runs)
        for number, found in enumerate(streams):
            own[number][rule.name] = sum(_minutes(a, b) for stream in found for a, b, _ in stream.spending[rule.name])
            ends = [stream_log[-1].device_time for stream_log in (sorted(log, key=_order) for log in shipments[number])
                    if stream_log]  # fmt: skip
            last = max(ends) if ends else None
            consumed[number][rule.name] = own[number][rule.name] + sum(
                _minutes(start, min(stop, last))
                for other, _, start, stop in runs
                if other != number and last is not None and start < last
            )
        crossing = _crossing(rule, runs)
        if crossing is not None:
            number, stream_no, moment = crossing
            _, _, began = streams[number][stream_no].spending[rule.name][0]
            alarms[number].append(_alarm(rule, began, moment))
    return LotFindings(
        streams=streams,
        lot_alarms=alarms,
        consumed_min=consumed,
        spent_in_shipment_min=own,
        lot_spent_min=lot_total,
    )


def _order(reading: Reading) -> tuple[datetime, int]:
    return (reading.device_time, reading.seq)


def _crossing(rule: AlarmRule, runs: list[tuple[int, int, datetime, datetime]]) -> tuple[int, int, datetime] | None:
    """Walk device time minute by minute from the first spending (the logs are on whole minutes, so every run
    starts and ends on a minute); the budget runs out inside the minute where the sum reaches the allowance."""
    if not runs:
        return None
    moment = min(start for _, _, start, _ in runs)
    last = max(stop for _, _, _, stop in runs)
    spent = 0.0
    while moment < last:
        spending = [run for run in runs if run[2] <= moment < run[3]]
        if spending:
            after = spent + len(spending)
            if after >= rule.delay_min:
                at = moment + timedelta(minutes=max(0.0, rule.delay_min - spent) / len(spending))
                number, stream_no, _, _ = min(spending, key=lambda run: (run[2], run[0], run[1]))
                return number, stream_no, at
            spent = after
        moment += timedelta(minutes=1)
    return None
