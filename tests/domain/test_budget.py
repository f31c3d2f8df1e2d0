"""Stability budget (REFERENCE §4): time out of label condition, spent over the lot's whole life."""

from __future__ import annotations

import pytest

from coldchain.domain.budget import stability_budget
from coldchain.domain.evaluation import evaluate
from coldchain.domain.readings import Reading
from tests.domain.engine_support import at, profile, readings, rule

ALLOWANCE = rule(
    name="8-25 allowance",
    threshold=8.0,
    inclusive=False,
    mode="cumulative",
    delay_min=72 * 60.0,
    scope="lifetime",
    action="reject",
)


def leg(hours_beyond: float, *, at_c: float = 14.0) -> list[Reading]:
    """A 30 h leg read every 30 min: ``hours_beyond`` hours at ``at_c`` from 2 h on, 5 °C otherwise."""
    beyond_until = 120.0 + 60.0 * hours_beyond
    return readings((minutes, at_c if 120.0 <= minutes < beyond_until else 5.0) for minutes in range(0, 1800, 30))


def test_the_reference_worked_example_leaves_48_5_hours_after_three_legs() -> None:
    """72 h allowed at 8–25 °C; legs consume 3.5 h, 0 h, then 20 h: 48.5 h remain."""
    rules = profile(ALLOWANCE, max_gap_min=90.0)
    spent_min = 0.0
    budgets = []
    for hours in (3.5, 0.0, 20.0):
        result = evaluate(rules, leg(hours), lot_spent_before_min={"8-25 allowance": spent_min})
        (budget,) = result.budgets
        budgets.append(budget)
        spent_min = budget.consumed_min

    assert [b.spent_in_shipment_min / 60 for b in budgets] == [3.5, 0.0, 20.0]
    assert budgets[-1].spent_before_min == 3.5 * 60
    assert budgets[-1].remaining_min == 48.5 * 60
    assert not budgets[-1].exhausted


def test_a_lifetime_alarm_is_met_when_the_lot_budget_runs_out_during_this_shipment() -> None:
    rules = profile(ALLOWANCE, max_gap_min=90.0)

    result = evaluate(rules, leg(20.0), lot_spent_before_min={"8-25 allowance": 60 * 60.0})

    (alarm,) = result.alarms
    # 60 h spent before, so the 12 h left run out 12 h after the excursion began (at 2 h).
    assert (alarm.began_at, alarm.met_at, alarm.action) == (at(120), at(120 + 12 * 60), "reject")
    (budget,) = result.budgets
    assert (budget.remaining_min, budget.overrun_min, budget.exhausted) == (0.0, 8 * 60.0, True)


def test_a_lot_whose_budget_is_already_spent_alarms_at_the_first_reading_beyond() -> None:
    rules = profile(ALLOWANCE, max_gap_min=90.0)

    result = evaluate(rules, leg(1.0), lot_spent_before_min={"8-25 allowance": 72 * 60.0})

    assert [(a.began_at, a.met_at) for a in result.alarms] == [(at(120), at(120))]


def test_the_budget_is_reported_only_for_lifetime_rules() -> None:
    result = evaluate(profile(ALLOWANCE, rule()), leg(0.0))

    assert [budget.rule for budget in result.budgets] == ["8-25 allowance"]
    assert result.budgets[0].remaining_min == 72 * 60.0


def test_stability_budget_refuses_a_rule_that_is_not_a_budget_or_negative_minutes() -> None:
    with pytest.raises(ValueError, match="is not a stability budget"):
        stability_budget(rule(), spent_before_min=0.0, spent_in_shipment_min=0.0)
    with pytest.raises(ValueError, match="spent_before_min must be"):
        stability_budget(ALLOWANCE, spent_before_min=-1.0, spent_in_shipment_min=0.0)
