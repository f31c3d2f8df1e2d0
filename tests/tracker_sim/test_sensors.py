from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tracker_sim.route import distance_km
from tracker_sim.sensors import (
    Battery,
    DeviceClock,
    GpsReceiver,
    OrnsteinUhlenbeck,
    ThermalMass,
    relative_humidity_pct,
    saturation_vapour_pressure_hpa,
    station_pressure_kpa,
)


def test_saturation_vapour_pressure_matches_the_magnus_reference_values() -> None:
    assert saturation_vapour_pressure_hpa(0.0) == pytest.approx(6.112)
    assert saturation_vapour_pressure_hpa(20.0) == pytest.approx(23.37, abs=0.05)


def test_warming_air_with_the_same_moisture_gets_drier() -> None:
    vapour_hpa = 0.6 * saturation_vapour_pressure_hpa(5.0)
    assert relative_humidity_pct(vapour_hpa, 5.0) == pytest.approx(60.0)
    assert relative_humidity_pct(vapour_hpa, 15.0) < 35.0
    assert relative_humidity_pct(vapour_hpa, -5.0) == 100.0


def test_station_pressure_follows_the_standard_atmosphere() -> None:
    assert station_pressure_kpa(101.325, 0) == pytest.approx(101.325)
    assert station_pressure_kpa(101.325, 1000) == pytest.approx(89.87, abs=0.05)
    assert station_pressure_kpa(101.325, 2438) == pytest.approx(75.3, abs=0.2)  # 8,000 ft cabin altitude


def test_a_load_covers_63_percent_of_the_way_to_its_surroundings_in_one_time_constant() -> None:
    load = ThermalMass(5.0)
    load.expose(25.0, tau_s=3600.0, dt_s=3600.0)
    assert load.temperature_c == pytest.approx(5.0 + 20.0 * (1 - math.exp(-1)))


def test_stepping_exposure_in_pieces_equals_one_step() -> None:
    whole, pieces = ThermalMass(5.0), ThermalMass(5.0)
    whole.expose(30.0, tau_s=900.0, dt_s=600.0)
    for _ in range(6):
        pieces.expose(30.0, tau_s=900.0, dt_s=100.0)
    assert pieces.temperature_c == pytest.approx(whole.temperature_c)


def test_a_wandering_quantity_is_reproducible_and_stays_near_its_mean() -> None:
    def walk(seed: int) -> list[float]:
        process = OrnsteinUhlenbeck(mean=101.3, sigma=0.8, tau_s=36 * 3600.0, rng=random.Random(seed))
        return [process.step(300.0) for _ in range(5000)]

    values = walk(1)
    assert values == walk(1)
    assert values != walk(2)
    assert all(97.0 < v < 105.6 for v in values)


def test_a_device_clock_20_ppm_fast_gains_1_7_seconds_a_day_and_keeps_its_time_zone() -> None:
    tz = timezone(timedelta(hours=1))
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    clock = DeviceClock(start=start, drift_ppm=20.0, offset_s=-1.0, tz=tz)
    shown = clock.read(start + timedelta(days=1))
    assert shown.utcoffset() == timedelta(hours=1)
    assert (shown - (start + timedelta(days=1))).total_seconds() == pytest.approx(1.728 - 1.0)


def test_gps_fixes_scatter_a_few_metres_around_the_truth() -> None:
    gps = GpsReceiver(rng=random.Random(3), sigma_m=4.0)
    errors_m = []
    for _ in range(500):
        lat, lon = gps.fix(60.17, 24.94, sky_visible=True)
        assert lat is not None
        assert lon is not None
        errors_m.append(distance_km((60.17, 24.94), (lat, lon)) * 1000)
    assert max(errors_m) < 25
    assert 2 < sum(errors_m) / len(errors_m) < 8


def test_no_sky_view_means_no_fix() -> None:
    gps = GpsReceiver(rng=random.Random(3))
    assert gps.fix(50.0, 8.0, sky_visible=False) == (None, None)


def test_random_gps_dropouts_happen_at_about_the_given_rate() -> None:
    gps = GpsReceiver(rng=random.Random(4), dropout_rate=0.1)
    misses = sum(gps.fix(50.0, 8.0, sky_visible=True)[0] is None for _ in range(4000))
    assert 300 < misses < 500


def test_a_battery_drains_faster_in_the_cold() -> None:
    warm, cold = Battery(100.0), Battery(100.0)
    for _ in range(24):
        warm.drain(3600.0, temperature_c=5.0, gps_fix=True)
        cold.drain(3600.0, temperature_c=-10.0, gps_fix=True)
    assert 100.0 > warm.level_pct > cold.level_pct > 98.0
