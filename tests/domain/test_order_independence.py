"""Order independence: any split into batches and any delivery order, with the rewind/replay protocol,
ends with the same excursions, alarms, gaps, faults, budgets and MKT as one pass over the complete log."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import UTC, timedelta, timezone

import hypothesis
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldchain.domain.evaluation import (
    EvaluationState,
    Event,
    ReadingKey,
    advance,
    decode_state,
    encode_state,
    evaluate,
    is_late,
    new_state,
    rewind,
    stream_spendings,
    summarise,
)
from coldchain.domain.evaluation.engine import Engine
from coldchain.domain.excursions import Excursion
from coldchain.domain.profiles import AlarmRule, MktSettings, Profile
from coldchain.domain.readings import Reading
from coldchain.domain.rules import Alarm
from tests.domain.engine_support import T0

PROFILE = Profile(
    id="every-rule",
    name="one rule of every mode and scope",
    label_range_c=(2.0, 8.0),
    max_gap_min=60.0,
    mkt=MktSettings(window="24h", limit_c=8.0),
    rules=(
        AlarmRule(name="above 25", direction="above", threshold=25.0, inclusive=False, mode="instant",
                  action="reject"),
        AlarmRule(name="heat", direction="above", threshold=8.0, inclusive=True, mode="consecutive",
                  delay_min=60, action="quarantine"),
        AlarmRule(name="heat total", direction="above", threshold=8.0, inclusive=False, mode="cumulative",
                  delay_min=120, action="quarantine"),
        AlarmRule(name="budget", direction="above", threshold=8.0, inclusive=False, mode="cumulative",
                  delay_min=300, scope="lifetime", action="reject"),
        AlarmRule(name="hot day", direction="above", threshold=10.0, inclusive=True, mode="cumulative",
                  delay_min=90, scope="rolling_24h", action="warn"),
        AlarmRule(name="freeze", direction="below", threshold=-0.5, inclusive=True, mode="consecutive",
                  delay_min=30, action="reject"),
        AlarmRule(name="humid", metric="humidity", direction="above", threshold=75.0, inclusive=False,
                  mode="consecutive", delay_min=40, action="warn"),
    ),
)  # fmt: skip

TEMPERATURES = [-1.0, -0.5, 0.0, 5.0, 8.0, 8.5, 10.0, 14.0, 25.0, 26.0, None, math.nan, 150.0]
STEPS_MIN = [0, 1, 5, 10, 10, 10, 30, 59, 60, 61, 180, 600]


@st.composite
def reading_logs(draw: st.DrawFn) -> list[Reading]:
    count = draw(st.integers(min_value=1, max_value=60))
    minutes = 0.0
    log = []
    for seq in range(1, count + 1):
        minutes += draw(st.sampled_from(STEPS_MIN))
        log.append(
            Reading(
                seq=seq,
                device_time=T0 + timedelta(minutes=minutes),
                temperature_c=draw(st.sampled_from(TEMPERATURES)),
                humidity_pct=draw(st.sampled_from([50.0, 80.0, None])),
            )
        )
    return log


@st.composite
def deliveries(draw: st.DrawFn, log: list[Reading]) -> list[list[Reading]]:
    """The log as a tracker might deliver it: any order, any batch sizes, some readings sent twice."""
    order = draw(st.permutations(log))
    resent = draw(st.lists(st.sampled_from(log), max_size=5))
    sent = order + resent
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(sent)), max_size=8)))
    bounds = [0, *cuts, len(sent)]
    return [sent[start:end] for start, end in itertools.pairwise(bounds) if end > start]


def key(reading: Reading) -> tuple[float, int]:
    return (reading.device_time.timestamp(), reading.seq)


@dataclass
class Service:
    """What the service does per batch, with a list as storage and dicts as its result tables."""

    state: EvaluationState
    stored: dict[int, Reading] = field(default_factory=dict)
    results: dict[str, Event] = field(default_factory=dict)
    trimmed: int = 0
    """The most closed excursions and alarms that had left the state at once."""
    replayed_trimmed: int = 0
    """How many rewinds replayed from the first reading a state some results had left."""

    def receive(self, batch: list[Reading]) -> None:
        new = sorted({r.seq: r for r in batch if r.seq not in self.stored}.values(), key=key)
        if not new:
            return
        self.stored.update((reading.seq, reading) for reading in new)
        superseded: set[str] = set()
        if is_late(self.state, new[0]):
            rewound = rewind(PROFILE, self.state, ReadingKey.of(new[0]))
            after = rewound.replay_after
            replay = sorted(
                (
                    r
                    for r in self.stored.values()
                    if after is None or key(r) > (after.device_time.timestamp(), after.seq)
                ),
                key=key,
            )
            superseded = set(rewound.superseded)
            if rewound.supersedes_stored:  # a replay from the first reading judges the stored findings again
                superseded |= {result.key for result in self.stored_findings()}
                self.replayed_trimmed += 1
            state, events = advance(PROFILE, rewound.state, replay)
        else:
            state, events = advance(PROFILE, self.state, new)
        for event in events:
            self.results[event.key] = event
        for withdrawn in superseded - {event.key for event in events}:
            del self.results[withdrawn]
        self.state = decode_state(encode_state(state))
        self.trimmed = max(self.trimmed, self.state.excursions_offset + self.state.alarms_offset)

    def stored_findings(self) -> list[Excursion | Alarm]:
        """What the service's tables hold of excursions and alarms (gaps and faults live in the state)."""
        return [result for result in self.results.values() if isinstance(result, Excursion | Alarm)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    log=reading_logs(),
    checkpoint_every_min=st.sampled_from([30.0, 60.0, 240.0]),
    checkpoints_kept=st.sampled_from([1, 2, 3, 48]),
)
def test_any_batches_in_any_order_end_where_one_pass_in_time_order_ends(
    data: st.DataObject, log: list[Reading], checkpoint_every_min: float, checkpoints_kept: int
) -> None:
    lot_spent = {"budget": 100.0}
    service = Service(
        new_state(
            PROFILE,
            lot_spent_before_min=lot_spent,
            checkpoint_every_min=checkpoint_every_min,
            checkpoints_kept=checkpoints_kept,
        )
    )

    for batch in data.draw(deliveries(log)):
        service.receive(batch)

    one_pass = evaluate(PROFILE, log, lot_spent_before_min=lot_spent)
    final = summarise(PROFILE, service.state, stored=service.stored_findings())
    assert final == one_pass
    hypothesis.event(f"closed results left the state: {service.trimmed > 0}")
    hypothesis.event(f"a rewind past every checkpoint replayed what had left the state: {service.replayed_trimmed > 0}")
    # The service's own tables, kept from the events alone, hold exactly the final results; a lifetime rule's
    # alarm is no stream's event: the lot's timeline places it (coldchain.domain.lot_budget).
    stream_alarms = [alarm for alarm in one_pass.alarms if alarm.scope != "lifetime"]
    everything: list[Event] = [*one_pass.excursions, *stream_alarms, *one_pass.gaps, *one_pass.faults]
    assert service.results == {result.key: result for result in everything}
    # No alarm twice: every alarm has its own key.
    assert len({alarm.key for alarm in final.alarms}) == len(final.alarms)
    # The lot budget's input, read from the state without an engine, is the engine's own and the one pass's.
    spendings = stream_spendings(PROFILE, service.state, stream_id=1, shipment_id=2)
    assert spendings == Engine(PROFILE, service.state).spendings(stream_id=1, shipment_id=2)
    one_pass_state, _ = advance(PROFILE, new_state(PROFILE, lot_spent_before_min=lot_spent), sorted(log, key=key))
    assert spendings == stream_spendings(PROFILE, one_pass_state, stream_id=1, shipment_id=2)


def days_of_warm_spells(days: int) -> list[Reading]:
    """A reading every 10 minutes at 5 °C, with a 90 min spell at 12 °C every 6 hours (an excursion of every rule
    above 8 °C, and the consecutive heat alarm) and a reading at 26 °C at the start of each day (an instant
    alarm)."""
    log = []
    for seq, minutes in enumerate(range(0, days * 1440, 10), start=1):
        temperature_c = 26.0 if minutes % 1440 == 0 else 12.0 if minutes % 360 < 90 else 5.0
        log.append(Reading(seq=seq, device_time=T0 + timedelta(minutes=minutes), temperature_c=temperature_c))
    return log


def test_closed_results_older_than_every_checkpoint_leave_the_state_and_the_stored_findings_complete_it() -> None:
    log = days_of_warm_spells(6)
    service = Service(new_state(PROFILE, checkpoint_every_min=60, checkpoints_kept=6))
    sizes = []
    for start in range(0, len(log), 72):  # half a day a batch, in order
        service.receive(log[start : start + 72])
        sizes.append(len(encode_state(service.state)))

    state = service.state
    assert state.excursions_offset > 50 and state.alarms_offset > 10
    assert len(state.excursions) + len(state.alarms) <= 6, "what the last six hours settled, at most"
    assert max(sizes[4:]) < 1.05 * sizes[4], "the state grows with the window and the checkpoints, not the log"
    assert summarise(PROFILE, state, stored=service.stored_findings()) == evaluate(PROFILE, log)
    with pytest.raises(ValueError, match="left the state"):
        summarise(PROFILE, state)  # the state alone no longer holds every result


def test_a_late_reading_older_than_every_checkpoint_replays_what_left_the_state_from_the_stored_findings() -> None:
    log = days_of_warm_spells(3)
    # Day one, 06:40, inside a warm spell: a reading back at 5 °C, held back. Without it the spell is one
    # excursion of each rule above 8 °C; with it, two.
    early = msgspec.structs.replace(log[40], temperature_c=5.0)
    log[40] = early
    service = Service(new_state(PROFILE, checkpoint_every_min=60, checkpoints_kept=6))
    rest = [reading for reading in log if reading is not early]
    for start in range(0, len(rest), 72):
        service.receive(rest[start : start + 72])
    spell_began = early.device_time - timedelta(minutes=40)
    whole_spell = {
        result.key
        for result in service.stored_findings()
        if isinstance(result, Excursion) and result.start == spell_began
    }
    spell_alarms = {
        result.key
        for result in service.stored_findings()
        if isinstance(result, Alarm) and result.rule == "heat" and result.began_at == spell_began
    }
    assert whole_spell and service.state.excursions_offset > 0
    assert whole_spell.isdisjoint(result.key for result in service.state.excursions), "they had left the state"
    assert summarise(PROFILE, service.state, stored=service.stored_findings()) == evaluate(PROFILE, rest)

    service.receive([early])

    assert service.replayed_trimmed == 1
    assert summarise(PROFILE, service.state, stored=service.stored_findings()) == evaluate(PROFILE, log)
    stored = {result.key: result for result in service.stored_findings()}
    assert {
        key: result.end for key, result in stored.items() if key in whole_spell and isinstance(result, Excursion)
    } == dict.fromkeys(whole_spell, early.device_time), "re-judged from the first reading: they end at the late one"
    assert spell_alarms and spell_alarms.isdisjoint(stored), "40 and 50 min, no longer 60 min on end: withdrawn"


ZONES = [UTC, UTC, UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)),
         timezone(timedelta(microseconds=1))]  # fmt: skip
STEPS_S = [0.0, 60.0, 60.0, 60.0, 60.0, 1.0, 59.999999, 60.000001, 600.0, 5400.0]


@st.composite
def clock_logs(draw: st.DrawFn) -> list[Reading]:
    """Logs read mostly at a fixed interval (where the engine adds the interval's microseconds instead of
    converting each time), broken by other steps, with odd microseconds and device times in other zones."""
    count = draw(st.integers(min_value=1, max_value=80))
    moment = T0 + timedelta(microseconds=draw(st.sampled_from([0, 0, 1, 500_000])))
    log = []
    for seq in range(1, count + 1):
        moment += timedelta(seconds=draw(st.sampled_from(STEPS_S)))
        log.append(
            Reading(
                seq=seq,
                device_time=moment.astimezone(draw(st.sampled_from(ZONES))),
                temperature_c=draw(st.sampled_from(TEMPERATURES)),
            )
        )
    return log


@settings(max_examples=300, deadline=None)
@given(log=clock_logs())
def test_one_pass_reads_each_device_time_as_the_readings_fed_one_at_a_time_do(log: list[Reading]) -> None:
    state, events = advance(PROFILE, new_state(PROFILE), log)
    alone = new_state(PROFILE)
    found: dict[str, Event] = {}
    for reading in log:  # a feed of one reading converts its time itself
        alone, step_events = advance(PROFILE, alone, [reading])
        found.update((event.key, event) for event in step_events)
    assert (state.machine.first_s, state.machine.last_s) == (log[0].device_time.timestamp(), alone.machine.last_s)
    assert alone.machine.last_s == log[-1].device_time.timestamp()
    assert {event.key: event for event in events} == found
    assert state.machine == alone.machine
    assert (state.mkt_end_s, state.mkt_credit, state.gaps) == (alone.mkt_end_s, alone.mkt_credit, alone.gaps)
