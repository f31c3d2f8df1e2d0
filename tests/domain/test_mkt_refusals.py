"""What MKT refuses, and says why: an activation energy that is not positive, no credited time, an end before
the last reading."""

from __future__ import annotations

import math

import pytest

from coldchain.domain.mkt import (
    dh_over_r_k,
    mean_kinetic_temperature,
    mean_kinetic_temperature_equal_intervals,
    mkt_from_sums,
)
from tests.domain.engine_support import at, readings


@pytest.mark.parametrize("energy", [0.0, -83.144, math.nan, math.inf])
def test_an_activation_energy_that_is_not_a_positive_number_is_refused(energy: float) -> None:
    with pytest.raises(ValueError, match=r"activation energy must be > 0 kJ/mol, got"):
        dh_over_r_k(energy)


def test_a_small_positive_activation_energy_is_a_valid_one() -> None:
    assert dh_over_r_k(0.5) == pytest.approx(500.0 / 8.3144)


def test_mkt_from_no_weight_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^MKT needs a positive total weight$"):
        mkt_from_sums(0.0, 0.0, 10_000.0)


def test_mkt_of_no_temperatures_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^MKT of no temperatures$"):
        mean_kinetic_temperature_equal_intervals([])


def test_an_end_before_the_last_reading_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^until is before the last reading$"):
        mean_kinetic_temperature(readings([(0, 5.0), (10, 5.0)]), max_gap_min=60.0, until=at(5))


def test_a_record_with_no_credited_time_is_refused_and_says_so() -> None:
    with pytest.raises(ValueError, match=r"^MKT needs at least two readings with credited time between them$"):
        mean_kinetic_temperature(readings([(0, 5.0)]), max_gap_min=60.0)
