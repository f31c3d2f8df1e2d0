"""The shipment judgement as pure domain code, no database: streams combined, the lot's budget, the allowance
each rule has left, late detection and the recommendation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import msgspec
import pytest

from coldchain.domain.evaluation import Evaluation, advance, evaluate, new_state, stream_evaluation, stream_spendings
from coldchain.domain.judgement import LATE_AFTER, is_late_detection, judge_shipment
from coldchain.domain.lot_budget import Spending
from coldchain.domain.profiles import MktSettings
from coldchain.domain.quarantine import QuarantineFault
from coldchain.domain.rules import Alarm
from tests.domain.engine_support import at, profile, readings, rule

HEAT_TOTAL = rule(name="heat total", mode="cumulative", delay_min=60.0, inclusive=False)
BUDGET = rule(name="budget", mode="cumulative", scope="lifetime", delay_min=90.0, inclusive=False, action="reject")
RULES = profile(HEAT_TOTAL, BUDGET, rule(name="heat"))


def stream(
    points: list[tuple[float, float | None]], *, stream_id: int, shipment_id: int
) -> tuple[Evaluation, list[Spending]]:
    """One stream judged alone: its evaluation and its spending of the lot's budget."""
    state, _ = advance(RULES, new_state(RULES), readings(points))
    return stream_evaluation(RULES, state), stream_spendings(RULES, state, stream_id=stream_id, shipment_id=shipment_id)


def test_two_streams_of_a_shipment_add_up_and_each_rule_shows_the_allowance_it_has_left() -> None:
    first, first_spent = stream([(0, 9.0), (20, 5.0)], stream_id=1, shipment_id=7)
    second, second_spent = stream([(30, 9.0), (40, 9.0), (50, 5.0)], stream_id=2, shipment_id=7)

    judgement = judge_shipment(
        RULES, shipment_id=7, streams=[first, second], lot_spendings=[*first_spent, *second_spent]
    )

    summary = {s.rule: s for s in judgement.evaluation.rules}
    assert summary["heat total"].beyond_min == 40.0
    assert judgement.allowances == {"heat total": 20.0, "budget": 50.0, "heat": None}
    assert judgement.disposition.recommendation == "release"


def test_the_budget_alarm_goes_to_the_shipment_whose_stream_crossed_it_and_not_to_the_other() -> None:
    earlier, earlier_spent = stream([(0, 9.0), (60, 5.0)], stream_id=1, shipment_id=1)
    later, later_spent = stream([(100, 9.0), (160, 5.0)], stream_id=2, shipment_id=2)
    lot = [*later_spent, *earlier_spent]

    first = judge_shipment(RULES, shipment_id=1, streams=[earlier], lot_spendings=lot)
    second = judge_shipment(RULES, shipment_id=2, streams=[later], lot_spendings=lot)

    assert [a.met_at for a in first.evaluation.alarms if a.rule == "budget"] == []
    assert [a.met_at for a in second.evaluation.alarms if a.rule == "budget"] == [at(130)]
    assert {s.rule: s.status for s in second.evaluation.rules}["budget"] == "alarmed"
    assert {s.rule: s.status for s in first.evaluation.rules}["budget"] == "pending"
    assert second.disposition.recommendation == "reject"
    assert first.allowances["budget"] == 30.0  # by its own time
    (budget,) = first.evaluation.budgets
    assert (budget.lot_spent_min, budget.lot_exhausted_at) == (120.0, at(130))


def test_quarantined_readings_call_for_quarantine_even_when_everything_else_releases() -> None:
    quiet, spent = stream([(0, 5.0), (10, 5.0)], stream_id=1, shipment_id=1)
    fault = QuarantineFault(kind="temperature_c not a number", first_at=at(5), last_at=at(5), readings=1)

    judgement = judge_shipment(RULES, shipment_id=1, streams=[quiet], lot_spendings=spent, quarantined=[fault])

    assert judgement.disposition.recommendation == "quarantine"
    assert [r.code for r in judgement.disposition.reasons] == ["quarantined_readings"]


def test_an_alarm_detected_more_than_a_quarter_of_an_hour_after_it_was_met_is_late() -> None:
    alarmed, _ = stream([(0, 9.0), (30, 9.0), (60, 9.0), (70, 5.0)], stream_id=1, shipment_id=1)
    (alarm,) = [a for a in alarmed.alarms if a.rule == "heat total"]

    assert not is_late_detection(alarm, alarm.met_at + LATE_AFTER)
    assert is_late_detection(alarm, alarm.met_at + LATE_AFTER + timedelta(seconds=1))


WINDOWED = profile(HEAT_TOTAL, BUDGET, rule(name="heat"), mkt=MktSettings(window="24h", limit_c=8.0))


def windowed_stream(points: Sequence[tuple[float, float | None]]) -> Evaluation:
    state, _ = advance(WINDOWED, new_state(WINDOWED), readings(points))
    return stream_evaluation(WINDOWED, state)


def test_two_streams_are_summed_as_one_record_with_the_time_between_them_credited_to_neither() -> None:
    first = [(0.0, 5.0), (60.0, 15.0)]
    second = [(200.0, 12.0), (260.0, 4.0), (320.0, 4.0)]

    judgement = judge_shipment(
        WINDOWED, shipment_id=1, streams=[windowed_stream(first), windowed_stream(second)], lot_spendings=[]
    )

    one_record = evaluate(WINDOWED, readings(first + second))  # 60 -> 200 is a gap: credited to nobody
    combined = judgement.evaluation
    assert combined.readings == 5
    assert (combined.first_reading_at, combined.last_reading_at) == (at(0), at(320))
    assert (combined.temperature_min_c, combined.temperature_max_c) == (4.0, 15.0)
    assert combined.temperature_mean_c == pytest.approx((5 * 60 + 12 * 60 + 4 * 60) / 180)
    assert combined.mkt.shipment_mkt_c == pytest.approx(one_record.mkt.shipment_mkt_c)
    for field in ("window_mkt_c", "best_case_mkt_c", "worst_case_mkt_c", "coverage", "covered_min", "credited_min"):
        assert getattr(combined.mkt, field) == pytest.approx(getattr(one_record.mkt, field)), field
    assert (combined.mkt.verdict, combined.mkt.rests_on, combined.mkt.window_complete) == ("pass", "bounds", False)
    assert (combined.mkt.window_start, combined.mkt.window_end) == (at(0), at(320))


def test_the_worst_complete_window_of_any_stream_stands_for_the_shipment() -> None:
    warm_day = [(minutes, 9.0) for minutes in range(0, 24 * 60 + 1, 60)]
    cool_day = [(2000.0 + minutes, 3.0) for minutes in range(0, 24 * 60 + 1, 60)]
    short = [(5000.0, 20.0), (5060.0, 20.0)]

    warm, cool = windowed_stream(warm_day), windowed_stream(cool_day)
    judgement = judge_shipment(WINDOWED, shipment_id=1, streams=[cool, windowed_stream(short), warm], lot_spendings=[])

    mkt = judgement.evaluation.mkt
    assert (mkt.window_complete, mkt.rests_on, mkt.verdict, mkt.passes) == (True, "complete_window", "fail", False)
    assert (mkt.window_mkt_c, mkt.window_start, mkt.window_end) == (
        warm.mkt.window_mkt_c,
        warm.mkt.window_start,
        warm.mkt.window_end,
    )
    assert mkt.covered_min == warm.mkt.covered_min


def test_a_rules_status_is_its_worst_in_any_stream_and_its_figures_add_up() -> None:
    alarmed = windowed_stream([(0, 9.0), (30, 9.0), (60, 9.0), (70, 5.0)])  # heat met at minute 60
    building = windowed_stream([(100, 5.0), (110, 9.0), (130, 10.0), (140, 5.0)])
    quiet = windowed_stream([(200, 5.0), (210, 5.0)])

    judgement = judge_shipment(WINDOWED, shipment_id=1, streams=[quiet, building, alarmed], lot_spendings=[])

    heat = {summary.rule: summary for summary in judgement.evaluation.rules}["heat"]
    assert (heat.status, heat.since, heat.beyond_now) == ("alarmed", at(0), False)
    assert (heat.beyond_min, heat.longest_min, heat.excursions, heat.alarms) == (100.0, 70.0, 2, 1)
    assert heat.degree_min == pytest.approx(70 * 1.0 + 20 * 1.0 + 10 * 2.0)
    starts = [(e.start, e.rule) for e in judgement.evaluation.excursions]
    assert starts == sorted(starts)
    assert [a.met_at for a in judgement.evaluation.alarms] == sorted(a.met_at for a in judgement.evaluation.alarms)


def test_a_shipment_without_streams_is_judged_on_no_data() -> None:
    judgement = judge_shipment(WINDOWED, shipment_id=1, streams=[], lot_spendings=[])

    assert (judgement.evaluation.readings, judgement.disposition.recommendation) == (0, "quarantine")
    assert [reason.code for reason in judgement.disposition.reasons] == ["no_data"]


def test_a_stream_with_no_credited_time_and_one_with_half_a_minute_combine_to_the_half_minute() -> None:
    single = windowed_stream([(0.0, 30.0)])  # one reading: no time credited to anyone
    brief = windowed_stream([(100.0, 6.0), (100.5, 6.0)])  # 30 s at 6 °C

    judgement = judge_shipment(WINDOWED, shipment_id=1, streams=[single, brief], lot_spendings=[])

    combined = judgement.evaluation
    assert (combined.profile_id, combined.profile_version) == (WINDOWED.id, WINDOWED.version)
    assert combined.mkt.credited_min == 0.5
    assert combined.mkt.shipment_mkt_c == pytest.approx(6.0)
    assert combined.temperature_mean_c == pytest.approx(6.0)


def test_an_allowance_spent_beyond_its_delay_is_left_at_zero_and_the_faults_are_kept() -> None:
    spent, spending = stream([(0, 9.0), (40, 9.0), (80, 5.0)], stream_id=1, shipment_id=1)  # 80 min beyond 8 °C
    fault = QuarantineFault(kind="position incomplete", first_at=at(5), last_at=at(6), readings=2)

    judgement = judge_shipment(RULES, shipment_id=1, streams=[spent], lot_spendings=spending, quarantined=[fault])

    assert judgement.allowances == {"heat total": 0.0, "budget": 10.0, "heat": None}
    assert judgement.quarantined == [fault]


PLAIN = profile(HEAT_TOTAL)


def plain_stream(points: Sequence[tuple[float, float | None]], *, first_seq: int = 1) -> Evaluation:
    log = [msgspec.structs.replace(r, seq=r.seq + first_seq - 1) for r in readings(points)]
    state, _ = advance(PLAIN, new_state(PLAIN), log)
    return stream_evaluation(PLAIN, state)


def test_gaps_and_faults_of_several_streams_are_listed_in_time_order_whoever_logged_them() -> None:
    # The first stream's gap and fault come after the second's.
    first = plain_stream([(200, 5.0), (210, 5.0), (300, 5.0), (305, None), (310, 5.0)])
    second = plain_stream([(0, 5.0), (10, 5.0), (100, 5.0), (105, None), (110, 5.0)], first_seq=100)

    combined = judge_shipment(PLAIN, shipment_id=1, streams=[first, second], lot_spendings=[]).evaluation

    assert [(gap.start, gap.end) for gap in combined.gaps] == [(at(10), at(100)), (at(210), at(300))]
    assert [(fault.start, fault.start_seq) for fault in combined.faults] == [(at(105), 103), (at(305), 4)]
    assert combined.budgets == []


def test_a_stream_that_logged_nothing_adds_nothing_and_two_such_streams_are_no_data() -> None:
    empty = stream_evaluation(PLAIN, new_state(PLAIN))
    logged = plain_stream([(0, 4.0), (30, 9.0), (60, 6.0)])

    with_empty = judge_shipment(PLAIN, shipment_id=1, streams=[empty, logged], lot_spendings=[]).evaluation
    nothing = judge_shipment(PLAIN, shipment_id=1, streams=[empty, empty], lot_spendings=[]).evaluation

    assert (with_empty.first_reading_at, with_empty.last_reading_at) == (at(0), at(60))
    assert (with_empty.temperature_min_c, with_empty.temperature_max_c) == (4.0, 9.0)
    assert with_empty.temperature_mean_c == pytest.approx((4.0 * 30 + 9.0 * 30) / 60)
    assert (nothing.readings, nothing.first_reading_at, nothing.last_reading_at) == (0, None, None)
    assert (nothing.temperature_min_c, nothing.temperature_max_c, nothing.temperature_mean_c) == (None, None, None)
    assert (nothing.mkt.window_start, nothing.mkt.window_end, nothing.mkt.shipment_mkt_c) == (None, None, None)


def test_the_lot_budget_alarm_carries_the_rule_and_the_reading_whose_time_crossed_it() -> None:
    _, earlier_spent = stream([(0, 9.0), (60, 5.0)], stream_id=1, shipment_id=1)
    later, later_spent = stream([(100, 9.0), (160, 5.0)], stream_id=2, shipment_id=2)

    judged = judge_shipment(RULES, shipment_id=2, streams=[later], lot_spendings=[*earlier_spent, *later_spent])

    assert [a for a in judged.evaluation.alarms if a.rule == "budget"] == [
        Alarm(rule="budget", action="reject", metric="temperature", direction="above", threshold=8.0,
              mode="cumulative", scope="lifetime", delay_min=90.0, began_at=at(100), began_seq=1, met_at=at(130))
    ]  # fmt: skip
