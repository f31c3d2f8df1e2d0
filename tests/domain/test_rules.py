"""Alarm rules at work (REFERENCE §3): the edge cases a cold-chain test suite must hold."""

from __future__ import annotations

import msgspec
import pytest

from coldchain.domain.evaluation import evaluate
from tests.domain.engine_support import at, profile, readings, rule, shared_profile


def every_ten_minutes(*temperatures: float, start: float = 0.0) -> list[tuple[float, float]]:
    return [(start + 10.0 * index, temperature) for index, temperature in enumerate(temperatures)]


def test_a_reading_exactly_on_the_threshold_counts_when_inclusive() -> None:
    heat = rule(threshold=30.0, inclusive=True, mode="instant", delay_min=0.0)

    result = evaluate(profile(heat), readings(every_ten_minutes(29.9, 30.0, 29.9)))

    assert [(a.rule, a.began_at) for a in result.alarms] == [("heat", at(10))]
    (excursion,) = result.excursions
    assert (excursion.start, excursion.end, excursion.duration_min) == (at(10), at(20), 10.0)
    assert excursion.degree_min == 0.0  # exactly on the threshold: no degree beyond it


def test_a_reading_exactly_on_the_threshold_does_not_count_when_exclusive() -> None:
    heat = rule(threshold=30.0, inclusive=False, mode="instant", delay_min=0.0)

    result = evaluate(profile(heat), readings(every_ten_minutes(29.9, 30.0, 29.9)))

    assert result.alarms == []
    assert result.excursions == []
    assert result.rules[0].status == "ok"


def test_one_in_range_reading_resets_a_consecutive_rule() -> None:
    heat = rule(mode="consecutive", delay_min=60.0)
    # 50 min above 8 °C, one reading back at 7 °C, 50 min above again: never 60 min in a row.
    points = every_ten_minutes(9, 9, 9, 9, 9, 7, 9, 9, 9, 9, 9, 7)

    result = evaluate(profile(heat), readings(points))

    assert result.alarms == []
    assert [e.duration_min for e in result.excursions] == [50.0, 50.0]
    summary = result.rules[0]
    assert (summary.beyond_min, summary.longest_min, summary.excursions) == (100.0, 50.0, 2)


def test_one_in_range_reading_does_not_reset_a_cumulative_rule() -> None:
    heat = rule(mode="cumulative", delay_min=60.0)
    points = every_ten_minutes(9, 9, 9, 9, 9, 7, 9, 9, 9, 9, 9, 7)

    result = evaluate(profile(heat), readings(points))

    (alarm,) = result.alarms
    # 50 min in the first excursion, the 60th minute is the 10th of the second (which starts at 60 min).
    assert (alarm.began_at, alarm.met_at) == (at(0), at(70))
    assert [e.duration_min for e in result.excursions] == [50.0, 50.0]


def test_a_consecutive_alarm_is_met_at_the_exact_moment_the_delay_is_reached() -> None:
    heat = rule(mode="consecutive", delay_min=25.0)

    result = evaluate(profile(heat), readings(every_ten_minutes(5, 9, 9, 9, 9, 5)))

    (alarm,) = result.alarms
    assert (alarm.began_at, alarm.met_at) == (at(10), at(35))
    assert (alarm.began_seq, alarm.key) == (2, f"alarm|heat|{at(10).isoformat()}|2")


def test_who_e006_tr06_heat_alarm_needs_ten_hours_at_or_above_8_degrees() -> None:
    tr06 = shared_profile("who-e006-tr06-fridge")
    ten_hours = [(10.0 * index, 8.0) for index in range(60)] + [(600.0, 8.0), (610.0, 5.0)]
    almost = [(10.0 * index, 8.0) for index in range(59)] + [(590.0, 5.0)]

    alarmed = evaluate(tr06, readings(ten_hours))
    quiet = evaluate(tr06, readings(almost))

    (alarm,) = alarmed.alarms
    assert (alarm.rule, alarm.action, alarm.began_at, alarm.met_at) == ("heat alarm", "quarantine", at(0), at(600))
    assert quiet.alarms == []
    assert quiet.rules[0].longest_min == 590.0


def test_who_e006_tr06_freeze_alarm_needs_an_hour_at_or_below_minus_half_a_degree() -> None:
    tr06 = shared_profile("who-e006-tr06-fridge")
    freeze = [(0.0, 4.0)] + [(10.0 * index, -0.5) for index in range(1, 8)] + [(80.0, 3.0)]

    result = evaluate(tr06, readings(freeze))

    (alarm,) = result.alarms
    assert (alarm.rule, alarm.action, alarm.began_at, alarm.met_at) == ("freeze alarm", "reject", at(10), at(70))
    statuses = {summary.rule: summary.status for summary in result.rules}
    assert statuses == {"heat alarm": "ok", "freeze alarm": "alarmed"}


def test_who_e006_tr07_heat_alarm_counts_ten_hours_at_30_degrees_across_excursions() -> None:
    tr07 = shared_profile("who-e006-tr07-type1")
    # Four afternoons of 3 h at 30 °C (inclusive), nights at 20 °C: the 10 h is reached on the fourth.
    points: list[tuple[float, float]] = []
    for day in range(4):
        base = day * 1440.0
        points += [(base + 10.0 * step, 30.0) for step in range(18)]
        points += [(base + 180.0 + 10.0 * step, 20.0) for step in range(126)]

    result = evaluate(tr07, readings(points))

    (alarm,) = result.alarms
    assert (alarm.rule, alarm.mode, alarm.began_at) == ("heat", "cumulative", at(0))
    assert alarm.met_at == at(3 * 1440 + 60)
    heat = next(summary for summary in result.rules if summary.rule == "heat")
    assert (heat.beyond_min, heat.longest_min, heat.excursions, heat.status) == (720.0, 180.0, 4, "alarmed")


def test_who_e006_tr07_type2_replaces_the_freeze_alarm_with_20_hours_at_10_degrees() -> None:
    tr07 = shared_profile("who-e006-tr07-type2")
    freezing_then_warm = [(0.0, -5.0), (120.0, -5.0)] + [(120.0 + 60.0 * h, 12.0) for h in range(1, 22)]

    result = evaluate(msgspec.structs.replace(tr07, max_gap_min=120.0), readings(freezing_then_warm))

    assert [(a.rule, a.met_at) for a in result.alarms] == [("warm", at(180 + 1200))]


def test_an_instant_rule_alarms_once_per_excursion_at_its_first_reading() -> None:
    above = rule(name="above 25", threshold=25.0, inclusive=False, mode="instant", delay_min=0.0, action="reject")

    result = evaluate(profile(above), readings(every_ten_minutes(5, 26, 27, 5, 26, 5)))

    assert [(a.began_at, a.met_at) for a in result.alarms] == [(at(10), at(10)), (at(40), at(40))]
    assert [e.peak for e in result.excursions] == [27.0, 26.0]


def test_degree_minutes_sum_the_excess_over_the_threshold_and_a_below_rule_peaks_at_its_lowest() -> None:
    heat = rule(mode="cumulative", delay_min=1000.0)
    cold = rule(name="cold", direction="below", threshold=2.0, inclusive=False, mode="cumulative", delay_min=1e3)

    result = evaluate(profile(heat, cold), readings(every_ten_minutes(10, 12, 5, 1, -1, 5)))

    hot, chilled = sorted(result.excursions, key=lambda excursion: excursion.rule != "heat")
    assert hot.degree_min == pytest.approx(2 * 10 + 4 * 10)
    assert chilled.degree_min == pytest.approx(1 * 10 + 3 * 10)
    assert (chilled.peak, chilled.direction) == (-1.0, "below")


def test_a_rolling_24h_rule_forgets_time_beyond_the_threshold_older_than_a_day() -> None:
    hot_day = rule(name="hot day", mode="cumulative", scope="rolling_24h", delay_min=90.0, threshold=10.0)
    # 60 min warm, back in range for 23 h, then 60 min warm again: at most 60 min in any 24 h window.
    points = every_ten_minutes(*([12.0] * 6), 5.0)
    points += [(60.0 + 60.0 * hour, 5.0) for hour in range(1, 24)]
    points += every_ten_minutes(*([12.0] * 6), 5.0, start=24 * 60.0 + 30.0)

    spread = evaluate(profile(hot_day), readings(points))
    shipment_scope = evaluate(profile(msgspec.structs.replace(hot_day, scope="shipment")), readings(points))

    assert spread.alarms == []
    assert spread.rules[0].beyond_min == 120.0
    assert [(a.began_at, a.met_at) for a in shipment_scope.alarms] == [(at(0), at(24 * 60 + 60))]


def test_a_rolling_24h_rule_alarms_within_a_day_and_again_once_the_window_has_cleared() -> None:
    hot_day = rule(name="hot day", mode="cumulative", scope="rolling_24h", delay_min=90.0, threshold=10.0)
    morning = every_ten_minutes(*([12.0] * 6), 5.0)  # 60 min warm
    evening = every_ten_minutes(*([12.0] * 6), 5.0, start=600.0)  # 60 more within the same day
    quiet = [(600.0 + 60.0 * hour, 5.0) for hour in range(2, 48)]
    next_days = every_ten_minutes(*([12.0] * 12), 5.0, start=48 * 60.0 + 30)  # 120 min two days later

    result = evaluate(profile(hot_day), readings(morning + evening + quiet + next_days))

    assert [(a.began_at, a.met_at) for a in result.alarms] == [
        (at(0), at(630)),
        (at(48 * 60 + 30), at(48 * 60 + 30 + 90)),
    ]
    assert result.rules[0].status == "alarmed"


def test_humidity_and_pressure_rules_judge_their_own_sensor() -> None:
    air = shared_profile("biologic-air-freight")
    log = readings(every_ten_minutes(*([5.0] * 14)), humidity_pct=80.0, pressure_kpa=65.0)

    result = evaluate(air, log)

    assert sorted(a.rule for a in result.alarms) == ["humidity", "low cabin pressure"]
    by_rule = {a.rule: a for a in result.alarms}
    assert by_rule["low cabin pressure"].met_at == at(60)
    assert by_rule["humidity"].met_at == at(120)
    assert by_rule["humidity"].action == "warn"


def test_a_rule_is_pending_while_its_condition_builds_and_stays_alarmed_once_met() -> None:
    heat = rule(mode="consecutive", delay_min=30.0)
    budget = rule(name="budget", mode="cumulative", delay_min=600.0)

    building = evaluate(profile(heat, budget), readings(every_ten_minutes(5, 9, 9)))
    met_and_back = evaluate(profile(heat, budget), readings(every_ten_minutes(5, 9, 9, 9, 9, 5)))

    assert [(s.rule, s.status, s.since, s.beyond_now) for s in building.rules] == [
        ("heat", "pending", at(10), True),
        ("budget", "pending", at(10), True),
    ]
    assert [(s.rule, s.status, s.since, s.beyond_now) for s in met_and_back.rules] == [
        ("heat", "alarmed", at(10), False),
        ("budget", "pending", at(10), False),
    ]
    assert building.excursions[0].end is None
    assert building.excursions[0].is_open
