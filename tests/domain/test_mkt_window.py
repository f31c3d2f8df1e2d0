"""MKT over a window the data does not fully cover (USP <1079.2>: 24 consecutive hours including the excursion).

The default ``incomplete_window="bound"`` judges the full window with the unrecorded time at the label range's
ends: fail only if even the best case fails, pass if even the worst case passes, otherwise review. The verdict
says what it rests on, and no message claims a window the data does not cover.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from coldchain.domain.disposition import recommend_disposition
from coldchain.domain.evaluation import evaluate
from coldchain.domain.mkt import mean_kinetic_temperature
from coldchain.domain.profiles import MktSettings, Profile
from coldchain.domain.readings import Reading
from tests.domain.engine_support import readings


def cold_chain(*, incomplete_window: str = "bound", interval_min: float = 10.0) -> Profile:
    return Profile(
        id="cct",
        name="2-8 °C, MKT 8 °C over 24 h",
        label_range_c=(2.0, 8.0),
        logging_interval_max_min=interval_min,
        mkt=MktSettings(window="24h", limit_c=8.0, incomplete_window=incomplete_window),  # type: ignore[arg-type]
    )


def every(step_min: float, *temperatures: float) -> list[tuple[float, float | None]]:
    return [(index * step_min, temperature) for index, temperature in enumerate(temperatures)]


NINE_HOURS_WARM = every(10.0, *([9.6] * 55))  # 540 min credited at 9.6 °C


def test_nine_hours_above_the_limit_are_not_judged_as_a_full_day_but_sent_for_review() -> None:
    result = evaluate(cold_chain(), readings(NINE_HOURS_WARM))

    mkt = result.mkt
    assert not mkt.window_complete
    assert mkt.covered_min == 540.0
    assert mkt.coverage == pytest.approx(540 / 1440)
    assert mkt.window_mkt_c == pytest.approx(9.6)  # over the data covered
    assert mkt.best_case_mkt_c is not None and mkt.worst_case_mkt_c is not None
    assert mkt.best_case_mkt_c < 8.0 < mkt.worst_case_mkt_c
    assert (mkt.verdict, mkt.rests_on, mkt.passes) == ("review", "bounds", None)


def test_the_review_message_names_the_hours_covered_and_never_claims_the_whole_window() -> None:
    disposition = recommend_disposition(evaluate(cold_chain(), readings(NINE_HOURS_WARM)))

    (reason,) = [r for r in disposition.reasons if r.code.startswith("mkt")]
    assert reason.code == "mkt_review"
    assert reason.calls_for == "quarantine"
    assert "over window 24h" not in reason.message
    assert "9.0 h" in reason.message and "38 %" in reason.message


def test_an_incomplete_window_fails_when_even_the_best_case_fails() -> None:
    hot = every(10.0, *([30.0] * 55))  # 9 h at 30 °C: 15 h at 2 °C cannot bring a day's MKT under 8 °C

    result = evaluate(cold_chain(), readings(hot))

    assert result.mkt.best_case_mkt_c is not None and result.mkt.best_case_mkt_c > 8.0
    assert (result.mkt.verdict, result.mkt.passes) == ("fail", False)
    (reason,) = [r for r in recommend_disposition(result).reasons if r.code.startswith("mkt")]
    assert reason.code == "mkt_above_limit"
    assert "at least" in reason.message and "24h" not in reason.message.split("at least")[0]


def test_an_incomplete_window_passes_when_even_the_worst_case_passes() -> None:
    cool = every(10.0, *([4.0] * 55))

    result = evaluate(cold_chain(), readings(cool))

    assert result.mkt.worst_case_mkt_c is not None and result.mkt.worst_case_mkt_c <= 8.0
    assert (result.mkt.verdict, result.mkt.passes) == ("pass", True)


def test_a_full_day_at_one_reading_a_minute_is_a_complete_window() -> None:
    day = every(1.0, *([9.0] * 1440))  # 00:00 to 23:59: 1439 min credited, short of 24 h by one interval

    result = evaluate(cold_chain(interval_min=1.0), readings(day))

    assert result.mkt.window_complete
    assert (result.mkt.verdict, result.mkt.rests_on, result.mkt.passes) == ("fail", "complete_window", False)
    assert result.mkt.window_mkt_c == pytest.approx(9.0)
    (reason,) = [r for r in recommend_disposition(result).reasons if r.code.startswith("mkt")]
    assert "24h" in reason.message or "24 h" in reason.message


def test_a_day_short_by_more_than_one_interval_is_not_complete() -> None:
    short = every(1.0, *([9.0] * 1438))  # 1437 min: short of 24 h by three readings

    assert not evaluate(cold_chain(interval_min=1.0), readings(short)).mkt.window_complete


def test_the_covered_setting_judges_the_data_covered_and_says_so() -> None:
    result = evaluate(cold_chain(incomplete_window="covered"), readings(NINE_HOURS_WARM))

    assert (result.mkt.verdict, result.mkt.rests_on, result.mkt.passes) == ("fail", "covered_data", False)
    (reason,) = [r for r in recommend_disposition(result).reasons if r.code.startswith("mkt")]
    assert "9.0 h" in reason.message and "over window 24h" not in reason.message


def test_the_bounds_are_the_mkt_of_the_window_with_the_unrecorded_time_at_the_label_ends() -> None:
    result = evaluate(cold_chain(), readings(NINE_HOURS_WARM))

    covered = readings(NINE_HOURS_WARM)  # the last reading, at minute 540, holds nothing yet
    last = covered[-1]
    unrecorded_at_low_end = Reading(seq=last.seq + 1, device_time=last.device_time, temperature_c=2.0)
    best = mean_kinetic_temperature(
        [*covered, unrecorded_at_low_end], max_gap_min=1440.0, until=last.device_time + timedelta(minutes=900)
    )
    assert result.mkt.best_case_mkt_c == pytest.approx(best, abs=1e-9)
    assert math.isfinite(result.mkt.worst_case_mkt_c or math.nan)
