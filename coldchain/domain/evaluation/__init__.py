"""The evaluation engine: a shipment's readings judged against its stability profile, incrementally.

Time accounting, the one convention everything here follows: each reading's value holds from its own device
time until the next reading (left rectangle, sample and hold), never across a data gap longer than the
profile's ``max_gap_min``; a reading without a valid value (missing, NaN, physically impossible) credits
nothing and is a sensor fault, kept apart from excursions. Excursions, cumulative and longest time beyond each
rule, degree-minutes, alarms, MKT and budgets all follow from it (see :mod:`coldchain.domain.rules` for the
rule semantics, :func:`coldchain.domain.mkt.mean_kinetic_temperature` for MKT).

An excursion across a data gap: when the readings on both sides of the gap are beyond a rule's threshold the
excursion continues (same identity), but the gap's time is not credited to it (it shows as ``uncredited_min``)
and a consecutive counter neither resets nor advances; the gap itself is a :class:`DataGap` event. Nothing is
interpolated, and no excursion is hidden by splitting it at a gap.

Incremental protocol (what the service does per batch of one shipment, after storing the batch and keeping
only the readings it did not have yet)::

    state = decode_state(stored_bytes) if stored_bytes else new_state(profile, lot_spent_before_min=...)
    new = sorted(new_readings, key=lambda r: (r.device_time, r.seq))
    if is_late(state, new[0]):                               # not after the last reading judged
        rewound = rewind(profile, state, ReadingKey.of(new[0]))
        replay = store.readings_after(rewound.replay_after)  # (device_time, seq) > key, in order; all if None
        superseded = set(rewound.superseded)
        if rewound.supersedes_stored:                        # replayed from the first reading
            superseded |= stored keys of the stream's excursions and alarms
        state, events = advance(profile, rewound.state, replay)
        withdrawn = superseded - {event.key for event in events}   # delete or mark these
    else:
        state, events = advance(profile, state, new)
    save encode_state(state); upsert every event by its key (a key already stored is an update: an alarm
    already raised is not raised again; an excursion's end and figures may have changed)

``advance`` costs time proportional to the readings given: the state carries running sums, open excursions and
bounded window buffers, never the readings. It records a checkpoint each time device time enters a new
``checkpoint_every_min`` period and keeps the last ``checkpoints_kept``; ``rewind`` restores the last
checkpoint strictly before the given reading (or the initial state when the late reading is older than every
checkpoint) and says from which reading to replay. After any delivery order, the final results equal one pass
over the complete log in time order: replay repeats exactly the arithmetic of that one pass.

Closed excursions and alarms settled before the oldest retained checkpoint leave the state (no rewind to a
checkpoint can take them back; a rewind past every checkpoint replays the whole stream, which reports each of them
again), so a state grows with the MKT window and the checkpoints kept, not with the shipment. The service stored
each of them from the events of the ``advance`` that settled it, and hands them back where a stream's results
are read whole: ``stream_evaluation(profile, state, stored=...)`` and ``summarise(..., stored=...)``. Gaps and
sensor-fault runs, few and stored nowhere else, stay in the state.

A stream judged alone raises no lifetime alarm: a lot's budget is one timeline across every stream of every
shipment of the lot (:mod:`coldchain.domain.lot_budget`); :func:`summarise` judges a stream as the whole lot
(with ``lot_spent_before_min`` as spending before it), :mod:`coldchain.domain.judgement` judges a shipment of a
lot from its streams and the lot's spending.

Modules: :mod:`~coldchain.domain.evaluation.state` (what is stored between batches and what a checkpoint
restores), :mod:`~coldchain.domain.evaluation.engine` (the loop that judges readings, one sliding MKT window
routine included), :mod:`~coldchain.domain.evaluation.rule_tracker` (each rule's state machine, which the loop
feeds), :mod:`~coldchain.domain.evaluation.results` (the :class:`Evaluation`, the MKT verdict, the lifetime rules
on the lot's timeline) and :mod:`~coldchain.domain.evaluation.operations` (``advance``, ``rewind``,
``summarise``, ``evaluate``). It imports only the domain. The engine and the rules' state machine run compiled by
mypyc when a build of their current sources exists (:mod:`~coldchain.domain.evaluation._compiled`).
"""

from coldchain.domain.evaluation._compiled import compiled_engine

if (_build := compiled_engine()) is not None:
    __path__.insert(0, str(_build))  # the package's modules are looked for there first: the compiled engine

from coldchain.domain.evaluation.operations import (
    advance,
    evaluate,
    rewind,
    stream_evaluation,
    stream_spendings,
    summarise,
)
from coldchain.domain.evaluation.results import (
    CompleteWindow,
    Evaluation,
    Event,
    MktBasis,
    MktResult,
    MktVerdict,
    alarm_order,
    judge_lifetime_rules,
    judge_mkt,
)
from coldchain.domain.evaluation.state import (
    ChannelMemory,
    Checkpoint,
    EvaluationState,
    FindingsMismatch,
    MachineMemory,
    MktMemory,
    OutOfOrderError,
    ReadingKey,
    Rewound,
    decode_state,
    encode_state,
    is_late,
    new_state,
)

__all__ = [
    "ChannelMemory",
    "Checkpoint",
    "CompleteWindow",
    "Evaluation",
    "EvaluationState",
    "Event",
    "FindingsMismatch",
    "MachineMemory",
    "MktBasis",
    "MktMemory",
    "MktResult",
    "MktVerdict",
    "OutOfOrderError",
    "ReadingKey",
    "Rewound",
    "advance",
    "alarm_order",
    "decode_state",
    "encode_state",
    "evaluate",
    "is_late",
    "judge_lifetime_rules",
    "judge_mkt",
    "new_state",
    "rewind",
    "stream_evaluation",
    "stream_spendings",
    "summarise",
]
