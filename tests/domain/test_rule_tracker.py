"""One rule's state machine (:class:`~coldchain.domain.rules.RuleTracker`) fed by hand, as the engine feeds it:
every field of what it reports, a lifetime rule's spending, its memory across a checkpoint, and the rolling
window's edges (a value held longer than the window, an alarm met before anything is buffered)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from coldchain.domain._epoch import to_epoch_s
from coldchain.domain.evaluation.rule_tracker import RuleTracker
from coldchain.domain.excursions import Excursion
from coldchain.domain.profiles import AlarmRule
from coldchain.domain.rules import Alarm, RuleMemory
from tests.domain.engine_support import T0, at, rule

T0_S = to_epoch_s(T0)

Point = tuple[float, float | None]
"""(minutes after T0, value); a value of ``None`` is a faulted reading: its time is credited to nothing."""


def tracker(
    alarm_rule: AlarmRule,
    memory: RuleMemory | None = None,
    *,
    starts: Sequence[float] = (),
    ends: Sequence[float] = (),
    seqs: Sequence[int] = (),
    offset: int = 0,
) -> RuleTracker:
    return RuleTracker(
        alarm_rule,
        RuleMemory() if memory is None else memory,
        excursions=[],
        alarms=[],
        roll_start_s=list(starts),
        roll_end_s=list(ends),
        roll_start_seq=list(seqs),
        roll_offset=offset,
    )


def feed(machine: RuleTracker, points: Sequence[Point], *, first_seq: int = 1) -> None:
    """What the engine does per reading: the time since the last reading is credited with the last value if that
    was valid (else credited to nothing) while an excursion is open; then a valid value is observed."""
    last: tuple[float, float | None, int] | None = None
    for seq, (minutes, value) in enumerate(points, start=first_seq):
        time_s = T0_S + minutes * 60.0
        if last is not None and machine.current.open:
            last_s, last_value, last_seq = last
            if last_value is None:
                machine.uncredited(last_s, time_s)
            else:
                machine.credit(last_s, time_s, last_value, last_seq)
        if value is not None and (machine.current.open or machine.is_beyond(value)):
            machine.observe(time_s, seq, value)
        last = (time_s, value, seq)


def alarms_of(machine: RuleTracker) -> list[Alarm]:
    return machine._alarms


def excursions_of(machine: RuleTracker) -> list[Excursion]:
    return machine._excursions


# --- What an alarm and an excursion carry --------------------------------------------------------------------


def test_an_alarm_and_its_excursion_carry_every_field_of_the_rule_and_the_readings() -> None:
    damp = rule(name="damp", metric="humidity", direction="above", threshold=60.0, inclusive=False,
                mode="consecutive", delay_min=20.0, scope="shipment", action="warn")  # fmt: skip
    machine = tracker(damp)

    feed(machine, [(0, 50.0), (10, 61.0), (20, 63.0), (30, 62.0), (40, 55.0)])

    assert alarms_of(machine) == [
        Alarm(
            rule="damp",
            action="warn",
            metric="humidity",
            direction="above",
            threshold=60.0,
            mode="consecutive",
            scope="shipment",
            delay_min=20.0,
            began_at=at(10),
            began_seq=2,
            met_at=at(30),
        )
    ]
    assert excursions_of(machine) == [
        Excursion(
            rule="damp",
            metric="humidity",
            direction="above",
            threshold=60.0,
            start=at(10),
            start_seq=2,
            end=at(40),
            duration_min=30.0,
            uncredited_min=0.0,
            peak=63.0,
            degree_min=10 + 30 + 20,
        )
    ]


def test_a_consecutive_rule_without_delay_alarms_at_the_first_reading_beyond_it() -> None:
    machine = tracker(rule(name="freeze", direction="below", threshold=0.0, delay_min=0.0, action="reject"))

    feed(machine, [(0, 3.0), (5, -0.5), (10, -1.0), (15, 2.0)])

    assert [(a.began_at, a.began_seq, a.met_at) for a in alarms_of(machine)] == [(at(5), 2, at(5))]
    assert [(e.peak, e.degree_min, e.duration_min) for e in excursions_of(machine)] == [(-1.0, 2.5 + 5.0, 10.0)]


def test_time_nobody_can_vouch_for_inside_an_excursion_adds_up_and_counts_neither_in_nor_out() -> None:
    machine = tracker(rule(delay_min=600.0))

    # Beyond at 10, a faulted reading at 20, beyond at 30, a second fault at 40, beyond at 60, back at 70.
    feed(machine, [(0, 5.0), (10, 9.0), (20, None), (30, 9.0), (40, None), (60, 9.0), (70, 5.0)])

    (excursion,) = excursions_of(machine)
    assert (excursion.duration_min, excursion.uncredited_min) == (10.0 + 10.0 + 10.0, 10.0 + 20.0)


def test_an_excursion_closed_across_a_gap_ends_where_its_last_credited_time_ended() -> None:
    machine = tracker(rule(delay_min=600.0))

    machine.observe(T0_S + 600.0, 2, 9.0)
    machine.uncredited(T0_S + 600.0, T0_S + 1800.0)  # a data gap
    machine.observe(T0_S + 1800.0, 3, 5.0)

    (excursion,) = excursions_of(machine)
    assert (excursion.start, excursion.end, excursion.duration_min, excursion.uncredited_min) == (
        at(10), at(10), 0.0, 20.0
    )  # fmt: skip


# --- A lifetime rule's spending ----------------------------------------------------------------------------------

BUDGET = rule(name="budget", threshold=8.0, inclusive=False, mode="cumulative", scope="lifetime",
              delay_min=30.0, action="reject")  # fmt: skip


def test_a_lifetime_rule_records_its_spending_as_merged_intervals_and_raises_nothing_itself() -> None:
    machine = tracker(BUDGET)

    feed(machine, [(0, 5.0), (10, 9.0), (10, 9.5), (20, 10.0), (30, 5.0), (60, 9.0), (100, 4.0)])

    assert machine.spending() == [
        (T0_S + 600.0, T0_S + 1800.0, 3),  # from the second reading at minute 10: the first held no time
        (T0_S + 3600.0, T0_S + 6000.0, 6),
    ]
    assert alarms_of(machine) == []
    summary = machine.summary(T0_S + 6000.0)
    assert (summary.status, summary.since, summary.beyond_min, summary.alarms) == ("pending", at(10), 60.0, 0)


# --- Memory across a checkpoint ----------------------------------------------------------------------------------


def test_an_untouched_tracker_hands_back_the_very_memory_it_was_given() -> None:
    memory = RuleMemory(excursions=2, total_min=30.0)

    assert tracker(rule(), memory).memory() is memory


def test_memory_after_a_change_is_a_fresh_copy_with_the_rolling_buffers_positions_in_absolute_terms() -> None:
    hot_day = rule(name="hot day", threshold=10.0, inclusive=False, mode="cumulative", scope="rolling_24h",
                   delay_min=600.0, action="warn")  # fmt: skip
    # Two intervals were dropped from the buffer's front (offset 2); one is left, at absolute index 2.
    memory = RuleMemory(roll_head=2, roll_len=3, roll_last_end_s=T0_S + 600.0, roll_sum_min=10.0, roll_x_s=T0_S + 600.0)
    machine = tracker(hot_day, memory, starts=[T0_S], ends=[T0_S + 600.0], seqs=[1], offset=2)
    assert machine.roll_head == 0

    feed(machine, [(20, 11.0), (30, 11.0), (40, 5.0)], first_seq=3)
    remembered = machine.memory()

    assert remembered is not memory and remembered is machine.memory()
    assert (remembered.roll_head, remembered.roll_len, remembered.roll_last_end_s) == (2, 4, T0_S + 2400.0)
    assert (remembered.roll_sum_min, remembered.excursions) == (30.0, 1)
    assert memory.roll_len == 3  # the memory handed in is never changed


def test_memory_after_each_kind_of_feeding_is_a_rule_memory_with_what_changed() -> None:
    machine = tracker(rule(delay_min=600.0))
    feed(machine, [(0, 9.0)])
    opened = machine.memory()
    machine.credit(T0_S, T0_S + 600.0, 9.0, 1)
    credited = machine.memory()
    machine.uncredited(T0_S + 600.0, T0_S + 1200.0)
    uncredited = machine.memory()

    assert (opened.open, opened.ex_credited_min) == (True, 0.0)
    assert (credited.ex_credited_min, credited.ex_uncredited_min) == (10.0, 0.0)
    assert (uncredited.ex_credited_min, uncredited.ex_uncredited_min) == (10.0, 10.0)


# --- The rolling window's edges ------------------------------------------------------------------------------------


def test_a_rolling_alarm_met_before_anything_is_buffered_began_with_the_reading_held() -> None:
    hot_day = rule(name="hot day", threshold=10.0, inclusive=False, mode="cumulative", scope="rolling_24h",
                   delay_min=60.0, action="warn")  # fmt: skip
    machine = tracker(hot_day)

    feed(machine, [(0, 5.0), (15, 11.0), (135, 5.0)])

    assert [(a.began_at, a.began_seq, a.met_at) for a in alarms_of(machine)] == [(at(15), 2, at(75))]


@pytest.mark.parametrize("held_h", [12.0, 24.0, 30.0, 50.0])
def test_a_value_held_beyond_for_half_a_day_or_longer_fills_the_window_to_24_h_at_most(held_h: float) -> None:
    hot_day = rule(name="hot day", threshold=10.0, inclusive=False, mode="cumulative", scope="rolling_24h",
                   delay_min=600.0, action="warn")  # fmt: skip
    machine = tracker(hot_day)
    end = 10 + held_h * 60

    # Held beyond, then a day and a half of quiet, then five hours beyond again: 300 min in the window, no alarm.
    feed(machine, [(0, 5.0), (10, 11.0), (end, 5.0), (end + 2160, 11.0), (end + 2460, 5.0)])

    assert [(a.began_at, a.met_at) for a in alarms_of(machine)] == [(at(10), at(610))]
    assert machine.current.roll_sum_min == pytest.approx(300.0)


@pytest.mark.parametrize(("held_h", "in_window_min"), [(12.0, 1020.0), (24.0, 1320.0), (30.0, 1320.0), (50.0, 1320.0)])
def test_the_window_after_a_long_hold_holds_only_its_last_24_h(held_h: float, in_window_min: float) -> None:
    hot_day = rule(name="hot day", threshold=10.0, inclusive=False, mode="cumulative", scope="rolling_24h",
                   delay_min=600.0, action="warn")  # fmt: skip
    machine = tracker(hot_day)
    end = 10 + held_h * 60

    # Two hours of quiet after the hold, then five hours beyond: the window ending then reaches 17 h back.
    feed(machine, [(0, 5.0), (10, 11.0), (end, 5.0), (end + 120, 11.0), (end + 420, 5.0)])

    assert machine.current.roll_sum_min == pytest.approx(in_window_min)
    assert [(a.began_at, a.began_seq, a.met_at) for a in alarms_of(machine)] == [(at(10), 2, at(610))]


def test_a_rolling_alarm_began_with_the_earliest_buffered_spell_and_its_reading() -> None:
    hot_day = rule(name="hot day", threshold=10.0, inclusive=False, mode="cumulative", scope="rolling_24h",
                   delay_min=60.0, action="warn")  # fmt: skip
    machine = tracker(hot_day)

    feed(machine, [(0, 5.0), (10, 11.0), (40, 5.0), (50, 12.0), (70, 5.0), (80, 11.0), (100, 5.0)])

    assert [(a.began_at, a.began_seq, a.met_at) for a in alarms_of(machine)] == [(at(10), 2, at(90))]


def test_a_cumulative_alarm_began_with_the_first_excursion_counted_and_its_reading() -> None:
    total = rule(name="heat total", mode="cumulative", delay_min=25.0, inclusive=False, action="quarantine")
    machine = tracker(total)

    feed(machine, [(0, 5.0), (10, 9.0), (20, 5.0), (30, 9.5), (50, 5.0)])

    assert alarms_of(machine) == [
        Alarm(rule="heat total", action="quarantine", metric="temperature", direction="above", threshold=8.0,
              mode="cumulative", scope="shipment", delay_min=25.0, began_at=at(10), began_seq=2, met_at=at(45))
    ]  # fmt: skip
