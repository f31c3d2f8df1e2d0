"""Disposition: release, quarantine or reject, always with the reasons."""

from __future__ import annotations

from datetime import timedelta, timezone

import msgspec

from coldchain.domain.disposition import recommend_disposition
from coldchain.domain.evaluation import evaluate
from coldchain.domain.profiles import MktSettings
from coldchain.domain.quarantine import QuarantineFault
from tests.domain.engine_support import at, profile, readings, rule, shared_profile

HEAT = rule(mode="consecutive", delay_min=60.0, action="quarantine")
FREEZE = rule(name="freeze", direction="below", threshold=0.0, mode="instant", delay_min=0.0, action="reject")
HUMID = rule(name="humid", metric="humidity", threshold=75.0, inclusive=False, delay_min=20.0, action="warn")


def every_ten_minutes(*temperatures: float | None) -> list[tuple[float, float | None]]:
    return [(10.0 * index, temperature) for index, temperature in enumerate(temperatures)]


def test_a_clean_shipment_is_released_without_reasons() -> None:
    result = evaluate(profile(HEAT, FREEZE), readings(every_ten_minutes(5, 5, 6, 5)))

    disposition = recommend_disposition(result)

    assert (disposition.recommendation, disposition.reasons) == ("release", [])


def test_an_alarm_calls_for_its_rule_action_and_the_strictest_reason_comes_first() -> None:
    result = evaluate(profile(HEAT, FREEZE), readings(every_ten_minutes(9, 9, 9, 9, 9, 9, 9, -1, 5)))

    disposition = recommend_disposition(result)

    assert disposition.recommendation == "reject"
    assert [(r.calls_for, r.code, r.rule) for r in disposition.reasons] == [
        ("reject", "alarm", "freeze"),
        ("quarantine", "alarm", "heat"),
    ]


def test_a_warning_alarm_and_an_allowed_excursion_release_with_their_reasons_recorded() -> None:
    log = [
        msgspec.structs.replace(reading, humidity_pct=80.0 if reading.seq < 5 else 50.0)
        for reading in readings(every_ten_minutes(9, 9, 5, 5, 5))
    ]

    disposition = recommend_disposition(evaluate(profile(HEAT, HUMID), log))

    assert disposition.recommendation == "release"
    assert sorted((r.code, r.rule) for r in disposition.reasons) == [("excursion", "heat"), ("warning", "humid")]


def test_a_failed_mkt_quarantines_a_shipment_that_stayed_within_its_budget() -> None:
    """REFERENCE §4: budget fine, 24 h MKT 8.29 °C above the 8 °C criterion."""
    hourly = [(60.0 * hour, 14.0 if 18 <= hour < 24 else 5.0) for hour in range(25)]
    cct = msgspec.structs.replace(shared_profile("usp-cct"), max_gap_min=90.0)

    disposition = recommend_disposition(evaluate(cct, readings(hourly)))

    assert disposition.recommendation == "quarantine"
    (reason,) = disposition.reasons
    assert reason.code == "mkt_above_limit"
    assert "8.29 °C" in reason.message


def test_gaps_faults_open_excursions_and_no_data_quarantine() -> None:
    gap = evaluate(profile(HEAT), readings([(0, 5.0), (10, 5.0), (200, 5.0)]))
    fault = evaluate(profile(HEAT), readings(every_ten_minutes(5, None, 5)))
    still_warm = evaluate(profile(HEAT), readings(every_ten_minutes(5, 9, 9)))
    nothing = evaluate(profile(HEAT), [])

    for result, code in [(gap, "data_gap"), (fault, "sensor_fault"), (still_warm, "open_excursion")]:
        disposition = recommend_disposition(result)
        assert disposition.recommendation == "quarantine"
        assert [reason.code for reason in disposition.reasons] == [code]
    assert recommend_disposition(nothing).reasons[0].code == "no_data"
    assert recommend_disposition(nothing).recommendation == "quarantine"


def test_an_mkt_within_its_limit_gives_no_reason() -> None:
    rules = profile(HEAT, mkt=MktSettings(window="shipment", limit_c=8.0))

    disposition = recommend_disposition(evaluate(rules, readings(every_ten_minutes(5, 6, 7))))

    assert disposition.recommendation == "release"


def test_times_in_the_reasons_are_written_in_utc_with_their_date_whatever_zone_they_came_in() -> None:
    result = evaluate(profile(HEAT, FREEZE), readings(every_ten_minutes(9, 9, 9, 9, 9, 9, 9, -1, 5)))
    berlin = timezone(timedelta(hours=1))
    fault = QuarantineFault(
        kind="temperature_c not a number", first_at=at(5).astimezone(berlin), last_at=at(95), readings=3
    )

    reasons = {
        reason.code + ":" + (reason.rule or ""): reason.message
        for reason in recommend_disposition(result, quarantined=[fault]).reasons
    }

    assert reasons["alarm:freeze"].endswith("met at 2025-03-01 01:10 UTC")
    assert reasons["alarm:heat"].endswith("met at 2025-03-01 01:00 UTC")
    assert reasons["quarantined_readings:"] == (
        "3 reading(s) quarantined at ingest (temperature_c not a number) from 2025-03-01 00:05 UTC to"
        " 2025-03-01 01:35 UTC"
    )
