"""The engine against an independent oracle: on random logs, the incremental engine, the lot budget timeline and
the shipment judgement find what a naive evaluator (plain loops over complete logs, tests/reference_evaluator.py)
finds; and the engine's MKT equals :func:`coldchain.domain.mkt.mean_kinetic_temperature` on the same data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldchain.domain.evaluation import (
    Evaluation,
    advance,
    evaluate,
    new_state,
    stream_evaluation,
    stream_spendings,
)
from coldchain.domain.excursions import Excursion, classify_fault
from coldchain.domain.judgement import judge_shipment
from coldchain.domain.lot_budget import Spending
from coldchain.domain.mkt import mean_kinetic_temperature
from coldchain.domain.profiles import AlarmRule, MktSettings, Profile
from coldchain.domain.readings import Reading
from coldchain.domain.rules import Alarm
from tests.domain.engine_support import T0
from tests.reference_evaluator import Findings, reference_lot

PROFILE = Profile(
    id="oracle",
    name="every rule the oracle knows",
    label_range_c=(2.0, 8.0),
    max_gap_min=60.0,
    logging_interval_max_min=10.0,
    mkt=MktSettings(window="24h", limit_c=8.0),
    rules=(
        AlarmRule(name="above 25", direction="above", threshold=25.0, inclusive=False, mode="instant",
                  action="reject"),
        AlarmRule(name="heat", direction="above", threshold=8.0, inclusive=True, mode="consecutive",
                  delay_min=60, action="quarantine"),
        AlarmRule(name="warm at once", direction="above", threshold=14.0, inclusive=True, mode="consecutive",
                  delay_min=0, action="warn"),
        AlarmRule(name="heat total", direction="above", threshold=8.0, inclusive=False, mode="cumulative",
                  delay_min=120, action="quarantine"),
        AlarmRule(name="budget", direction="above", threshold=8.0, inclusive=False, mode="cumulative",
                  delay_min=180, scope="lifetime", action="reject"),
        AlarmRule(name="freeze", direction="below", threshold=-0.5, inclusive=True, mode="consecutive",
                  delay_min=30, action="reject"),
    ),
)  # fmt: skip

TEMPERATURES = [-1.0, -0.5, 3.0, 5.0, 8.0, 8.5, 9.0, 14.0, 26.0, None, math.nan, 150.0]
STEPS_MIN = [0, 1, 5, 10, 10, 10, 30, 60, 61, 120]


@st.composite
def logs(draw: st.DrawFn, *, start_min: int = 0, first_seq: int = 1, most: int = 40) -> list[Reading]:
    count = draw(st.integers(min_value=1, max_value=most))
    minutes = start_min
    log = []
    for seq in range(first_seq, first_seq + count):
        minutes += draw(st.sampled_from(STEPS_MIN))
        log.append(
            Reading(
                seq=seq,
                device_time=T0 + timedelta(minutes=minutes),
                temperature_c=draw(st.sampled_from(TEMPERATURES)),
            )
        )
    return log


def approx_list(values: Sequence[object]) -> list[object]:
    """Struct fields as tuples, with float fields compared to 1e-9."""
    return [
        tuple(pytest.approx(v, rel=1e-9, abs=1e-9) if isinstance(v, float) else v for v in _fields(item))
        for item in values
    ]


def _fields(item: object) -> tuple[object, ...]:
    return tuple(getattr(item, name) for name in item.__struct_fields__)  # type: ignore[attr-defined]


def assert_stream_matches(evaluation: Evaluation, found: Findings) -> None:
    order = lambda excursion: (excursion.start, excursion.start_seq, excursion.rule)  # noqa: E731
    assert _approx_equal(sorted(evaluation.excursions, key=order), sorted(found.excursions, key=order))
    assert evaluation.gaps == found.gaps
    assert evaluation.faults == sorted(found.faults, key=lambda f: (f.start, f.start_seq))
    if found.shipment_mkt_c is None:
        assert evaluation.mkt.shipment_mkt_c is None
    else:
        assert evaluation.mkt.shipment_mkt_c == pytest.approx(found.shipment_mkt_c, rel=1e-9)
    if found.window_mkt_c is None:
        assert not evaluation.mkt.window_complete
    else:
        assert evaluation.mkt.window_complete
        assert evaluation.mkt.window_mkt_c == pytest.approx(found.window_mkt_c, rel=1e-9)


def _approx_equal(left: Sequence[object], right: Sequence[object]) -> bool:
    return [_fields(item) for item in left] == approx_list(right)


def alarm_key(alarm: object) -> tuple[object, ...]:
    return (alarm.met_at, alarm.began_at, alarm.rule)  # type: ignore[attr-defined]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=logs())
def test_one_stream_judged_by_the_engine_equals_the_naive_reference(log: list[Reading]) -> None:
    evaluation = evaluate(PROFILE, log)

    lot = reference_lot(PROFILE, [[log]])
    (found,) = lot.streams[0]
    assert_stream_matches(evaluation, found)
    assert sorted(evaluation.alarms, key=alarm_key) == sorted(found.alarms + lot.lot_alarms[0], key=alarm_key)
    (budget,) = evaluation.budgets
    assert budget.spent_in_shipment_min == pytest.approx(lot.spent_in_shipment_min[0]["budget"])
    assert budget.consumed_min == pytest.approx(lot.consumed_min[0]["budget"])


@st.composite
def lots(draw: st.DrawFn) -> list[list[list[Reading]]]:
    """2-4 shipments of one lot, each watched by 1-3 trackers one after the other; shipments may overlap."""
    shipments = []
    for _ in range(draw(st.integers(min_value=2, max_value=4))):
        start = draw(st.integers(min_value=0, max_value=3000))
        streams = []
        for _ in range(draw(st.integers(min_value=1, max_value=3))):
            stream = draw(logs(start_min=start, most=15))
            streams.append(stream)
            start = int((stream[-1].device_time - T0).total_seconds() // 60) + 1
        shipments.append(streams)
    return shipments


def judge_lot_in_the_domain(
    shipments: list[list[list[Reading]]],
) -> tuple[list[list[Evaluation]], list[Evaluation]]:
    """Each stream advanced alone, then each shipment judged on the lot's timeline, as the service does: the
    streams' evaluations and the shipments'."""
    parts: list[list[Evaluation]] = []
    spendings: list[Spending] = []
    stream_id = 0
    for shipment_id, streams in enumerate(shipments):
        evaluations = []
        for log in streams:
            state, events = advance(PROFILE, new_state(PROFILE), sorted(log, key=lambda r: (r.device_time, r.seq)))
            # The service stores the events' excursions and alarms: those that left the state come from there.
            stored = [event for event in events if isinstance(event, Excursion | Alarm)]
            evaluations.append(stream_evaluation(PROFILE, state, stored=stored))
            spendings += stream_spendings(PROFILE, state, stream_id=stream_id, shipment_id=shipment_id)
            stream_id += 1
        parts.append(evaluations)
    judged = [
        judge_shipment(PROFILE, shipment_id=shipment_id, streams=evaluations, lot_spendings=spendings).evaluation
        for shipment_id, evaluations in enumerate(parts)
    ]
    return parts, judged


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shipments=lots())
def test_a_lot_judged_by_the_domain_equals_the_naive_reference_lot_budget_included(
    shipments: list[list[list[Reading]]],
) -> None:
    parts, judged = judge_lot_in_the_domain(shipments)

    lot = reference_lot(PROFILE, shipments)
    for number, evaluation in enumerate(judged):
        for part, found in zip(parts[number], lot.streams[number], strict=True):
            assert_stream_matches(part, found)
        lifetime = [alarm for alarm in evaluation.alarms if alarm.scope == "lifetime"]
        assert lifetime == lot.lot_alarms[number]
        (budget,) = evaluation.budgets
        assert budget.spent_in_shipment_min == pytest.approx(lot.spent_in_shipment_min[number]["budget"])
        assert budget.consumed_min == pytest.approx(lot.consumed_min[number]["budget"])
        assert budget.lot_spent_min == pytest.approx(lot.lot_spent_min["budget"])
    assert sum(len(alarms) for alarms in lot.lot_alarms) <= 1  # the budget runs out once, on one shipment


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=logs())
def test_the_engines_mkt_equals_the_mkt_function_on_the_same_data(log: list[Reading]) -> None:
    evaluation = evaluate(PROFILE, log)

    # The same data as the engine judges it: a value no sensor can read is a fault, credited nothing.
    judged_as = [
        msgspec.structs.replace(r, temperature_c=None) if classify_fault("temperature", r.temperature_c) else r
        for r in log
    ]
    ordered = sorted(judged_as, key=lambda r: (r.device_time, r.seq))
    try:
        expected: float | None = mean_kinetic_temperature(ordered, max_gap_min=PROFILE.gap_tolerance_min)
    except ValueError:  # no credited time
        expected = None
    if expected is None:
        assert evaluation.mkt.shipment_mkt_c is None
    else:
        assert evaluation.mkt.shipment_mkt_c == pytest.approx(expected, rel=1e-12)
