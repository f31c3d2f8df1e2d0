"""The lot budget timeline on its own, no database: where the summed spending of a lot's streams reaches the
allowance in device time, and what one shipment sees of it."""

from __future__ import annotations

import hypothesis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.domain.lot_budget import (
    Spending,
    crossing_stands,
    find_crossing,
    lot_alarm,
    shipment_budget,
    spent_by,
    surely_not_crossed,
)
from tests.domain.engine_support import T0, at, rule

BUDGET = rule(name="budget", mode="cumulative", scope="lifetime", delay_min=120.0, inclusive=False, action="reject")
START_S = T0.timestamp()


def spending(
    shipment_id: int, *runs: tuple[float, float], stream_id: int | None = None, unplaced: float = 0.0
) -> Spending:
    """Spending of the budget rule over (start, end) runs in minutes after T0, each held from reading seq 1."""
    return Spending(
        stream_id=shipment_id if stream_id is None else stream_id,
        shipment_id=shipment_id,
        rule="budget",
        intervals=tuple((START_S + a * 60, START_S + b * 60, 1) for a, b in runs),
        unplaced_min=unplaced,
    )


def test_the_budget_runs_out_where_the_summed_spending_reaches_the_allowance_in_device_time() -> None:
    first = spending(1, (0, 60))
    second = spending(2, (100, 200))

    crossing = find_crossing(BUDGET, [second, first])  # the order given does not matter

    assert crossing is not None
    assert (crossing.shipment_id, crossing.at, crossing.began_at) == (2, at(160), at(100))


def test_the_allowance_exactly_reached_at_the_end_of_a_run_runs_out_there() -> None:
    crossing = find_crossing(BUDGET, [spending(1, (0, 60)), spending(2, (300, 360))])

    assert crossing is not None and (crossing.shipment_id, crossing.at) == (2, at(360))


def test_spending_below_the_allowance_never_runs_it_out() -> None:
    assert find_crossing(BUDGET, [spending(1, (0, 60)), spending(2, (100, 159))]) is None
    assert find_crossing(BUDGET, []) is None


def test_two_streams_spending_at_once_count_twice_and_the_earlier_run_takes_the_crossing() -> None:
    early = spending(2, (0, 100))
    late = spending(1, (30, 100))

    crossing = find_crossing(BUDGET, [late, early])

    # 30 min alone, then 2 min per minute: 120 reached 45 min after minute 30.
    assert crossing is not None and (crossing.shipment_id, crossing.at) == (2, at(75))


def test_minutes_without_a_device_time_count_before_every_run() -> None:
    crossing = find_crossing(BUDGET, [spending(1, (500, 600), unplaced=100.0)])

    assert crossing is not None and crossing.at == at(520)


def test_an_allowance_spent_before_any_run_runs_out_at_the_first_spending() -> None:
    crossing = find_crossing(BUDGET, [spending(1, unplaced=200.0), spending(2, (50, 60))])

    assert crossing is not None and (crossing.shipment_id, crossing.at) == (2, at(50))


def test_what_was_spent_by_a_moment_counts_only_the_part_of_each_run_before_it() -> None:
    runs = [spending(1, (0, 60), unplaced=5.0), spending(2, (100, 200))]

    assert spent_by(runs, START_S + 150 * 60) == pytest.approx(5 + 60 + 50)
    assert spent_by(runs, START_S - 1) == pytest.approx(5)


def test_a_shipment_sees_the_lot_by_its_own_time_and_the_lots_total_apart() -> None:
    runs = [spending(1, (0, 60)), spending(2, (100, 200)), spending(3, (300, 350))]
    crossing = find_crossing(BUDGET, runs)

    first = shipment_budget(BUDGET, 1, runs, shipment_end=at(90), crossing=crossing)
    second = shipment_budget(BUDGET, 2, runs, shipment_end=at(250), crossing=crossing)

    assert (first.spent_before_min, first.spent_in_shipment_min, first.consumed_min) == (0.0, 60.0, 60.0)
    assert (first.exhausted, first.lot_spent_min, first.lot_exhausted_at) == (False, 210.0, at(160))
    assert (second.spent_before_min, second.consumed_min, second.overrun_min) == (60.0, 160.0, 40.0)
    assert second.exhausted


def test_a_shipment_without_readings_sees_only_what_has_no_device_time() -> None:
    runs = [spending(1, (0, 60), unplaced=10.0)]

    budget = shipment_budget(BUDGET, 2, runs, shipment_end=None, crossing=None)

    assert (budget.spent_before_min, budget.spent_in_shipment_min) == (10.0, 0.0)


def test_a_streams_spending_keeps_unplaced_only_what_its_intervals_do_not_account_for() -> None:
    intervals = [(START_S, START_S + 600.0, 1)]

    assert Spending.of(stream_id=1, shipment_id=1, rule="b", spent_min=10.0, intervals=intervals).unplaced_min == 0
    assert Spending.of(stream_id=1, shipment_id=1, rule="b", spent_min=25.0, intervals=intervals).unplaced_min == 15


def test_the_lot_alarm_carries_the_rule_and_the_crossing() -> None:
    crossing = find_crossing(BUDGET, [spending(1, (0, 200))])
    assert crossing is not None

    alarm = lot_alarm(BUDGET, crossing)

    assert (alarm.rule, alarm.scope, alarm.action, alarm.began_at, alarm.met_at) == (
        "budget",
        "lifetime",
        "reject",
        at(0),
        at(120),
    )


def test_two_trackers_spending_the_very_same_minutes_give_the_crossing_to_the_lower_shipment() -> None:
    crossing = find_crossing(BUDGET, [spending(2, (0, 100)), spending(1, (0, 100))])

    assert crossing is not None
    assert (crossing.rule, crossing.shipment_id, crossing.stream_id, crossing.at) == ("budget", 1, 1, at(60))


def test_of_two_runs_begun_together_the_lower_shipment_takes_the_crossing_whichever_ends_first() -> None:
    crossing = find_crossing(BUDGET, [spending(1, (0, 100), stream_id=5), spending(2, (0, 70), stream_id=3)])

    assert crossing is not None and (crossing.shipment_id, crossing.stream_id) == (1, 5)


def test_a_run_of_no_length_spends_nothing() -> None:
    assert find_crossing(BUDGET, [spending(1, (10, 10), (20, 20)), spending(2, (30, 149))]) is None


def test_rounding_below_a_millionth_of_a_minute_and_a_total_short_of_the_intervals_leave_nothing_unplaced() -> None:
    intervals = [(START_S, START_S + 600.0, 1)]

    short = Spending.of(stream_id=4, shipment_id=2, rule="b", spent_min=9.0, intervals=intervals)
    rounded = Spending.of(stream_id=4, shipment_id=2, rule="b", spent_min=10.0 + 1e-9, intervals=intervals)

    assert (short.stream_id, short.shipment_id, short.rule, short.unplaced_min) == (4, 2, "b", 0.0)
    assert rounded.unplaced_min == 0.0


@st.composite
def lot_spendings(draw: st.DrawFn) -> list[Spending]:
    """1-5 streams, each with a few runs (seconds apart or far, overlapping others or not) and unplaced minutes."""
    found = []
    for stream_id in range(draw(st.integers(min_value=1, max_value=5))):
        runs = []
        start = draw(st.floats(min_value=0.0, max_value=500.0))
        for _ in range(draw(st.integers(min_value=0, max_value=4))):
            length = draw(st.floats(min_value=0.0, max_value=80.0))
            runs.append((start, start + length))
            start += length + draw(st.floats(min_value=0.0, max_value=60.0))
        unplaced = draw(st.sampled_from([0.0, 0.0, 10.0, 119.5]))
        found.append(spending(stream_id % 3 + 1, *runs, stream_id=stream_id, unplaced=unplaced))
    return found


@given(spendings=lot_spendings())
def test_a_lot_surely_short_of_its_allowance_by_its_totals_has_no_crossing_on_its_timeline(
    spendings: list[Spending],
) -> None:
    total_min = sum(spending.total_min for spending in spendings)
    hypothesis.event(f"surely short: {surely_not_crossed(BUDGET, total_min)}")
    if surely_not_crossed(BUDGET, total_min):
        assert find_crossing(BUDGET, spendings) is None


def test_within_a_minute_of_the_allowance_the_totals_do_not_tell() -> None:
    assert surely_not_crossed(BUDGET, 118.9)
    assert not surely_not_crossed(BUDGET, 119.0)
    assert not surely_not_crossed(BUDGET, 120.0)


@st.composite
def later_spending(draw: st.DrawFn, before: Spending) -> Spending:
    """What a batch may make of one stream's spending: its last run grown, runs added after it, or (late readings
    re-judged) any runs from some point on replaced, in seconds or minutes, the unplaced minutes kept or not."""
    runs = [((start - START_S) / 60, (end - START_S) / 60) for start, end, _ in before.intervals]
    if draw(st.booleans()) and runs:
        start, end = runs.pop()
        runs.append((start, end + draw(st.floats(min_value=0.0, max_value=60.0))))
    if draw(st.booleans()):  # from some point on, the runs are judged again
        cut = draw(st.floats(min_value=0.0, max_value=600.0))
        runs = [(start, min(end, cut)) for start, end in runs if start < cut]
    start = max((end for _, end in runs), default=0.0) + draw(st.sampled_from([0.0, 1 / 120, 1 / 60, 1.0, 30.0]))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        length = draw(st.floats(min_value=0.0, max_value=80.0))
        runs.append((start, start + length))
        start += length + draw(st.floats(min_value=0.0, max_value=60.0))
    unplaced = before.unplaced_min if draw(st.booleans()) else draw(st.sampled_from([0.0, 5.0]))
    return spending(before.shipment_id, *runs, stream_id=before.stream_id, unplaced=unplaced)


@given(data=st.data(), spendings=lot_spendings())
def test_a_crossing_said_to_stand_is_where_sweeping_the_changed_lot_again_puts_it(
    data: st.DataObject, spendings: list[Spending]
) -> None:
    """The oracle is the sweep itself: whenever :func:`crossing_stands` spares it, sweeping the changed lot again
    finds the very same crossing (moment, stream, shipment and beginning, so the very same alarm)."""
    crossing = find_crossing(BUDGET, spendings)
    hypothesis.assume(crossing is not None)
    assert crossing is not None
    index = data.draw(st.integers(min_value=0, max_value=len(spendings) - 1))
    before = spendings[index]
    after = data.draw(later_spending(before))
    stands = crossing_stands(BUDGET, crossing.at, [(before, after)])
    hypothesis.event(f"stands: {stands}")
    if stands:
        changed = [*spendings[:index], after, *spendings[index + 1 :]]
        assert find_crossing(BUDGET, changed) == crossing


def test_spending_added_after_the_crossing_leaves_it_standing_and_spending_before_it_does_not() -> None:
    lot = [spending(1, (0, 60)), spending(2, (30, 100))]  # 120 min reached at minute 90, on stream 2
    crossing = find_crossing(BUDGET, lot)
    assert crossing is not None and (crossing.at, crossing.stream_id) == (at(90), 2)
    grown_later = spending(2, (30, 100), (200, 230))
    still_open = spending(2, (30, 110))  # the run spending at the crossing grew further past it
    grown_earlier = spending(1, (0, 60), (61, 62))
    regrown = spending(1, (0, 50))  # late readings shortened a run before the crossing
    assert crossing_stands(BUDGET, crossing.at, [(lot[1], grown_later)])
    assert crossing_stands(BUDGET, crossing.at, [(lot[1], still_open)])
    assert not crossing_stands(BUDGET, crossing.at, [(lot[0], grown_earlier)])
    assert not crossing_stands(BUDGET, crossing.at, [(lot[0], regrown)])
    assert not crossing_stands(BUDGET, crossing.at, [(lot[1], spending(2, (30, 100), unplaced=1.0))])
    other_rule = Spending(stream_id=1, shipment_id=1, rule="other", intervals=((START_S, START_S + 60, 1),))
    assert crossing_stands(BUDGET, crossing.at, [(other_rule, Spending(stream_id=1, shipment_id=1, rule="other"))])
