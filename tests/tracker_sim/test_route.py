from __future__ import annotations

import random

import pytest

from tracker_sim.route import SPEED_RANGE_KMH, Phase, Waypoint, distance_km, plan_trip

BERLIN = Waypoint(name="Berlin", latitude=52.5200, longitude=13.4050, dwell_min=30, door_open_min=10)
MUNICH = Waypoint(name="Munich", latitude=48.1351, longitude=11.5820, elevation_m=519, dwell_min=20)
HAMBURG = Waypoint(name="Hamburg", latitude=53.5511, longitude=9.9937)
FRA = Waypoint(name="FRA", latitude=50.0379, longitude=8.5622, elevation_m=111, dwell_min=60)
JFK = Waypoint(name="JFK", latitude=40.6413, longitude=-73.7781, elevation_m=4, mode="air")


def speed_kmh(phase: Phase) -> float:
    return (phase.end_km - phase.start_km) / ((phase.end_s - phase.start_s) / 3600)


def test_geodesic_distance_berlin_to_munich_is_about_504_km() -> None:
    assert distance_km((52.5200, 13.4050), (48.1351, 11.5820)) == pytest.approx(504, abs=3)


def test_the_same_generator_seed_gives_the_same_plan_and_another_seed_another() -> None:
    route = (BERLIN, HAMBURG, MUNICH)
    one = plan_trip(route, mode="road", rng=random.Random(7))
    same = plan_trip(route, mode="road", rng=random.Random(7))
    other = plan_trip(route, mode="road", rng=random.Random(8))
    assert one.phases == same.phases
    assert one.phases != other.phases


def test_phases_follow_each_other_without_gaps_and_cover_the_whole_route() -> None:
    plan = plan_trip((BERLIN, HAMBURG, MUNICH), mode="road", rng=random.Random(1))
    for before, after in zip(plan.phases, plan.phases[1:], strict=False):
        assert after.start_s == pytest.approx(before.end_s)
        assert after.start_km == pytest.approx(before.end_km)
    expected_km = distance_km((52.52, 13.405), (53.5511, 9.9937)) + distance_km((53.5511, 9.9937), (48.1351, 11.582))
    assert plan.phases[-1].end_km == pytest.approx(expected_km, rel=1e-3)
    assert plan.total_km == pytest.approx(expected_km, rel=1e-3)


def test_a_truck_drives_between_60_and_90_km_h_and_rests_45_minutes_after_4_5_hours() -> None:
    plan = plan_trip((BERLIN, HAMBURG, MUNICH), mode="road", rng=random.Random(3))
    moving = [p for p in plan.phases if p.kind == "moving"]
    assert all(60 <= speed_kmh(p) <= 90 for p in moving)
    driven_s = 0.0
    for phase in plan.phases:
        if phase.kind == "moving":
            driven_s += phase.end_s - phase.start_s
            assert driven_s <= 4.5 * 3600 + 1e-6
        elif phase.end_s - phase.start_s >= 45 * 60:
            driven_s = 0.0
    assert any(p.kind == "stopped" and p.end_s - p.start_s == 45 * 60 for p in plan.phases)


def test_a_flight_climbs_cruises_at_airliner_speed_and_descends() -> None:
    plan = plan_trip((FRA, JFK), mode="road", rng=random.Random(2))
    kinds = [p.kind for p in plan.phases]
    assert kinds == ["stopped", "climb", "cruise", "descent"]
    cruise = plan.phases[2]
    low, high = SPEED_RANGE_KMH["air"]
    assert low <= speed_kmh(cruise) <= high
    assert 6 * 3600 < plan.duration_s - 3600 < 9 * 3600
    ((take_off, landing),) = plan.airborne_windows()
    assert (take_off, landing) == (plan.phases[1].start_s, plan.phases[3].end_s)


def test_the_shipment_starts_at_the_origin_and_stays_at_the_destination_after_arrival() -> None:
    plan = plan_trip((BERLIN, MUNICH), mode="road", rng=random.Random(4))
    start, end = plan.at(0), plan.at(plan.duration_s + 3600)
    assert (start.latitude, start.longitude) == pytest.approx((52.52, 13.405))
    assert (end.latitude, end.longitude) == pytest.approx((48.1351, 11.582))
    assert end.kind == "arrived"
    assert end.elevation_m == pytest.approx(519)


def test_positions_along_the_route_are_as_far_from_the_origin_as_the_distance_travelled() -> None:
    plan = plan_trip((BERLIN, MUNICH), mode="road", rng=random.Random(5))
    for elapsed_s in range(0, int(plan.duration_s), 1800):
        here = plan.at(elapsed_s)
        straight = distance_km((52.52, 13.405), (here.latitude, here.longitude))
        assert straight == pytest.approx(here.distance_km, rel=1e-3, abs=0.05)


def test_a_leg_across_the_antimeridian_takes_the_short_way() -> None:
    west = Waypoint(latitude=10.0, longitude=179.0)
    east = Waypoint(latitude=10.0, longitude=-179.0)
    plan = plan_trip((west, east), mode="sea", rng=random.Random(6))
    assert plan.total_km == pytest.approx(219, abs=2)
    middle = plan.at(plan.duration_s / 2)
    assert abs(middle.longitude) > 179.0


def test_door_openings_happen_in_the_middle_of_the_dwell() -> None:
    plan = plan_trip((BERLIN, MUNICH), mode="road", rng=random.Random(1))
    ((start_s, end_s),) = plan.door_windows()
    assert (start_s, end_s) == (10 * 60, 20 * 60)
