from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from tracker_sim.network import Connectivity
from tracker_sim.route import SPEED_RANGE_KMH, distance_km
from tracker_sim.scenarios import BUILTIN_SCENARIOS, CompressorFailure, Scenario
from tracker_sim.trip import Sample, Trip, simulate_trip

SEEDS = (0, 1, 2)


def samples(name: str, seed: int) -> list[Sample]:
    return list(simulate_trip(BUILTIN_SCENARIOS[name], seed=seed))


def hours_in(sample: Sample, trip_start: datetime) -> float:
    return (sample.true_time - trip_start).total_seconds() / 3600


@pytest.mark.parametrize("name", sorted(BUILTIN_SCENARIOS))
def test_the_same_seed_gives_the_same_readings_and_another_seed_other_readings(name: str) -> None:
    first = [s.measurement for s in simulate_trip(BUILTIN_SCENARIOS[name], seed=11, count=60)]
    again = [s.measurement for s in simulate_trip(BUILTIN_SCENARIOS[name], seed=11, count=60)]
    other = [s.measurement for s in simulate_trip(BUILTIN_SCENARIOS[name], seed=12, count=60)]
    assert first == again
    assert first != other


PROBE_FAULT_C = -127.0


def test_a_probe_fault_reports_the_fault_code_for_its_window_and_leaves_the_load_alone() -> None:
    faulty = [s for s in samples("freeze", SEEDS[0]) if s.measurement.temperature_c == PROBE_FAULT_C]
    assert len(faulty) == 4  # 20 minutes at a 5-minute interval
    assert all(-10 < s.load_c < 10 for s in faulty)


@pytest.mark.parametrize("name", sorted(BUILTIN_SCENARIOS))
def test_every_reading_is_physically_plausible(name: str) -> None:
    for seed in SEEDS:
        battery = 100.0
        for sample in samples(name, seed):
            m = sample.measurement
            assert m.temperature_c is not None
            if m.temperature_c != PROBE_FAULT_C:
                assert -40 < m.temperature_c < 45
            assert m.humidity_pct is not None
            assert 0 <= m.humidity_pct <= 100
            assert m.pressure_kpa is not None
            assert 74 < m.pressure_kpa < 106
            assert m.battery_pct is not None
            assert 0 < m.battery_pct <= battery
            battery = m.battery_pct
            assert (m.latitude is None) == (m.longitude is None)
            if m.latitude is not None and m.longitude is not None:
                true = (sample.position.latitude, sample.position.longitude)
                assert distance_km(true, (m.latitude, m.longitude)) < 0.05


def test_a_working_reefer_on_the_road_keeps_the_load_between_2_and_8_c() -> None:
    for seed in SEEDS:
        temperatures = [s.measurement.temperature_c for s in samples("reefer-road", seed)]
        assert all(t is not None and 2.0 <= t <= 8.0 for t in temperatures)


def test_the_compressor_failure_scenario_warms_the_load_above_8_c_and_recovers() -> None:
    scenario = BUILTIN_SCENARIOS["compressor-failure"]
    (failure,) = (e for e in scenario.events if isinstance(e, CompressorFailure))
    for seed in SEEDS:
        trip = Trip(scenario, seed=seed)
        readings = list(trip.samples())
        before = [s.measurement.temperature_c for s in readings if hours_in(s, trip.start) < failure.at_h]
        during = [
            s.measurement.temperature_c
            for s in readings
            if failure.at_h <= hours_in(s, trip.start) <= failure.at_h + failure.duration_h
        ]
        assert all(t is not None and 2.0 <= t <= 8.0 for t in before)
        assert max(t for t in during if t is not None) > 12.0
        last_hour = [s.measurement.temperature_c for s in readings if s.true_time > trip.end - timedelta(hours=1)]
        assert all(t is not None and 2.0 <= t <= 8.0 for t in last_hour)


def test_the_freeze_scenario_takes_the_load_below_zero() -> None:
    for seed in SEEDS:
        temperatures = [s.measurement.temperature_c for s in samples("freeze", seed)]
        assert min(t for t in temperatures if t is not None) < -3.0


def test_cabin_pressure_in_flight_is_75_to_81_kpa_against_about_100_on_the_ground() -> None:
    for seed in SEEDS:
        readings = samples("air-freight", seed)
        cruise = [s.measurement.pressure_kpa for s in readings if s.position.kind == "cruise"]
        ground = [s.measurement.pressure_kpa for s in readings if not s.airborne]
        assert len(cruise) > 50
        assert all(p is not None and 75.0 <= p <= 81.2 for p in cruise)
        assert all(p is not None and 96.0 <= p <= 104.0 for p in ground)


def test_gps_is_silent_in_the_aircraft_hold() -> None:
    readings = samples("air-freight", 0)
    airborne = [s for s in readings if s.airborne]
    assert airborne
    assert all(s.measurement.latitude is None and s.measurement.longitude is None for s in airborne)


def test_a_tunnel_gives_readings_without_a_position() -> None:
    trip = Trip(BUILTIN_SCENARIOS["reefer-road"], seed=0)
    in_tunnel = [s for s in trip.samples() if 3.2 <= hours_in(s, trip.start) < 3.3]
    assert in_tunnel
    for sample in in_tunnel:
        assert sample.measurement.latitude is None
        assert sample.measurement.longitude is None
        assert sample.measurement.temperature_c is not None


def test_road_speeds_measured_between_gps_fixes_are_those_of_a_truck() -> None:
    low, high = SPEED_RANGE_KMH["road"]
    for seed in SEEDS:
        readings = samples("reefer-road", seed)
        moved_km = hours = 0.0
        for a, b in itertools.pairwise(readings):
            ma, mb = a.measurement, b.measurement
            if ma.latitude is None or ma.longitude is None or mb.latitude is None or mb.longitude is None:
                continue
            km = distance_km((ma.latitude, ma.longitude), (mb.latitude, mb.longitude))
            h = (b.true_time - a.true_time).total_seconds() / 3600
            assert km / h <= high + 2  # a few metres of GPS scatter on top
            if a.position.kind == b.position.kind == "moving":
                moved_km, hours = moved_km + km, hours + h
        assert low <= moved_km / hours <= high


def test_air_speeds_measured_between_fixes_are_those_of_an_airliner_when_gps_works_airborne() -> None:
    scenario = msgspec.structs.replace(BUILTIN_SCENARIOS["air-freight"], gps_in_flight=True)
    low, high = SPEED_RANGE_KMH["air"]
    cruising = [s for s in simulate_trip(scenario, seed=4) if s.position.kind == "cruise"]
    speeds = []
    for a, b in itertools.pairwise(cruising):
        ma, mb = a.measurement, b.measurement
        if None in (ma.latitude, ma.longitude, mb.latitude, mb.longitude):
            continue
        assert ma.latitude is not None
        assert ma.longitude is not None
        assert mb.latitude is not None
        assert mb.longitude is not None
        km = distance_km((ma.latitude, ma.longitude), (mb.latitude, mb.longitude))
        speeds.append(km / ((b.true_time - a.true_time).total_seconds() / 3600))
    assert len(speeds) > 50
    assert all(low * 0.99 <= v <= high * 1.01 for v in speeds)


def test_the_device_clock_drifts_by_its_ppm_and_keeps_the_scenario_offset() -> None:
    scenario = BUILTIN_SCENARIOS["air-freight"]  # -35 ppm, set 2 s ahead
    trip = Trip(scenario, seed=0)
    readings = list(trip.samples())
    for sample in (readings[0], readings[-1]):
        elapsed_s = (sample.true_time - trip.start).total_seconds()
        error_s = (sample.measurement.device_time - sample.true_time).total_seconds()
        assert error_s == pytest.approx(2.0 - 35e-6 * elapsed_s, abs=1e-5)
        assert sample.measurement.device_time.utcoffset() == timedelta(hours=1)


def test_a_trip_moved_in_time_keeps_its_devices_utc_offset() -> None:
    start = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)
    first = next(simulate_trip(BUILTIN_SCENARIOS["multi-day-offline"], seed=0, start=start))
    assert first.true_time == start
    assert first.measurement.device_time.utcoffset() == timedelta(hours=3)


def test_readings_come_at_the_logging_interval_for_the_whole_trip() -> None:
    trip = Trip(BUILTIN_SCENARIOS["reefer-road"], seed=1)
    readings = list(trip.samples())
    assert len(readings) == trip.sample_count
    steps = {b.true_time - a.true_time for a, b in itertools.pairwise(readings)}
    assert steps == {timedelta(minutes=5)}
    assert readings[-1].true_time <= trip.end < readings[-1].true_time + timedelta(minutes=5)


def test_asking_for_more_readings_than_the_trip_has_keeps_logging_at_the_destination() -> None:
    trip = Trip(BUILTIN_SCENARIOS["compressor-failure"], seed=0)
    readings = list(trip.samples(trip.sample_count + 100))
    assert len(readings) == trip.sample_count + 100
    assert {s.position.kind for s in readings[-100:]} == {"arrived"}


def test_the_multi_day_offline_scenario_has_two_days_without_coverage_inside_the_trip() -> None:
    scenario = BUILTIN_SCENARIOS["multi-day-offline"]
    trip = Trip(scenario, seed=0)
    link = Connectivity(scenario.network, start=trip.start, seed=0)
    ((offline_from, back_at),) = link.offline_windows
    assert back_at - offline_from >= timedelta(days=2)
    assert trip.start < offline_from < back_at < trip.end
    assert not link.is_online(offline_from + timedelta(days=1))


def test_a_passive_box_holds_its_temperature_only_as_long_as_its_phase_change_material_lasts() -> None:
    base = BUILTIN_SCENARIOS["air-freight"]
    hot = msgspec.structs.replace(
        base, name="hot-box", ambient_c=30.0, ambient_swing_c=0.0, passive_hold_h=4.0, duration_h=20.0
    )
    temperatures = [s.measurement.temperature_c or 0.0 for s in simulate_trip(hot, seed=0)]
    assert max(temperatures[: 12 * 3]) < 7.0  # the first three hours, 25 °C above the setpoint
    assert temperatures[-1] > 20.0


def test_a_scenario_with_a_naive_start_is_refused() -> None:
    naive = Scenario(
        name="naive",
        route=BUILTIN_SCENARIOS["freeze"].route,
        start=datetime(2026, 1, 1, 8, 0),  # noqa: DTZ001
    )
    with pytest.raises(ValueError, match="aware"):
        Trip(naive, seed=0)
