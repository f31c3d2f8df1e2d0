"""Positions on the WGS-84 ellipsoid: geodesic distances, progress along a planned route, geofences.

This is the one module that imports geopy (STYLE: one untyped library, one module). Distances are geopy's
``geodesic`` (Karney's algorithm on WGS-84), accurate to well under a millimetre at any range.

Projecting a position onto a route uses a local equirectangular frame around each segment: longitude
differences are scaled by the cosine of the segment's mid latitude. That frame only *chooses* the nearest
point of the route; every distance reported is geodesic. It is accurate for the segments a planner draws
(up to a few hundred km); over a long east-west segment a straight line in that frame departs from the
geodesic, so long legs should be given intermediate waypoints.

Antimeridian: longitude differences are wrapped into [-180, 180), so a segment from 179.5° E to 179.5° W is
the 1° hop across the date line and never the long way round. A segment therefore cannot span more than 180°
of longitude. Poles: the frame degenerates within a few km of a pole (the cosine goes to 0); routes over a pole
need waypoints on either side of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Annotated

import msgspec
from geopy.distance import geodesic

__all__ = [
    "Latitude",
    "Longitude",
    "Point",
    "RouteProgress",
    "distance_m",
    "remaining_route_m",
    "route_length_m",
    "within_m",
]

Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]

#: One reusable WGS-84 geodesic; ``measure`` answers in kilometres.
_WGS84 = geodesic(ellipsoid="WGS-84")

#: WGS-84 equatorial radius: scale of the local projection frame (only used to pick the nearest point).
_EARTH_RADIUS_M = 6_378_137.0

#: Below this cosine of latitude the local frame treats longitude as meaningless (within ~6 km of a pole).
_MIN_COS_LAT = 1e-3


class Point(msgspec.Struct, frozen=True, kw_only=True):
    """A position in decimal degrees (WGS-84). Raises ``ValueError`` when out of range or not finite."""

    lat: Latitude
    lon: Longitude

    def __post_init__(self) -> None:
        # msgspec checks the Meta bounds only when decoding; values built in code are checked here.
        if not (math.isfinite(self.lat) and -90.0 <= self.lat <= 90.0):
            raise ValueError(f"latitude must be within [-90, 90], got {self.lat}")
        if not (math.isfinite(self.lon) and -180.0 <= self.lon <= 180.0):
            raise ValueError(f"longitude must be within [-180, 180], got {self.lon}")


class RouteProgress(msgspec.Struct, frozen=True, kw_only=True):
    """Where a position stands on a route.

    ``remaining_m``: geodesic distance from ``nearest`` (the position projected onto the route) to the end of
    its segment plus every later segment. ``off_route_m``: geodesic distance from the position to ``nearest``;
    a large value means the tracker is not where the plan says. ``segment`` is the index of the segment
    (``route[segment]`` → ``route[segment + 1]``) the position was projected onto.
    """

    remaining_m: float
    off_route_m: float
    segment: int
    nearest: Point


def distance_m(a: Point, b: Point) -> float:
    """Geodesic distance between two points on WGS-84, in metres."""
    return float(_WGS84.measure((a.lat, a.lon), (b.lat, b.lon))) * 1000.0


def route_length_m(points: Sequence[Point]) -> float:
    """Length of the polyline through ``points`` (geodesic per segment); 0 for fewer than two points."""
    return math.fsum(distance_m(a, b) for a, b in pairwise(points))


def within_m(position: Point, centre: Point, radius_m: float) -> bool:
    """Whether ``position`` lies inside the geofence of ``radius_m`` around ``centre`` (the rim counts)."""
    if not math.isfinite(radius_m) or radius_m < 0:
        raise ValueError(f"radius_m must be a finite number >= 0, got {radius_m}")
    return distance_m(position, centre) <= radius_m


def remaining_route_m(position: Point, route: Sequence[Point]) -> RouteProgress:
    """Distance still to travel along ``route`` (origin → waypoints → destination) from ``position``.

    The position is projected onto the nearest segment of the route (nearest in the local frame described in
    the module docstring); the remaining distance runs from that projection to the destination along the
    route. A position beyond the destination projects onto it (0 m remaining); one before the origin projects
    onto the origin (the whole route remains). The distance back to the route is ``off_route_m``, not added
    to ``remaining_m``: the caller decides what a detour costs.

    Where the route passes close to itself, the nearest segment wins; routes that retrace their own path are
    ambiguous and should be split into legs.
    """
    if len(route) < 2:
        raise ValueError(f"a route needs at least an origin and a destination, got {len(route)} point(s)")
    best_segment = 0
    best_t = 0.0
    best_planar_m = math.inf
    for index, (a, b) in enumerate(pairwise(route)):
        t, planar_m = _project(position, a, b)
        if planar_m < best_planar_m:
            best_segment, best_t, best_planar_m = index, t, planar_m
    a, b = route[best_segment], route[best_segment + 1]
    nearest = _interpolate(a, b, best_t)
    return RouteProgress(
        remaining_m=distance_m(nearest, b) + route_length_m(route[best_segment + 1 :]),
        off_route_m=distance_m(position, nearest),
        segment=best_segment,
        nearest=nearest,
    )


def _wrap_deg(delta: float) -> float:
    """A longitude difference folded into [-180, 180): the short way round, across the antimeridian if need be."""
    return (delta + 180.0) % 360.0 - 180.0


def _project(position: Point, a: Point, b: Point) -> tuple[float, float]:
    """Parameter ``t`` in [0, 1] of the point of segment a→b nearest to ``position``, and its distance in the
    local equirectangular frame centred on the segment (metres, approximate: used only to compare segments)."""
    cos_lat = max(math.cos(math.radians((a.lat + b.lat) / 2.0)), _MIN_COS_LAT)
    metres_per_deg = _EARTH_RADIUS_M * math.pi / 180.0
    bx = _wrap_deg(b.lon - a.lon) * cos_lat * metres_per_deg
    by = (b.lat - a.lat) * metres_per_deg
    px = _wrap_deg(position.lon - a.lon) * cos_lat * metres_per_deg
    py = (position.lat - a.lat) * metres_per_deg
    length_sq = bx * bx + by * by
    t = 0.0 if length_sq == 0.0 else min(1.0, max(0.0, (px * bx + py * by) / length_sq))
    return t, math.hypot(px - t * bx, py - t * by)


def _interpolate(a: Point, b: Point, t: float) -> Point:
    """The point at parameter ``t`` of segment a→b, straight in the local frame (so across the antimeridian)."""
    if t <= 0.0:
        return a
    if t >= 1.0:
        return b
    lon = a.lon + t * _wrap_deg(b.lon - a.lon)
    return Point(lat=a.lat + t * (b.lat - a.lat), lon=_wrap_deg(lon) if abs(lon) > 180.0 else lon)
