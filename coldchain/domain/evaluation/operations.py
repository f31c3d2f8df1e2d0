"""The public operations on a stream's evaluation: advance, rewind, summarise (see the package docstring)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import msgspec

from coldchain.domain._epoch import from_epoch_s, to_epoch_s
from coldchain.domain.evaluation.engine import Engine
from coldchain.domain.evaluation.results import Evaluation, Event, judge_lifetime_rules
from coldchain.domain.evaluation.state import (
    EvaluationState,
    FindingsMismatch,
    ReadingKey,
    Rewound,
    check_profile,
    new_state,
)
from coldchain.domain.excursions import Excursion
from coldchain.domain.lot_budget import Spending
from coldchain.domain.profiles import Profile
from coldchain.domain.readings import Reading
from coldchain.domain.rules import Alarm

__all__ = ["advance", "evaluate", "rewind", "stream_evaluation", "stream_spendings", "summarise"]


def advance(
    profile: Profile, state: EvaluationState, readings: Iterable[Reading]
) -> tuple[EvaluationState, list[Event]]:
    """Judge new readings (device time order, all after ``state``'s last reading) and return the new state
    with the events: every excursion, alarm, gap and fault run created or changed by these readings (open
    excursions and fault runs included, with ``end`` ``None``). The given state is not modified.

    Raises :class:`OutOfOrderError` for a reading not after the previous one: :func:`rewind` first.
    """
    check_profile(profile, state)
    engine = Engine(profile, state)
    marks = (len(engine.excursions), len(engine.alarms), len(engine.gaps), len(engine.faults))
    before = engine.readings
    engine.feed(readings)
    if engine.readings == before:
        return state, []
    events: list[Event] = [
        *engine.excursions[marks[0] :],
        *engine.alarms[marks[1] :],
        *engine.gaps[marks[2] :],
        *engine.faults[marks[3] :],
        *engine.open_results(),
    ]
    return engine.to_state(), events


def _keys(*results: Sequence[Event]) -> list[str]:
    return [result.key for group in results for result in group]


def rewind(profile: Profile, state: EvaluationState, earliest: ReadingKey) -> Rewound:
    """The state to re-judge from when a reading at ``earliest`` arrives late (not after the state's last).

    Restores the last checkpoint strictly before ``earliest``, or the initial state when every retained
    checkpoint is later. The service then feeds :func:`advance` every stored reading after
    ``Rewound.replay_after``, the late ones included.
    """
    check_profile(profile, state)
    target = (to_epoch_s(earliest.device_time), earliest.seq)
    engine = Engine(profile, state)
    open_keys = [result.key for result in engine.open_results()]
    chosen = None
    for index in range(len(state.checkpoints) - 1, -1, -1):
        machine = state.checkpoints[index].machine
        if (machine.last_s, machine.last_seq) < target:
            chosen = index
            break
    if chosen is None:
        fresh = new_state(
            profile,
            lot_spent_before_min=state.lot_spent_before_min,
            checkpoint_every_min=state.checkpoint_every_min,
            checkpoints_kept=state.checkpoints_kept,
        )
        superseded = _keys(state.excursions, state.alarms, state.gaps, state.faults)
        return Rewound(
            state=fresh,
            replay_after=None,
            superseded=superseded + open_keys,
            supersedes_stored=bool(state.excursions_offset or state.alarms_offset),
        )
    checkpoint = state.checkpoints[chosen]
    machine = checkpoint.machine
    # The checkpoint's counts include the results that left the state, which were settled before it.
    excursions = checkpoint.excursions - state.excursions_offset
    alarms = checkpoint.alarms - state.alarms_offset
    mkt_length = machine.mkt.length - state.mkt_offset
    roll_start_s: list[list[float]] = []
    roll_end_s: list[list[float]] = []
    roll_start_seq: list[list[int]] = []
    for index, memory in enumerate(machine.rules):
        length = memory.roll_len - state.roll_offset[index]
        starts = state.roll_start_s[index][:length]
        ends = state.roll_end_s[index][:length]
        roll_start_seq.append(state.roll_start_seq[index][:length])
        if ends and memory.roll_last_end_s is not None:
            ends[-1] = memory.roll_last_end_s  # the last period may have been extended after the checkpoint
        roll_start_s.append(starts)
        roll_end_s.append(ends)
    superseded = _keys(
        state.excursions[excursions:],
        state.alarms[alarms:],
        state.gaps[checkpoint.gaps :],
        state.faults[checkpoint.faults :],
    )
    restored = msgspec.structs.replace(
        state,
        machine=machine,
        excursions=state.excursions[:excursions],
        alarms=state.alarms[:alarms],
        gaps=state.gaps[: checkpoint.gaps],
        faults=state.faults[: checkpoint.faults],
        mkt_end_s=state.mkt_end_s[:mkt_length],
        mkt_credit=state.mkt_credit[:mkt_length],
        mkt_held_min=state.mkt_held_min[:mkt_length],
        roll_start_s=roll_start_s,
        roll_end_s=roll_end_s,
        roll_start_seq=roll_start_seq,
        checkpoints=state.checkpoints[:chosen],
    )
    replay_after = ReadingKey(device_time=from_epoch_s(machine.last_s), seq=machine.last_seq)
    return Rewound(state=restored, replay_after=replay_after, superseded=superseded + open_keys)


def stream_evaluation(
    profile: Profile,
    state: EvaluationState,
    *,
    until: datetime | None = None,
    stored: Iterable[Excursion | Alarm] = (),
) -> Evaluation:
    """One stream's evaluation before the lot's budget is judged: lifetime rules show their spending and status
    but no alarm, and there are no budgets (see :func:`judge_lifetime_rules`). ``until`` and ``stored`` as in
    :func:`summarise`."""
    check_profile(profile, state)
    engine = Engine(profile, state)
    left, left_alarms = _left(engine, state, stored)
    if until is not None:
        engine.hold_until(until)
    return engine.evaluation(left=left, left_alarms=left_alarms)


def _left(
    engine: Engine, state: EvaluationState, stored: Iterable[Excursion | Alarm]
) -> tuple[list[Excursion], list[Alarm]]:
    """The closed excursions and alarms that left ``state``, picked from the stream's ``stored`` findings (its
    lifetime alarms aside: the lot's timeline places those): the ones whose keys the state does not hold, open
    excursions included. They must be exactly as many as the state counts gone; otherwise the findings are not
    this state's, and judging from them would report something no pass over the readings finds
    (:class:`FindingsMismatch`). A state none left needs none and looks at none."""
    if not (state.excursions_offset or state.alarms_offset):
        return [], []  # the state holds every result itself
    held = {result.key for result in (*state.excursions, *state.alarms, *engine.open_results())}
    left: list[Excursion] = []
    left_alarms: list[Alarm] = []
    for result in stored:
        if result.key in held:
            continue
        if isinstance(result, Excursion):
            left.append(result)
        elif result.scope != "lifetime":
            left_alarms.append(result)
    if (len(left), len(left_alarms)) != (state.excursions_offset, state.alarms_offset):
        raise FindingsMismatch(
            f"the stored findings hold {len(left)} excursions and {len(left_alarms)} alarms the state does not, "
            f"but {state.excursions_offset} excursions and {state.alarms_offset} alarms left the state"
        )
    return left, left_alarms


def stream_spendings(profile: Profile, state: EvaluationState, *, stream_id: int, shipment_id: int) -> list[Spending]:
    """What the stream spent of each lifetime rule, as intervals in device time (the lot budget's input).

    Read straight from the state (a lifetime rule's memory holds its total, its buffer the intervals, never
    dropped), without building an engine: ingest asks before and after every batch."""
    check_profile(profile, state)
    return [
        Spending.of(
            stream_id=stream_id,
            shipment_id=shipment_id,
            rule=rule.name,
            spent_min=state.machine.rules[index].total_min,
            intervals=zip(state.roll_start_s[index], state.roll_end_s[index], state.roll_start_seq[index], strict=True),
        )
        for index, rule in enumerate(profile.rules)
        if rule.scope == "lifetime"
    ]


def summarise(
    profile: Profile,
    state: EvaluationState,
    *,
    until: datetime | None = None,
    stored: Iterable[Excursion | Alarm] = (),
) -> Evaluation:
    """The evaluation of one stream judged alone as of ``state``: rules, excursions (open ones included), alarms,
    gaps, faults, MKT and stability budgets, the lot's budget taken as ``state.lot_spent_before_min`` spent
    before this stream's first reading.

    ``until`` closes the record for a final evaluation (delivery, a logger's stop time): the last reading's
    values hold until then, as they would until a next reading. ``stored`` are the stream's findings as stored
    from the events of ``advance`` (excursions and alarms, withdrawn ones left out): the closed ones that left
    the state are taken from there (:class:`EvaluationState`); a state none left needs none. The state itself
    is not changed.
    """
    check_profile(profile, state)
    engine = Engine(profile, state)
    left, left_alarms = _left(engine, state, stored)
    if until is not None:
        engine.hold_until(until)
    return _judged_alone(profile, engine, engine.evaluation(left=left, left_alarms=left_alarms))


def _judged_alone(profile: Profile, engine: Engine, evaluation: Evaluation) -> Evaluation:
    prior = [
        Spending(stream_id=-1, shipment_id=-1, rule=rule, unplaced_min=minutes)
        for rule, minutes in sorted(engine.state.lot_spent_before_min.items())
    ]
    return judge_lifetime_rules(
        profile,
        evaluation,
        shipment_id=0,
        spendings=[*engine.spendings(stream_id=0, shipment_id=0), *prior],
    )


def evaluate(
    profile: Profile,
    readings: Sequence[Reading],
    *,
    lot_spent_before_min: Mapping[str, float] | None = None,
) -> Evaluation:
    """One pass over a complete reading log, each reading once (sorted here by device time, then sequence
    number); every result at hand, nothing stored."""
    ordered = sorted(readings, key=lambda reading: (reading.device_time, reading.seq))
    engine = Engine(profile, new_state(profile, lot_spent_before_min=lot_spent_before_min))
    engine.feed(ordered)
    return _judged_alone(profile, engine, engine.evaluation())
