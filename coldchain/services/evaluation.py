"""Use cases of evaluation: judge newly stored readings against their shipments, and say where a shipment stands.

A reading belongs to the shipment its tracker was assigned to at the reading's device time. Each assignment is
judged as one stream, keyed by the assignment's id, with the incremental protocol of
:mod:`coldchain.domain.evaluation`: a batch whose readings all come after the stream's last reading advances the
stored state by those readings only (cost in proportion to the new readings); a batch with an earlier reading
rewinds the state to its last checkpoint before that reading and replays the stored readings from there. The
findings are stored by their stable keys, so any split into batches and any delivery order end with what one
pass over the complete log in time order finds; a finding that late data took back is marked withdrawn. A
stream's state keeps its closed excursions and alarms only as long as a checkpoint could take them back; where a
shipment's judgement reads its streams whole, their older findings come from the stored ones (and a rewind past
every checkpoint reads their keys, to withdraw what the replay no longer finds).

A shipment's judgement is pure domain code (:func:`coldchain.domain.judgement.judge_shipment`): the streams
combined, the lot's stability budget as one timeline in device time, the recommendation. This module loads what
it needs (the streams' states, the lot's spending, the quarantined readings of the shipment's trackers inside
their assignments), calls it, and saves what ingest finds.

The lot's budget: each stream saves the intervals it spent beyond each lifetime rule's threshold. After a batch
changed a stream's spending, the lot is locked (two trackers of one lot syncing at once serialise there, so the
later one sees the earlier one's spending and neither misses the crossing), every stream's spending of the lot is
read, and the lot's budget alarm is put where the summed spending crosses the allowance in device time: raised
on the stream that crossed it, withdrawn anywhere else, in the same transaction as the batch. A lot whose summed
running totals are clearly short of every allowance, with no budget alarm standing, has nothing to place or
withdraw: one statement tells it, and the streams' intervals are not read. A shipment of no lot is a lot of its
own: its budget is locked by the shipment, for its trackers syncing at once.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Sequence
from datetime import datetime

import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.disposition import Disposition
from coldchain.domain.evaluation import (
    Evaluation,
    EvaluationState,
    Event,
    ReadingKey,
    advance,
    decode_state,
    encode_state,
    is_late,
    new_state,
    rewind,
    stream_evaluation,
    stream_spendings,
)
from coldchain.domain.excursions import Excursion
from coldchain.domain.findings import EvaluationStream, StoredAlarm, StoredExcursion
from coldchain.domain.judgement import judge_shipment
from coldchain.domain.lot_budget import Spending, crossing_stands, find_crossing, lot_alarm, surely_not_crossed
from coldchain.domain.profiles import AlarmRule, Profile
from coldchain.domain.quarantine import QuarantinedReading, QuarantineFault, quarantine_faults
from coldchain.domain.readings import Reading
from coldchain.domain.rules import Alarm
from coldchain.domain.shipments import Assignment, Shipment
from coldchain.services import alarms, custody
from coldchain.services.access import require, visible_shipment
from coldchain.services.errors import Busy, Invalid
from coldchain.storage import Store, Transaction

__all__ = [
    "CHECKPOINTS_KEPT",
    "CHECKPOINT_EVERY_MIN",
    "MAX_QUARANTINED_PAGE",
    "QuarantinedPage",
    "ShipmentJudgement",
    "budgets_left",
    "judge_readings",
    "judgement_in",
    "quarantined_of_shipment",
    "shipment_alarms",
    "shipment_excursions",
    "shipment_judgement",
    "shipment_quarantined",
]

#: The most quarantined readings one page lists.
MAX_QUARANTINED_PAGE = 1000

#: How far back late data is re-judged from a checkpoint rather than from the stream's first reading: one
#: checkpoint an hour of device time, a day of them. Late readings come from retried or reordered batches,
#: typically minutes to hours late; older ones replay the whole stream (correct, only slower). The state holds
#: the MKT window's buffer and the closed findings from the oldest checkpoint on, so this also bounds what each
#: batch reads and writes.
CHECKPOINT_EVERY_MIN = 60.0
CHECKPOINTS_KEPT = 24


class ShipmentJudgement(msgspec.Struct, frozen=True, kw_only=True):
    """Where a shipment stands: its streams combined (``evaluation``, budgets on the lot's timeline), the faults
    of its quarantined readings, the stored excursions and alarms (with their custodians and acknowledgements),
    and the recommendation."""

    shipment: Shipment
    profile: Profile
    streams: int
    evaluation: Evaluation
    allowances: dict[str, float | None]
    """Per rule, the minutes a cumulative rule may still spend beyond its threshold (``None``: no allowance)."""
    quarantined: list[QuarantineFault]
    excursions: list[StoredExcursion]
    alarms: list[StoredAlarm]
    disposition: Disposition


class QuarantinedPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a shipment's quarantined readings, by tracker and sequence number; ``next`` is the cursor of
    the following page (``None`` on the last)."""

    items: list[QuarantinedReading]
    next: str | None


# -- judging at ingest -----------------------------------------------------------------------------------------


async def judge_readings(tx: Transaction, tracker_id: int, readings: Sequence[Reading], *, now: datetime) -> None:
    """Judge ``readings`` (just stored, in any order) of ``tracker_id`` inside the ingest transaction ``tx``.

    Readings outside every assignment of the tracker belong to no shipment and are not judged. The caller holds
    the tracker's sync-state lock, so the batches of one tracker, and therefore of one stream, never interleave.

    What a batch reads is read once: the assignments with their streams and profiles in one statement, each
    shipment at most once, each shipment's chain of custody at most once. A batch that changed no stream's
    spending of a lifetime rule (most batches) takes no lot lock and reads nothing of the lot.
    """
    if not readings:
        return
    ordered = _in_order(readings)
    earliest, latest = ordered[0].device_time, ordered[-1].device_time
    candidates = await tx.assignments_with_streams(tracker_id, earliest=earliest, latest=latest)
    shipments = _Shipments(tx)
    spent: dict[int, tuple[Profile, list[_Change]]] = {}
    for (assignment, stream), own in _by_assignment(candidates, ordered, earliest=earliest, latest=latest):
        changed = await _judge_stream(tx, shipments, assignment, stream, own, now=now)
        if changed is not None:
            profile, changes = changed
            spent.setdefault(assignment.shipment_id, (profile, []))[1].extend(changes)
    if not spent:
        return
    # Each lot whose spending changed is judged once; a shipment of no lot is a lot of its own, locked by its id.
    # The lots are locked together, lots and then lone shipments in id order, before any is read (two batches
    # touching the same budgets lock them in the same order, so they cannot deadlock; nothing this batch wrote
    # before is written by another batch's lot judgement, and the audit chain's lock is taken only at commit).
    lots: dict[tuple[int, int], tuple[Shipment, Profile, list[_Change]]] = {}
    for shipment_id, (profile, changes) in sorted(spent.items()):
        shipment = await shipments.get(shipment_id)
        key = (0, shipment.lot_id) if shipment.lot_id is not None else (1, shipment.id)
        lots.setdefault(key, (shipment, profile, []))[2].extend(changes)
    for kind, budget_id in sorted(lots):
        if kind == 0:
            await tx.lock_lot(budget_id)
        else:
            await tx.lock_shipment_budget(budget_id)
    for _, (shipment, profile, changes) in sorted(lots.items(), key=lambda item: item[0]):
        await _judge_lot_budget(tx, shipments, shipment, profile, changes, now=now)


class _Shipments:
    """The shipments one batch's judgement needs, each read once (a shipment is two statements: itself and its
    legs, whose carriers are parties told of alarms)."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self._read: dict[int, Shipment] = {}

    async def get(self, shipment_id: int) -> Shipment:
        shipment = self._read.get(shipment_id)
        if shipment is None:
            shipment = self._read[shipment_id] = await _shipment(self._tx, shipment_id)
        return shipment


def _in_order(readings: Sequence[Reading]) -> list[Reading]:
    """The readings by (device time, seq): as they usually come already, which one pass in C over their device
    times tells without sorting when those rise strictly (the usual log)."""
    times = list(map(_DEVICE_TIME, readings))
    if all(map(operator.lt, times, itertools.islice(times, 1, None))):
        return list(readings)
    return sorted(readings, key=lambda reading: (reading.device_time, reading.seq))


_DEVICE_TIME = operator.attrgetter("device_time")

_Candidate = tuple[Assignment, EvaluationStream | None]

_Change = tuple[Spending, Spending]
"""A stream's spending of one lifetime rule before and after a batch."""


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
    tx: Transaction,
    shipments: _Shipments,
    assignment: Assignment,
    stream: EvaluationStream | None,
    new: list[Reading],
    *,
    now: datetime,
) -> tuple[Profile, list[_Change]] | None:
    """Advance the assignment's stream by its ``new`` readings (in order), or re-judge from the last checkpoint
    before the first of them when it is late; store the state, the lot budget spent and the findings. Returns the
    profile and the spending before and after when the stream's spending of a lifetime rule changed (the lot's
    budget must be judged again).

    A stream's first batch takes every reading held in the assignment's range, not only the new ones: an
    assignment may be made after its tracker had already delivered readings of that time. They are read back
    only when the range holds more than the batch's own (counting them is cheaper than reading them)."""
    if stream is None:
        held = await tx.count_readings_between(
            assignment.tracker_id, starts_at=assignment.starts_at, ends_at=assignment.ends_at
        )
        if held != len(new):
            new = await tx.readings_after(
                assignment.tracker_id, None, starts_at=assignment.starts_at, ends_at=assignment.ends_at
            )
        shipment = await shipments.get(assignment.shipment_id)
        profile = await _profile(tx, shipment.profile_id, shipment.profile_version)
        state = new_state(profile, checkpoint_every_min=CHECKPOINT_EVERY_MIN, checkpoints_kept=CHECKPOINTS_KEPT)
    else:
        profile = stream.profile
        state = decode_state(stream.state)
    spent_before = _spendings(profile, state, assignment)
    withdrawn: set[str] = set()
    rewound_from: ReadingKey | None = None
    if is_late(state, new[0]):
        rewound_from = ReadingKey.of(new[0])
        rewound = rewind(profile, state, rewound_from)
        replay = await tx.readings_after(
            assignment.tracker_id, rewound.replay_after, starts_at=assignment.starts_at, ends_at=assignment.ends_at
        )
        superseded = set(rewound.superseded)
        if rewound.supersedes_stored:  # replayed from the first reading: what had left the state is judged again
            superseded |= await tx.stream_finding_keys(assignment.id)
        state, events = advance(profile, rewound.state, replay)
        withdrawn = superseded - {event.key for event in events}
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
    spent = _spendings(profile, state, assignment)
    changed = spent != spent_before
    if changed:
        await tx.save_budget_spent(assignment.id, assignment.shipment_id, spent)
    if events or withdrawn:
        # In time order, an excursion that began before this batch was stored with its custodian when it began.
        known_before = None if rewound_from is not None else new[0].device_time
        await _store_findings(
            tx, shipments, assignment, events, withdrawn, custodians_known_before=known_before, now=now
        )
    return (profile, list(zip(spent_before, spent, strict=True))) if changed else None


def _spendings(profile: Profile, state: EvaluationState, assignment: Assignment) -> list[Spending]:
    return stream_spendings(profile, state, stream_id=assignment.id, shipment_id=assignment.shipment_id)


async def _lot_spendings(tx: Transaction, shipment: Shipment) -> list[Spending]:
    """Every stream's spending of the shipment's lot (of the shipment alone when it belongs to no lot)."""
    if shipment.lot_id is None:
        return await tx.shipment_spending(shipment.id)
    return await tx.lot_spending(shipment.lot_id)


async def _judge_lot_budget(
    tx: Transaction,
    shipments: _Shipments,
    shipment: Shipment,
    profile: Profile,
    changes: Sequence[_Change],
    *,
    now: datetime,
) -> None:
    """Put each lifetime rule's alarm where the lot's summed spending crosses the allowance in device time:
    raised (or brought up to date) on the stream that crossed it, withdrawn from every other stream of the lot.

    :func:`judge_readings` locked the lot before judging, so of two transactions spending from one lot at once,
    the later reads the earlier's spending once it has committed. The rule is the judged shipment's profile's (a
    lot's shipments share their product's profile).

    The lot's intervals are read and swept only when the batch's ``changes`` can move a crossing: not while the
    summed totals are clearly short of every allowance with no alarm standing (most batches), nor once each
    rule's crossing is placed (one alarm standing) and every change lies after it (:func:`crossing_stands`). A
    lot of many shipments so costs a batch no more after its budget ran out than before."""
    rules = [rule for rule in profile.rules if rule.scope == "lifetime"]
    totals, alarmed = await tx.lot_spent_totals(lot_id=shipment.lot_id, shipment_id=shipment.id)
    if not alarmed and all(surely_not_crossed(rule, totals.get(rule.name, 0.0)) for rule in rules):
        return  # no crossing to place and no alarm to withdraw (most batches): the intervals are not read
    standing = await tx.lifetime_alarms(lot_id=shipment.lot_id, shipment_id=shipment.id)
    if all(_stands(rule, totals, standing, changes) for rule in rules):
        return  # every crossing placed before what changed: nothing moves
    spendings = await _lot_spendings(tx, shipment)
    wanted: dict[tuple[int, str], tuple[int, Alarm]] = {}
    for rule in rules:
        crossing = find_crossing(rule, spendings)
        if crossing is not None:
            alarm = lot_alarm(rule, crossing)
            wanted[(crossing.stream_id, alarm.key)] = (crossing.shipment_id, alarm)
    names = {rule.name for rule in rules}
    for stored in standing:
        place = (stored.assignment_id, stored.key)
        if stored.alarm.rule not in names:
            continue
        if place not in wanted:
            owner = await shipments.get(stored.shipment_id)
            await alarms.withdraw_alarm(tx, owner, stored.assignment_id, stored.key, now=now)
        elif stored.alarm == wanted[place][1]:
            del wanted[place]  # standing as it should: nothing to do
    for (assignment_id, _), (shipment_id, alarm) in sorted(wanted.items()):
        owner = await shipments.get(shipment_id)
        await alarms.record_alarm(tx, owner, assignment_id, alarm, now=now)


def _stands(
    rule: AlarmRule, totals: dict[str, float], standing: Sequence[StoredAlarm], changes: Sequence[_Change]
) -> bool:
    """Whether the lot's alarms of ``rule`` stay as they are after ``changes``: none placed and none possible,
    or the one placed with every change after it."""
    placed = [stored.alarm for stored in standing if stored.alarm.rule == rule.name]
    if not placed:
        return surely_not_crossed(rule, totals.get(rule.name, 0.0))
    return len(placed) == 1 and crossing_stands(rule, placed[0].met_at, changes)


async def _store_findings(
    tx: Transaction,
    shipments: _Shipments,
    assignment: Assignment,
    events: list[Event],
    withdrawn: set[str],
    *,
    custodians_known_before: datetime | None,
    now: datetime,
) -> None:
    """Upsert excursions and alarms by key; mark the withdrawn ones. Gaps and sensor faults live in the state.

    An excursion's custodian is looked up when it is stored first, all of a batch's from one read of the chain
    of custody; one that began before ``custodians_known_before`` keeps the custodian stored with it. The
    shipment itself is read only for alarms (their notifications go to its parties), and the alarms a batch
    raises are told in one publication."""
    shipment_id = assignment.shipment_id
    excursions = [event for event in events if isinstance(event, Excursion)]
    looked_up = [
        excursion.start
        for excursion in excursions
        if custodians_known_before is None or excursion.start >= custodians_known_before
    ]
    custodians = await custody.custodians_at(tx, shipment_id, looked_up)
    await tx.upsert_excursions(
        assignment.id,
        shipment_id,
        [(excursion, custodians.get(excursion.start)) for excursion in excursions],
        now=now,
    )
    found = [(assignment.id, event) for event in events if isinstance(event, Alarm)]
    if found:
        await alarms.record_alarms(tx, await shipments.get(shipment_id), found, now=now)
    for key in sorted(withdrawn):
        if key.startswith("excursion|"):
            await tx.withdraw_excursion(assignment.id, key, now=now)
        elif key.startswith("alarm|"):
            await alarms.withdraw_alarm(tx, await shipments.get(shipment_id), assignment.id, key, now=now)


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


async def budgets_left(tx: Transaction, shipment: Shipment) -> list[tuple[AlarmRule, float]]:
    """Each lifetime rule of the shipment's profile with the minutes its lot may still spend beyond the threshold:
    the allowance less the lot's total spending now, never below 0."""
    profile = await _profile(tx, shipment.profile_id, shipment.profile_version)
    rules = [rule for rule in profile.rules if rule.scope == "lifetime"]
    if not rules:
        return []
    spendings = await _lot_spendings(tx, shipment)
    return [
        (rule, max(0.0, rule.delay_min - sum(s.total_min for s in spendings if s.rule == rule.name))) for rule in rules
    ]


# -- where a shipment stands ---------------------------------------------------------------------------------


async def shipment_judgement(store: Store, principal: Principal, shipment_id: int) -> ShipmentJudgement:
    """The shipment's current judgement: each rule's state, budgets, MKT, faults, excursions, alarms,
    recommendation."""
    async with store.transaction(snapshot=True) as tx:
        shipment = await visible_shipment(tx, principal, shipment_id)
        require(principal, "read")
        return await judgement_in(tx, shipment)


async def judgement_in(tx: Transaction, shipment: Shipment) -> ShipmentJudgement:
    """:func:`shipment_judgement` inside an open transaction, for a shipment the caller already may see."""
    profile = await _profile(tx, shipment.profile_id, shipment.profile_version)
    streams, excursions, stored_alarms, parts = await _streams_judged(tx, shipment.id)
    has_budget = any(rule.scope == "lifetime" for rule in profile.rules)
    spendings = await _lot_spendings(tx, shipment) if has_budget else []
    quarantined = await quarantined_of_shipment(tx, shipment.id)
    judgement = judge_shipment(
        profile,
        shipment_id=shipment.id,
        streams=parts,
        lot_spendings=spendings,
        quarantined=quarantine_faults(quarantined),
    )
    return ShipmentJudgement(
        shipment=shipment,
        profile=profile,
        streams=len(streams),
        evaluation=judgement.evaluation,
        allowances=judgement.allowances,
        quarantined=judgement.quarantined,
        excursions=excursions,
        alarms=stored_alarms,
        disposition=judgement.disposition,
    )


#: How often the streams and their findings are read again when another transaction committed a batch between
#: the reads (READ COMMITTED on PostgreSQL: each statement sees the latest commits), before the caller is told to
#: try again (:class:`~coldchain.services.errors.Busy`).
_CONSISTENT_READ_ATTEMPTS = 3


async def _streams_judged(
    tx: Transaction, shipment_id: int
) -> tuple[list[EvaluationStream], list[StoredExcursion], list[StoredAlarm], list[Evaluation]]:
    """The shipment's streams, its stored excursions and alarms, and each stream's evaluation.

    A stream's closed excursions and alarms older than its checkpoints left its state: its stored findings have
    them (:class:`~coldchain.domain.evaluation.EvaluationState`). Then state and findings must be of one moment.
    A transaction that sees one (:attr:`~coldchain.storage.base.Transaction.one_moment`: SQLite's, a snapshot
    on PostgreSQL) reads them once. Otherwise a batch of another transaction committed between the reads shows in
    the streams' reading counts read after the findings, and all are read again; a tracker syncing without pause
    can keep that up, and after a few rounds the caller is told to try again rather than shown a mix. Findings that
    do not complete states of one moment are a defect, and raise."""
    for _ in range(_CONSISTENT_READ_ATTEMPTS):
        streams = await tx.evaluation_streams(shipment_id)
        states = [decode_state(stream.state) for stream in streams]
        excursions = await tx.excursions_of_shipment(shipment_id)
        stored_alarms = await tx.alarms_of_shipment(shipment_id)
        trimmed = any(state.excursions_offset or state.alarms_offset for state in states)
        read = {stream.assignment_id: stream.readings for stream in streams}
        if trimmed and not tx.one_moment and await tx.stream_readings(shipment_id) != read:
            continue  # another batch committed between the reads
        stored: dict[int, list[Excursion | Alarm]] = {}
        for found in excursions:
            stored.setdefault(found.assignment_id, []).append(found.excursion)
        for raised in stored_alarms:
            stored.setdefault(raised.assignment_id, []).append(raised.alarm)
        parts = [
            stream_evaluation(stream.profile, state, stored=stored.get(stream.assignment_id, []))
            for stream, state in zip(streams, states, strict=True)
        ]
        return streams, excursions, stored_alarms, parts
    raise Busy(
        f"the readings of shipment {shipment_id} are being judged without pause right now; ask again in a moment"
    )


async def quarantined_of_shipment(tx: Transaction, shipment_id: int) -> list[QuarantinedReading]:
    """The quarantined readings of the shipment's trackers inside their assignments, by tracker and seq."""
    found: list[QuarantinedReading] = []
    for assignment in await tx.assignments_of_shipment(shipment_id):
        found.extend(
            await tx.quarantined_between(
                assignment.tracker_id, starts_at=assignment.starts_at, ends_at=assignment.ends_at
            )
        )
    found.sort(key=lambda item: (item.tracker_id, item.reading.seq))
    return found


def _cursor(item: QuarantinedReading) -> str:
    return f"{item.tracker_id}:{item.reading.seq}"


def _parse_cursor(after: str) -> tuple[int, int]:
    tracker, _, seq = after.partition(":")
    if not (tracker.isdigit() and seq.isdigit()):
        raise Invalid(f"after must be a cursor from a previous page (tracker:seq), got {after!r}")
    return int(tracker), int(seq)


async def shipment_quarantined(
    store: Store, principal: Principal, shipment_id: int, *, after: str | None, limit: int
) -> QuarantinedPage:
    """A page of the readings quarantined at ingest from the shipment's trackers during their assignments, with
    their reasons and values as stored, after the cursor ``after`` (from the page before)."""
    if not 1 <= limit <= MAX_QUARANTINED_PAGE:
        raise Invalid(f"limit must be between 1 and {MAX_QUARANTINED_PAGE}, got {limit}")
    start = None if after is None else _parse_cursor(after)
    async with store.transaction() as tx:
        await visible_shipment(tx, principal, shipment_id)
        require(principal, "read")
        found = await quarantined_of_shipment(tx, shipment_id)
    if start is not None:
        found = [item for item in found if (item.tracker_id, item.reading.seq) > start]
    page = found[:limit]
    return QuarantinedPage(items=page, next=_cursor(page[-1]) if len(found) > limit else None)


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
