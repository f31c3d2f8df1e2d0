"""Geodesic distances, progress along a planned route, geofences."""

from __future__ import annotations

import math
from itertools import pairwise

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.domain.geo import Point, distance_m, remaining_route_m, route_length_m, within_m

#: WGS-84: the equator is a geodesic, so one degree of longitude along it is exactly a·π/180.
ONE_DEGREE_OF_EQUATOR_M = 6_378_137.0 * math.pi / 180.0


def p(lat: float, lon: float) -> Point:
    return Point(lat=lat, lon=lon)


@pytest.mark.parametrize(("lat", "lon"), [(90.5, 0.0), (-91.0, 0.0), (0.0, 180.5), (0.0, -181.0), (math.nan, 0.0)])
def test_a_point_outside_the_globe_is_refused(lat: float, lon: float) -> None:
    with pytest.raises(ValueError, match="itude must be within"):
        Point(lat=lat, lon=lon)


def test_a_point_decoded_from_the_wire_is_bounded_by_its_annotated_types() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"lat": 95, "lon": 0}', type=Point)


def test_one_degree_along_the_equator_is_the_wgs84_value() -> None:
    assert distance_m(p(0, 0), p(0, 1)) == pytest.approx(ONE_DEGREE_OF_EQUATOR_M, abs=1e-3)


def test_one_degree_of_latitude_at_the_equator_is_shorter_than_one_of_longitude() -> None:
    # The meridian degree at the equator on WGS-84 is 110 574.4 m (flattening shortens it).
    assert distance_m(p(0, 0), p(1, 0)) == pytest.approx(110_574.4, abs=1.0)


def test_distance_across_the_antimeridian_is_the_short_way() -> None:
    assert distance_m(p(0, 179.9), p(0, -179.9)) == pytest.approx(0.2 * ONE_DEGREE_OF_EQUATOR_M, abs=1e-3)


def test_a_route_is_as_long_as_its_segments_and_a_lone_point_has_no_length() -> None:
    route = [p(0, 0), p(0, 1), p(0, 3)]
    assert route_length_m(route) == pytest.approx(3 * ONE_DEGREE_OF_EQUATOR_M, abs=1e-3)
    assert route_length_m([p(0, 0)]) == 0.0
    assert route_length_m([]) == 0.0


def test_a_geofence_includes_its_rim_and_nothing_beyond() -> None:
    centre = p(0, 0)
    edge = p(0, 0.01)
    radius_m = distance_m(centre, edge)
    assert within_m(edge, centre, radius_m)
    assert not within_m(edge, centre, radius_m - 0.01)
    with pytest.raises(ValueError, match="radius_m"):
        within_m(edge, centre, -1.0)


# An L-shaped route: east along the equator for one degree, then north along the meridian 1° E.
L_ROUTE = [p(0, 0), p(0, 1), p(1, 1)]


def test_a_position_beside_the_second_leg_projects_onto_it() -> None:
    progress = remaining_route_m(p(0.5, 1.01), L_ROUTE)
    assert progress.segment == 1
    assert progress.nearest.lat == pytest.approx(0.5)
    assert progress.nearest.lon == pytest.approx(1.0)
    assert progress.remaining_m == pytest.approx(distance_m(p(0.5, 1), p(1, 1)), abs=0.01)
    assert progress.off_route_m == pytest.approx(distance_m(p(0.5, 1.01), p(0.5, 1)), abs=0.01)


def test_a_position_beside_the_first_leg_counts_the_whole_second_leg() -> None:
    progress = remaining_route_m(p(-0.02, 0.25), L_ROUTE)
    assert progress.segment == 0
    expected = distance_m(p(0, 0.25), p(0, 1)) + distance_m(p(0, 1), p(1, 1))
    assert progress.remaining_m == pytest.approx(expected, abs=0.01)
    assert progress.off_route_m == pytest.approx(distance_m(p(-0.02, 0.25), p(0, 0.25)), abs=0.01)


def test_a_position_before_the_origin_has_the_whole_route_ahead() -> None:
    progress = remaining_route_m(p(0, -0.5), L_ROUTE)
    assert progress.remaining_m == pytest.approx(route_length_m(L_ROUTE), abs=0.01)
    assert progress.off_route_m == pytest.approx(distance_m(p(0, -0.5), p(0, 0)), abs=0.01)


def test_a_position_past_the_destination_has_nothing_left() -> None:
    progress = remaining_route_m(p(1.2, 1), L_ROUTE)
    assert progress.remaining_m == 0.0
    assert progress.off_route_m == pytest.approx(distance_m(p(1.2, 1), p(1, 1)), abs=0.01)


def test_a_tracker_far_off_the_route_shows_it() -> None:
    progress = remaining_route_m(p(0.5, 0.5), L_ROUTE)
    assert progress.off_route_m > 50_000


def test_a_route_across_the_antimeridian_is_followed_the_short_way() -> None:
    route = [p(0, 179.5), p(0, -179.5)]
    progress = remaining_route_m(p(0.001, 179.9), route)
    assert progress.nearest.lon == pytest.approx(179.9)
    assert progress.remaining_m == pytest.approx(0.6 * ONE_DEGREE_OF_EQUATOR_M, abs=0.01)
    past_the_line = remaining_route_m(p(0, -179.8), route)
    assert past_the_line.remaining_m == pytest.approx(0.3 * ONE_DEGREE_OF_EQUATOR_M, abs=0.01)
    assert past_the_line.off_route_m == pytest.approx(0.0, abs=0.01)


def test_a_route_needs_an_origin_and_a_destination() -> None:
    with pytest.raises(ValueError, match="at least an origin and a destination"):
        remaining_route_m(p(0, 0), [p(0, 0)])


@st.composite
def northbound_routes(draw: st.DrawFn) -> list[Point]:
    """Routes heading north leg after leg (latitude strictly rising), so they never cross themselves."""
    lat = draw(st.floats(-60, 50))
    lon = draw(st.floats(-179, 179))
    route = [p(lat, lon)]
    for _ in range(draw(st.integers(1, 6))):
        lat += draw(st.floats(0.01, 1.0))
        lon = max(-180.0, min(180.0, lon + draw(st.floats(-1.0, 1.0))))
        route.append(p(lat, lon))
    return route


def along(route: list[Point], leg: int, t: float) -> Point:
    a, b = route[leg], route[leg + 1]
    return p(a.lat + t * (b.lat - a.lat), a.lon + t * (b.lon - a.lon))


@given(route=northbound_routes(), stops=st.lists(st.floats(0, 1), min_size=2, max_size=20))
def test_remaining_distance_never_grows_as_the_tracker_advances_along_the_route(
    route: list[Point], stops: list[float]
) -> None:
    legs = len(route) - 1
    positions = []
    for fraction in sorted(stops):
        leg = min(int(fraction * legs), legs - 1)
        positions.append(along(route, leg, fraction * legs - leg))
    remaining = [remaining_route_m(position, route).remaining_m for position in positions]
    for earlier, later in pairwise(remaining):
        assert later <= earlier + 0.01
    assert remaining_route_m(route[0], route).remaining_m == pytest.approx(route_length_m(route), abs=0.01)
    assert remaining_route_m(route[-1], route).remaining_m == 0.0


@given(route=northbound_routes(), fraction=st.floats(0, 1))
def test_a_position_on_the_route_is_not_off_it(route: list[Point], fraction: float) -> None:
    legs = len(route) - 1
    leg = min(int(fraction * legs), legs - 1)
    progress = remaining_route_m(along(route, leg, fraction * legs - leg), route)
    assert progress.off_route_m < 0.01
    assert 0.0 <= progress.remaining_m <= route_length_m(route) + 0.01
