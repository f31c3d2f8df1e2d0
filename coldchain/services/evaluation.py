"""Use cases of evaluation: judge newly stored readings against their shipments, and say where a shipment stands.

A reading belongs to the shipment its tracker was assigned to at the reading's device time. Each assignment is
judged as one stream, keyed by the assignment's id, with the incremental protocol of
:mod:`coldchain.domain.evaluation`: a batch whose readings all come after the stream's last reading advances the
stored state by those readings only (cost in proportion to the new readings); a batch with an earlier reading
rewinds the state to its last checkpoint before that reading and replays the stored readings from there. The
findings are stored by their stable keys, so any split into batches and any delivery order end with what one
pass over the complete log in time order finds; a finding that late data took back is marked withdrawn.

A shipment's judgement combines its streams: times beyond a rule, excursion and alarm counts add up, a rule's
status is its worst in any stream, MKT is taken over the credited time of all streams, and a lifetime rule's
budget counts what this shipment spent plus what the lot's other shipments spent (their stored figures, as they
stand now). Each stream is judged on its own: streams are meant to follow each other (a tracker replaced on the
way); two trackers watching the same time both count, which errs on the side of caution.

The lot's budget enters a stream once, when the stream starts (``lot_spent_before_min``): what the lot's other
shipments spent by then. The status shows current figures.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from datetime import datetime

import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.budget import stability_budget
from coldchain.domain.disposition import Disposition, recommend_disposition
from coldchain.domain.evaluation import (
    Evaluation,
    EvaluationState,
    Event,
    MktResult,
    ReadingKey,
    advance,
    decode_state,
    encode_state,
    is_late,
    new_state,
    rewind,
    summarise,
)
from coldchain.domain.excursions import Excursion
from coldchain.domain.mkt import KELVIN_OFFSET, dh_over_r_k, mkt_from_sums
from coldchain.domain.profiles import AlarmRule, Profile
from coldchain.domain.readings import Reading
from coldchain.domain.rules import Alarm, RuleStatus, RuleSummary
from coldchain.domain.shipments import Assignment, Shipment
from coldchain.services import alarms, custody
from coldchain.services.access import require, visible_shipment
from coldchain.storage import Store, Transaction
from coldchain.storage.evaluation import EvaluationStream, StoredAlarm, StoredExcursion

__all__ = [
    "CHECKPOINTS_KEPT",
    "CHECKPOINT_EVERY_MIN",
    "ShipmentJudgement",
    "budgets_left",
    "combine_streams",
    "judge_readings",
    "shipment_alarms",
    "shipment_excursions",
    "shipment_judgement",
]

_STATUS_RANK: dict[RuleStatus, int] = {"ok": 0, "pending": 1, "alarmed": 2}

#: How far back late data is re-judged from a checkpoint rather than from the stream's first reading: one
#: checkpoint an hour of device time, a day of them. Late readings come from retried or reordered batches,
#: typically minutes to hours late; older ones replay the whole stream (correct, only slower). The state holds
#: the MKT window's buffer from the oldest checkpoint on, so this also bounds what each batch reads and writes.
CHECKPOINT_EVERY_MIN = 60.0
CHECKPOINTS_KEPT = 24


class ShipmentJudgement(msgspec.Struct, frozen=True, kw_only=True):
    """Where a shipment stands: its streams combined (``evaluation``, budgets with the lot's current figures),
    the stored excursions and alarms (with their custodians and acknowledgements), and the recommendation."""

    shipment: Shipment
    profile: Profile
    streams: int
    evaluation: Evaluation
    excursions: list[StoredExcursion]
    alarms: list[StoredAlarm]
    disposition: Disposition


# -- judging at ingest -----------------------------------------------------------------------------------------


async def judge_readings(tx: Transaction, tracker_id: int, readings: Sequence[Reading], *, now: datetime) -> None:
    """Judge ``readings`` (just stored, in any order) of ``tracker_id`` inside the ingest transaction ``tx``.

    Readings outside every assignment of the tracker belong to no shipment and are not judged. The caller holds
    the tracker's sync-state lock, so the batches of one tracker, and therefore of one stream, never interleave.
    """
    if not readings:
        return
    ordered = _in_order(readings)
    earliest, latest = ordered[0].device_time, ordered[-1].device_time
    candidates = await tx.assignments_with_streams(tracker_id, earliest=earliest, latest=latest)
    for (assignment, stream), own in _by_assignment(candidates, ordered, earliest=earliest, latest=latest):
        await _judge_stream(tx, assignment, stream, own, now=now)


def _in_order(readings: Sequence[Reading]) -> list[Reading]:
    """The readings by (device time, seq): as they usually come already, which a look tells without sorting."""
    previous = readings[0]
    for reading in readings[1:]:
        if reading.device_time < previous.device_time or (
            reading.device_time == previous.device_time and reading.seq < previous.seq
        ):
            return sorted(readings, key=lambda reading: (reading.device_time, reading.seq))
        previous = reading
    return list(readings)


_Candidate = tuple[Assignment, EvaluationStream | None]


def _by_assignment(
    candidates: Sequence[_Candidate], readings: Sequence[Reading], *, earliest: datetime, latest: datetime
) -> list[tuple[_Candidate, list[Reading]]]:
    """The readings (in order) each assignment covers (assignments of one tracker never overlap)."""
    for candidate in candidates:  # the usual batch: every reading inside one assignment
        if candidate[0].covers(earliest) and candidate[0].covers(latest):
            return [(candidate, list(readings))]
    ordered = sorted(candidates, key=lambda candidate: candidate[0].starts_at)
    starts = [assignment.starts_at for assignment, _ in ordered]
    grouped: dict[int, list[Reading]] = {}
    for reading in readings:
        index = bisect.bisect_right(starts, reading.device_time) - 1
        if index >= 0 and ordered[index][0].covers(reading.device_time):
            grouped.setdefault(index, []).append(reading)
    return [(ordered[index], own) for index, own in sorted(grouped.items())]


async def _judge_stream(
    tx: Transaction, assignment: Assignment, stream: EvaluationStream | None, new: list[Reading], *, now: datetime
) -> None:
    """Advance the assignment's stream by its ``new`` readings (in order), or re-judge from the last checkpoint
    before the first of them when it is late; store the state, the lot budget spent and the findings.

    A stream's first batch takes every reading held in the assignment's range, not only the new ones: an
    assignment may be made after its tracker had already delivered readings of that time."""
    if stream is None:
        new = await tx.readings_after(
            assignment.tracker_id, None, starts_at=assignment.starts_at, ends_at=assignment.ends_at
        )
        shipment = await _shipment(tx, assignment.shipment_id)
        profile = await _profile(tx, shipment.profile_id, shipment.profile_version)
        state = new_state(
            profile,
            lot_spent_before_min=await _lot_spent_before(tx, shipment, profile),
            checkpoint_every_min=CHECKPOINT_EVERY_MIN,
            checkpoints_kept=CHECKPOINTS_KEPT,
        )
    else:
        profile = stream.profile
        state = decode_state(stream.state)
    spent_before = _lifetime_spent(profile, state)
    withdrawn: set[str] = set()
    rewound_from: ReadingKey | None = None
    if is_late(state, new[0]):
        rewound_from = ReadingKey.of(new[0])
        rewound = rewind(profile, state, rewound_from)
        replay = await tx.readings_after(
            assignment.tracker_id, rewound.replay_after, starts_at=assignment.starts_at, ends_at=assignment.ends_at
        )
        state, events = advance(profile, rewound.state, replay)
        withdrawn = set(rewound.superseded) - {event.key for event in events}
    else:
        state, events = advance(profile, state, new)
    await tx.save_evaluation_stream(
        EvaluationStream(
            assignment_id=assignment.id,
            shipment_id=assignment.shipment_id,
            tracker_id=assignment.tracker_id,
            profile=profile,
            state=encode_state(state),
            readings=state.readings,
            updated_at=now,
        )
    )
    spent = _lifetime_spent(profile, state)
    if spent and (stream is None or spent != spent_before):
        await tx.save_budget_spent(assignment.id, assignment.shipment_id, spent)
    if events or withdrawn:
        # In time order, an excursion that began before this batch was stored with its custodian when it began.
        known_before = None if rewound_from is not None else new[0].device_time
        await _store_findings(tx, assignment, events, withdrawn, custodians_known_before=known_before, now=now)


async def _store_findings(
    tx: Transaction,
    assignment: Assignment,
    events: list[Event],
    withdrawn: set[str],
    *,
    custodians_known_before: datetime | None,
    now: datetime,
) -> None:
    """Upsert excursions and alarms by key; mark the withdrawn ones. Gaps and sensor faults live in the state.

    An excursion's custodian is looked up when it is stored first (the excursions that began at one moment, one
    per rule, share a look-up); one that began before ``custodians_known_before`` keeps the custodian stored
    with it. The shipment itself is read only for alarms (their notifications go to its parties)."""
    shipment_id = assignment.shipment_id
    custodians: dict[datetime, int | None] = {}
    excursions: list[tuple[Excursion, int | None]] = []
    for event in events:
        if isinstance(event, Excursion):
            if custodians_known_before is not None and event.start < custodians_known_before:
                excursions.append((event, None))  # kept as stored
                continue
            if event.start not in custodians:
                custodians[event.start] = await _custodian(tx, shipment_id, event.start)
            excursions.append((event, custodians[event.start]))
    await tx.upsert_excursions(assignment.id, shipment_id, excursions, now=now)
    shipment: Shipment | None = None
    for event in events:
        if isinstance(event, Alarm):
            shipment = shipment or await _shipment(tx, shipment_id)
            await alarms.record_alarm(tx, shipment, assignment.id, event, now=now)
    for key in sorted(withdrawn):
        if key.startswith("excursion|"):
            await tx.withdraw_excursion(assignment.id, key, now=now)
        elif key.startswith("alarm|"):
            shipment = shipment or await _shipment(tx, shipment_id)
            await alarms.withdraw_alarm(tx, shipment, assignment.id, key, now=now)


async def _custodian(tx: Transaction, shipment_id: int, moment: datetime) -> int | None:
    """The organisation holding the shipment at ``moment``, as the chain of custody says (``None`` before anyone
    signed for it): the one place excursions learn their custodian."""
    return await custody.custodian_at(tx, shipment_id, moment)


async def _shipment(tx: Transaction, shipment_id: int) -> Shipment:
    shipment = await tx.get_shipment(shipment_id)
    if shipment is None:  # an assignment always names a stored shipment (foreign key)
        raise LookupError(f"no shipment {shipment_id}")
    return shipment


async def _profile(tx: Transaction, profile_id: str, version: int) -> Profile:
    profile = await tx.profile_version(profile_id, version)
    if profile is None:  # a shipment's pin always names a stored version (foreign key)
        raise LookupError(f"no version {version} of profile {profile_id!r}")
    return profile


def _lifetime_rules(profile: Profile) -> list[str]:
    return [rule.name for rule in profile.rules if rule.scope == "lifetime"]


async def _lot_spent_before(tx: Transaction, shipment: Shipment, profile: Profile) -> dict[str, float]:
    """What the lot's other shipments spent of each lifetime rule of the profile, as stored now."""
    names = _lifetime_rules(profile)
    if shipment.lot_id is None or not names:
        return {}
    spent = await tx.lot_budget_spent(shipment.lot_id, excluding_shipment_id=shipment.id)
    return {name: spent[name] for name in names if name in spent}


def _lifetime_spent(profile: Profile, state: EvaluationState) -> dict[str, float]:
    """Minutes beyond each lifetime rule's threshold in this stream (the engine's running total)."""
    return {
        rule.name: memory.total_min
        for rule, memory in zip(profile.rules, state.machine.rules, strict=True)
        if rule.scope == "lifetime"
    }


async def budgets_left(tx: Transaction, shipment: Shipment) -> list[tuple[AlarmRule, float]]:
    """Each lifetime rule of the shipment's profile with the minutes its lot may still spend beyond the threshold
    (what the lot's other shipments and this one spent so far, as stored; never below 0)."""
    profile = await _profile(tx, shipment.profile_id, shipment.profile_version)
    rules = [rule for rule in profile.rules if rule.scope == "lifetime"]
    if not rules:
        return []
    others = await _lot_spent_before(tx, shipment, profile)
    own = await tx.shipment_budget_spent(shipment.id)
    return [(rule, max(0.0, rule.delay_min - others.get(rule.name, 0.0) - own.get(rule.name, 0.0))) for rule in rules]


# -- where a shipment stands ---------------------------------------------------------------------------------


async def shipment_judgement(store: Store, principal: Principal, shipment_id: int) -> ShipmentJudgement:
    """The shipment's current judgement: each rule's state, budgets, MKT, excursions, alarms, recommendation."""
    async with store.transaction() as tx:
        shipment = await visible_shipment(tx, principal, shipment_id)
        require(principal, "read")
        profile = await _profile(tx, shipment.profile_id, shipment.profile_version)
        streams = await tx.evaluation_streams(shipment_id)
        parts = [summarise(stream.profile, decode_state(stream.state)) for stream in streams]
        lot_spent = await _lot_spent_before(tx, shipment, profile)
        excursions = await tx.excursions_of_shipment(shipment_id)
        stored_alarms = await tx.alarms_of_shipment(shipment_id)
    evaluation = combine_streams(profile, parts, lot_spent_before_min=lot_spent)
    return ShipmentJudgement(
        shipment=shipment,
        profile=profile,
        streams=len(streams),
        evaluation=evaluation,
        excursions=excursions,
        alarms=stored_alarms,
        disposition=recommend_disposition(evaluation),
    )


async def shipment_excursions(
    store: Store, principal: Principal, shipment_id: int, *, withdrawn: bool = False
) -> list[StoredExcursion]:
    async with store.transaction() as tx:
        await visible_shipment(tx, principal, shipment_id)
        require(principal, "read")
        return await tx.excursions_of_shipment(shipment_id, withdrawn=withdrawn)


async def shipment_alarms(
    store: Store, principal: Principal, shipment_id: int, *, withdrawn: bool = False
) -> list[StoredAlarm]:
    async with store.transaction() as tx:
        await visible_shipment(tx, principal, shipment_id)
        require(principal, "read")
        return await tx.alarms_of_shipment(shipment_id, withdrawn=withdrawn)


# -- combining streams ---------------------------------------------------------------------------------------


def combine_streams(
    profile: Profile, parts: Sequence[Evaluation], *, lot_spent_before_min: dict[str, float]
) -> Evaluation:
    """One evaluation of a shipment from those of its streams (see the module docstring for how figures add
    up). Budgets are computed afresh from ``lot_spent_before_min`` (the lot's other shipments, now)."""
    if not parts:
        parts = [summarise(profile, new_state(profile))]
    rules = [_combine_rule([part.rules[index] for part in parts]) for index in range(len(profile.rules))]
    beyond = {summary.rule: summary.beyond_min for summary in rules}
    budgets = [
        stability_budget(
            rule,
            spent_before_min=lot_spent_before_min.get(rule.name, 0.0),
            spent_in_shipment_min=beyond[rule.name],
        )
        for rule in profile.rules
        if rule.scope == "lifetime"
    ]
    if len(parts) == 1:
        return msgspec.structs.replace(parts[0], budgets=budgets)
    return Evaluation(
        profile_id=profile.id,
        profile_version=profile.version,
        readings=sum(part.readings for part in parts),
        first_reading_at=min((p.first_reading_at for p in parts if p.first_reading_at is not None), default=None),
        last_reading_at=max((p.last_reading_at for p in parts if p.last_reading_at is not None), default=None),
        temperature_min_c=min((p.temperature_min_c for p in parts if p.temperature_min_c is not None), default=None),
        temperature_max_c=max((p.temperature_max_c for p in parts if p.temperature_max_c is not None), default=None),
        temperature_mean_c=_time_weighted_mean(parts),
        rules=rules,
        excursions=sorted(
            (excursion for part in parts for excursion in part.excursions),
            key=lambda excursion: (excursion.start, excursion.start_seq, excursion.rule),
        ),
        alarms=sorted(
            (alarm for part in parts for alarm in part.alarms),
            key=lambda alarm: (alarm.met_at, alarm.began_at, alarm.rule),
        ),
        gaps=sorted((gap for part in parts for gap in part.gaps), key=lambda gap: (gap.start, gap.end)),
        faults=sorted(
            (fault for part in parts for fault in part.faults),
            key=lambda fault: (fault.start, fault.start_seq, fault.metric),
        ),
        mkt=_combine_mkt([part.mkt for part in parts]),
        budgets=budgets,
    )


def _time_weighted_mean(parts: Sequence[Evaluation]) -> float | None:
    if len(parts) == 1:
        return parts[0].temperature_mean_c
    weighted = [(p.temperature_mean_c, p.mkt.credited_min) for p in parts if p.temperature_mean_c is not None]
    total_min = sum(minutes for _, minutes in weighted)
    return sum(mean * minutes for mean, minutes in weighted) / total_min if total_min > 0 else None


def _combine_rule(summaries: list[RuleSummary]) -> RuleSummary:
    if len(summaries) == 1:
        return summaries[0]
    worst = max(summaries, key=lambda summary: _STATUS_RANK[summary.status]).status
    since = min((s.since for s in summaries if s.status == worst and s.since is not None), default=None)
    return RuleSummary(
        rule=summaries[0].rule,
        status=worst,
        since=since,
        beyond_now=any(summary.beyond_now for summary in summaries),
        beyond_min=sum(summary.beyond_min for summary in summaries),
        longest_min=max(summary.longest_min for summary in summaries),
        degree_min=sum(summary.degree_min for summary in summaries),
        excursions=sum(summary.excursions for summary in summaries),
        alarms=sum(summary.alarms for summary in summaries),
    )


def _combine_mkt(results: list[MktResult]) -> MktResult:
    """The shipment MKT over all streams' credited time (each stream's Arrhenius mean weighted by its minutes).
    A window is judged within one stream: the worst stream's window figure stands for the shipment."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    dh_over_r = dh_over_r_k(first.activation_energy_kj_mol)
    weighted = [
        (result.credited_min * math.exp(-dh_over_r / (result.shipment_mkt_c + KELVIN_OFFSET)), result.credited_min)
        for result in results
        if result.shipment_mkt_c is not None and result.credited_min > 0
    ]
    credited_min = sum(minutes for _, minutes in weighted)
    shipment_c = mkt_from_sums(sum(weight for weight, _ in weighted), credited_min, dh_over_r) if weighted else None
    judged = [result for result in results if result.window_mkt_c is not None]
    if first.window == "shipment" or not judged:
        window_c, complete = shipment_c, False
        start = min((result.window_start for result in judged if result.window_start is not None), default=None)
        end = max((result.window_end for result in judged if result.window_end is not None), default=None)
    else:
        worst = max(judged, key=lambda result: result.window_mkt_c or -math.inf)
        window_c, complete, start, end = worst.window_mkt_c, worst.window_complete, worst.window_start, worst.window_end
    limit_c = first.limit_c
    return MktResult(
        activation_energy_kj_mol=first.activation_energy_kj_mol,
        window=first.window,
        limit_c=limit_c,
        shipment_mkt_c=shipment_c,
        window_mkt_c=window_c,
        window_start=start,
        window_end=end,
        window_complete=complete,
        credited_min=credited_min,
        passes=None if limit_c is None or window_c is None else window_c <= limit_c,
    )
