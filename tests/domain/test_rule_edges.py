"""Edges of the rules and of MKT that a mutation of the engine would otherwise survive: a rolling window that
re-arms while older beyond-time is still inside it, a value held beyond the threshold for half a day or more,
cumulative latching and its statuses, below-direction rules, a checkpoint restored mid-excursion, MKT's ``until``
and a gap just over the limit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coldchain.domain.evaluation import (
    ReadingKey,
    advance,
    evaluate,
    new_state,
    rewind,
    summarise,
)
from coldchain.domain.mkt import mean_kinetic_temperature
from coldchain.domain.readings import Reading
from tests.domain.engine_support import at, profile, readings, rule

HOT_DAY = rule(name="hot day", threshold=10.0, inclusive=False, mode="cumulative", scope="rolling_24h",
               delay_min=60.0, action="warn")  # fmt: skip


def every_ten_minutes(*temperatures: float | None, start: float = 0.0) -> list[tuple[float, float | None]]:
    return [(start + 10.0 * index, temperature) for index, temperature in enumerate(temperatures)]


def test_a_rolling_window_re_armed_while_older_beyond_time_is_inside_alarms_again_from_that_older_time() -> None:
    # Seven 10-minute spells at 11 °C in the first two hours: 60 min beyond the threshold by minute 110.
    morning = every_ten_minutes(*[11.0, 5.0] * 7)
    quiet = [(minutes, 5.0) for minutes in range(140, 1470, 10)]
    # A day later the first spells leave the window one by one: below 60 min from minute 1460 (re-armed); a new
    # spell from minute 1470 brings the window back to 60 min at minute 1480 while spells from minute 40 on are
    # still inside it.
    next_day = every_ten_minutes(11.0, 11.0, 11.0, 5.0, start=1470.0)

    result = evaluate(profile(HOT_DAY), readings(morning + quiet + next_day))

    assert [(alarm.began_at, alarm.met_at) for alarm in result.alarms] == [(at(0), at(110)), (at(40), at(1480))]


def test_one_reading_held_beyond_the_threshold_for_half_a_day_or_more_alarms_once_at_the_delay() -> None:
    long_day = rule(name="hot day", threshold=10.0, inclusive=False, mode="cumulative", scope="rolling_24h",
                    delay_min=600.0, action="warn")  # fmt: skip
    log = readings([(0, 5.0), (10, 11.0), (10 + 13 * 60, 5.0)])

    result = evaluate(profile(long_day, max_gap_min=900.0), log)

    assert [(alarm.began_at, alarm.met_at) for alarm in result.alarms] == [(at(10), at(610))]
    (summary,) = result.rules
    assert (summary.beyond_min, summary.status) == (780.0, "alarmed")


def test_a_cumulative_rule_alarms_once_per_shipment_however_much_more_time_is_spent() -> None:
    total = rule(name="heat total", mode="cumulative", delay_min=20.0, inclusive=False)
    log = readings(every_ten_minutes(9, 9, 9, 5, 9, 9, 9, 5, 9, 9, 5))

    result = evaluate(profile(total), log)

    assert [(alarm.began_at, alarm.met_at) for alarm in result.alarms] == [(at(0), at(20))]
    (summary,) = result.rules
    assert (summary.status, summary.since, summary.alarms, summary.beyond_min) == ("alarmed", at(0), 1, 80.0)


def test_a_cumulative_rule_is_ok_until_time_is_spent_then_pending_below_its_delay() -> None:
    total = rule(name="heat total", mode="cumulative", delay_min=60.0, inclusive=False)

    (untouched,) = evaluate(profile(total), readings(every_ten_minutes(5, 5, 5))).rules
    (building,) = evaluate(profile(total), readings(every_ten_minutes(5, 9, 5, 5))).rules

    assert (untouched.status, untouched.since, untouched.beyond_min) == ("ok", None, 0.0)
    assert (building.status, building.since, building.beyond_min) == ("pending", at(10), 10.0)


@pytest.mark.parametrize(("inclusive", "beyond"), [(True, 20.0), (False, 0.0)])
def test_a_below_rule_counts_a_reading_on_its_threshold_only_when_inclusive(inclusive: bool, beyond: float) -> None:
    freeze = rule(name="freeze", direction="below", threshold=-0.5, inclusive=inclusive, delay_min=30.0)

    (summary,) = evaluate(profile(freeze), readings(every_ten_minutes(3, -0.5, -0.5, 3))).rules

    assert summary.beyond_min == beyond


def test_a_below_rules_degree_minutes_are_how_far_below_times_how_long() -> None:
    freeze = rule(name="freeze", direction="below", threshold=0.0, inclusive=True, delay_min=30.0)

    result = evaluate(profile(freeze), readings(every_ten_minutes(3, -1.0, -2.5, 3)))

    (excursion,) = result.excursions
    assert (excursion.degree_min, excursion.peak, excursion.duration_min) == (35.0, -2.5, 20.0)
    assert result.rules[0].degree_min == 35.0


def test_a_checkpoint_restored_in_the_middle_of_an_excursion_replays_to_the_one_pass_result() -> None:
    heat = rule(name="heat", delay_min=60.0)
    total = rule(name="heat total", mode="cumulative", delay_min=45.0, inclusive=False)
    rules = profile(heat, total)
    log = readings(every_ten_minutes(5, 9, 9, 9, 9, 9, 9, 9, 9, 5, 5))
    late = log.pop(5)  # minute 50, inside the excursion that began at minute 10
    state, _ = advance(rules, new_state(rules, checkpoint_every_min=20.0), log)

    rewound = rewind(rules, state, ReadingKey.of(late))
    assert rewound.replay_after is not None and at(10) <= rewound.replay_after.device_time < at(50)
    replay = sorted([late, *(r for r in log if r.device_time > rewound.replay_after.device_time)],
                    key=lambda r: (r.device_time, r.seq))  # fmt: skip
    final, _ = advance(rules, rewound.state, replay)

    assert summarise(rules, final) == evaluate(rules, [*log, late])


def test_mkt_until_the_last_reading_adds_nothing_and_until_a_gap_length_later_holds_the_last_value() -> None:
    log = readings([(0, 5.0), (60, 15.0)])

    at_last = mean_kinetic_temperature(log, max_gap_min=60.0, until=at(60))
    one_gap_later = mean_kinetic_temperature(log, max_gap_min=60.0, until=at(120))
    just_over = mean_kinetic_temperature(log, max_gap_min=60.0, until=at(120) + timedelta(seconds=1))

    assert at_last == pytest.approx(5.0)
    assert one_gap_later == pytest.approx(mean_kinetic_temperature(readings([(0, 5.0), (60, 15.0), (120, 0.0)]),
                                                                   max_gap_min=60.0))  # fmt: skip
    assert just_over == pytest.approx(5.0)  # held across a gap: not credited


def test_an_interval_exactly_the_gap_tolerance_is_credited_and_one_second_more_is_a_gap() -> None:
    exact = readings([(0, 5.0), (60, 9.0), (120, 5.0)])
    over = [*exact[:2], Reading(seq=3, device_time=at(120) + timedelta(seconds=1), temperature_c=5.0)]

    credited = evaluate(profile(rule(name="heat")), exact)
    gapped = evaluate(profile(rule(name="heat")), over)

    assert (credited.gaps, credited.mkt.credited_min) == ([], 120.0)
    assert [gap.duration_min for gap in gapped.gaps] == [pytest.approx(60 + 1 / 60)]
    assert gapped.mkt.credited_min == 60.0
    assert mean_kinetic_temperature(over, max_gap_min=60.0) == pytest.approx(5.0)
