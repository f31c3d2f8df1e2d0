from __future__ import annotations

import json
import math
from typing import Any

import pytest

from coldchain.domain.mkt import (
    dh_over_r_k,
    mean_kinetic_temperature,
    mean_kinetic_temperature_equal_intervals,
)
from tests.domain.engine_support import FIXTURES, at, readings

VECTORS: dict[str, Any] = json.loads((FIXTURES / "domain" / "mkt_vectors.json").read_text())


def test_the_default_activation_energy_gives_ten_thousand_kelvin() -> None:
    assert dh_over_r_k() == pytest.approx(10_000.0, abs=1e-9)
    assert dh_over_r_k(83.0) == pytest.approx(9982.68, abs=0.01)


@pytest.mark.parametrize("vector", VECTORS["equal_interval"], ids=lambda vector: vector["case"])
def test_every_equal_interval_reference_vector_is_reproduced_to_two_decimals(vector: dict[str, Any]) -> None:
    temperatures = [float(run["celsius"]) for run in vector["readings_runs"] for _ in range(run["count"])]

    assert round(mean_kinetic_temperature_equal_intervals(temperatures), 2) == vector["mkt_c"]


@pytest.mark.parametrize("vector", VECTORS["equal_interval"], ids=lambda vector: vector["case"])
def test_duration_weighting_of_hourly_readings_gives_the_equal_interval_value(vector: dict[str, Any]) -> None:
    temperatures = [float(run["celsius"]) for run in vector["readings_runs"] for _ in range(run["count"])]
    # Each reading holds for its hour: the record closes one hour after the last reading.
    log = readings((60.0 * hour, temperature) for hour, temperature in enumerate(temperatures))

    mkt_c = mean_kinetic_temperature(log, max_gap_min=60, until=at(60.0 * len(temperatures)))

    assert round(mkt_c, 2) == vector["mkt_c"]


def test_the_usp_worked_example_is_6_25() -> None:
    assert round(mean_kinetic_temperature_equal_intervals([2, 2, 5, 8, 8, 8, 8]), 2) == 6.25


def test_uneven_intervals_credit_each_reading_until_the_next_one_left_rectangle() -> None:
    uneven = VECTORS["uneven_interval"]
    log = readings((60.0 * hour, float(c)) for hour, c in zip(uneven["hours"], uneven["celsius"], strict=True))

    mkt_c = mean_kinetic_temperature(log, max_gap_min=240)

    assert round(mkt_c, 2) == uneven["left_rectangle_c"] == 9.37
    assert round(mkt_c, 2) != uneven["trapezoid_c"]
    assert round(mean_kinetic_temperature_equal_intervals(uneven["celsius"]), 2) == uneven["unweighted_c"]


def test_time_across_a_data_gap_is_never_credited() -> None:
    # 5 °C for an hour, then a reading at 25 °C followed by a 3 h silence, then 5 °C again.
    log = readings([(0, 5.0), (60, 25.0), (240, 5.0), (300, 5.0)])

    assert mean_kinetic_temperature(log, max_gap_min=60) == pytest.approx(5.0)
    assert mean_kinetic_temperature(log, max_gap_min=180) > 20.0


def test_a_reading_without_a_valid_temperature_credits_nothing() -> None:
    log = readings([(0, 5.0), (60, None), (120, float("nan")), (180, 5.0), (240, 5.0)])

    assert mean_kinetic_temperature(log, max_gap_min=60) == pytest.approx(5.0)


def test_activation_energy_is_a_setting_that_changes_the_result() -> None:
    temperatures = [4.0, 4.0, 4.0, 25.0]

    default_c = mean_kinetic_temperature_equal_intervals(temperatures)
    qtag_c = mean_kinetic_temperature_equal_intervals(temperatures, activation_energy_kj_mol=83.0)

    assert round(default_c, 2) == 14.92
    assert qtag_c != default_c
    assert math.isclose(qtag_c, default_c, abs_tol=0.05)


def test_mkt_refuses_an_empty_record_and_readings_out_of_order() -> None:
    with pytest.raises(ValueError, match="MKT of no temperatures"):
        mean_kinetic_temperature_equal_intervals([])
    with pytest.raises(ValueError, match="at least two readings"):
        mean_kinetic_temperature(readings([(0, 5.0)]), max_gap_min=60)
    with pytest.raises(ValueError, match="out of device time order"):
        mean_kinetic_temperature(readings([(10, 5.0), (0, 5.0)]), max_gap_min=60)
    with pytest.raises(ValueError, match="not a temperature"):
        mean_kinetic_temperature_equal_intervals([float("inf")])


def test_an_interval_just_longer_than_the_gap_limit_is_credited_to_nobody() -> None:
    log = readings([(0.0, 5.0), (60.5, 20.0), (70.5, 20.0)])

    assert mean_kinetic_temperature(log, max_gap_min=60.0) == pytest.approx(20.0)
    assert mean_kinetic_temperature(log, max_gap_min=61.0) < 10.0


def test_a_reading_without_a_temperature_credits_nothing_to_the_time_after_it() -> None:
    log = readings([(0.0, 5.0), (10.0, None), (20.0, 20.0), (30.0, 20.0)])

    # 0-10 min at 5 °C, 10-20 credited to nobody, 20-30 at 20 °C: the same as 10 minutes of each.
    same = readings([(0.0, 5.0), (10.0, 20.0), (20.0, 20.0)])
    assert mean_kinetic_temperature(log, max_gap_min=60.0) == pytest.approx(
        mean_kinetic_temperature(same, max_gap_min=60.0)
    )


def test_until_at_the_last_reading_or_half_a_second_after_it_closes_the_record_and_less_than_a_minute_counts() -> None:
    log = readings([(0.0, 5.0), (0.5, 9.0)])

    assert mean_kinetic_temperature(log, max_gap_min=60.0) == pytest.approx(5.0)
    assert mean_kinetic_temperature(log, max_gap_min=60.0, until=at(0.5)) == pytest.approx(5.0)
    half_second_more = mean_kinetic_temperature(log, max_gap_min=60.0, until=at(0.5 + 1 / 120))
    assert 5.0 < half_second_more < 9.0
