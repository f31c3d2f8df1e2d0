"""The shipment judgement as pure domain code, no database: streams combined, the lot's budget, the allowance
each rule has left, late detection and the recommendation."""

from __future__ import annotations

from datetime import timedelta

from coldchain.domain.evaluation import Evaluation, advance, new_state, stream_evaluation, stream_spendings
from coldchain.domain.judgement import LATE_AFTER, is_late_detection, judge_shipment
from coldchain.domain.lot_budget import Spending
from coldchain.domain.quarantine import QuarantineFault
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
