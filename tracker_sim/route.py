"""Where the shipment is: a route of waypoints, and a seeded plan of how it travels along them.

The only module of the simulator that uses geopy. Legs follow the great circle between their waypoints
(densified every few kilometres); their lengths are WGS-84 geodesic distances from geopy, so speeds measured
between GPS fixes with geopy agree with the speeds planned here.

Speeds per mode are those of ordinary freight: road 60-90 km/h between stops, rail 60-100 km/h, a container
ship 14-19 knots, an airliner 780-870 km/h at cruise after a climb and before a descent of about twenty
minutes each. A road driver takes a 45-minute break after 4.5 hours of driving (Regulation (EC) No 561/2006,
Art. 7), and a truck now and then stands in traffic.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Literal

import msgspec
from geopy.distance import geodesic
from msgspec import Meta

__all__ = [
    "SPEED_RANGE_KMH",
    "Mode",
    "Phase",
    "PhaseKind",
    "RoutePosition",
    "TripPlan",
    "Waypoint",
    "distance_km",
    "plan_trip",
]

Mode = Literal["road", "rail", "sea", "air"]
PhaseKind = Literal["stopped", "moving", "climb", "cruise", "descent", "arrived"]
Latitude = Annotated[float, Meta(ge=-90, le=90)]
Longitude = Annotated[float, Meta(ge=-180, le=180)]
NonNegative = Annotated[float, Meta(ge=0)]

SPEED_RANGE_KMH: dict[Mode, tuple[float, float]] = {
    "road": (60.0, 90.0),
    "rail": (60.0, 100.0),
    "sea": (26.0, 35.0),
    "air": (780.0, 870.0),
}

_DENSIFY_KM = 5.0
_DRIVING_BEFORE_BREAK_S = 4.5 * 3600
_BREAK_S = 45 * 60
_CLIMB_S, _CLIMB_KM = 20 * 60, 150.0
_DESCENT_S, _DESCENT_KM = 25 * 60, 180.0


class Waypoint(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A place on the route. ``mode`` is how the leg that *ends* here travels (None: the scenario's mode)."""

    name: str = ""
    latitude: Latitude
    longitude: Longitude
    elevation_m: float = 0.0
    mode: Mode | None = None
    dwell_min: NonNegative = 0.0
    """Time standing here: loading, a delivery, a hand-over, customs."""
    door_open_min: NonNegative = 0.0
    """How long the cargo door stays open during the dwell (at most the dwell)."""


class Phase(msgspec.Struct, frozen=True, kw_only=True):
    """A stretch of the trip at constant speed (or standing still), from ``start_s`` to ``end_s``."""

    kind: PhaseKind
    mode: Mode
    start_s: float
    end_s: float
    start_km: float
    end_km: float
    waypoint: int | None = None


class RoutePosition(msgspec.Struct, frozen=True, kw_only=True):
    """The true state of the shipment at one instant of the plan."""

    latitude: float
    longitude: float
    distance_km: float
    elevation_m: float
    mode: Mode
    kind: PhaseKind
    phase_fraction: float
    """How far through its phase the shipment is (0..1); drives climb and descent profiles."""


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """WGS-84 geodesic distance between two (latitude, longitude) points, in km."""
    return float(geodesic(a, b).km)


def _unit(lat: float, lon: float) -> tuple[float, float, float]:
    phi, lam = math.radians(lat), math.radians(lon)
    return (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))


def _great_circle(a: tuple[float, float], b: tuple[float, float], steps: int) -> list[tuple[float, float]]:
    """``steps + 1`` points from a to b along the great circle (spherical linear interpolation)."""
    ua, ub = _unit(*a), _unit(*b)
    omega = math.acos(max(-1.0, min(1.0, sum(x * y for x, y in zip(ua, ub, strict=True)))))
    if omega < 1e-12:
        return [a] * (steps + 1)
    points = []
    for i in range(steps + 1):
        f = i / steps
        wa, wb = math.sin((1 - f) * omega) / math.sin(omega), math.sin(f * omega) / math.sin(omega)
        x, y, z = (wa * p + wb * q for p, q in zip(ua, ub, strict=True))
        points.append((math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x))))
    points[-1] = b
    return points


class _Geometry:
    """A route densified into short chords with cumulative geodesic distances."""

    def __init__(self, waypoints: Sequence[tuple[float, float, float]]) -> None:
        self.points: list[tuple[float, float]] = [waypoints[0][:2]]
        self.elevations: list[float] = [waypoints[0][2]]
        self.km: list[float] = [0.0]
        self.leg_start_km: list[float] = [0.0]
        for (lat_a, lon_a, elev_a), (lat_b, lon_b, elev_b) in itertools.pairwise(waypoints):
            leg = distance_km((lat_a, lon_a), (lat_b, lon_b))
            steps = max(1, math.ceil(leg / _DENSIFY_KM))
            dense = _great_circle((lat_a, lon_a), (lat_b, lon_b), steps)
            for i, point in enumerate(dense[1:], start=1):
                self.km.append(self.km[-1] + distance_km(self.points[-1], point))
                self.points.append(point)
                self.elevations.append(elev_a + (elev_b - elev_a) * i / steps)
            self.leg_start_km.append(self.km[-1])

    @property
    def total_km(self) -> float:
        return self.km[-1]

    def at(self, km: float) -> tuple[float, float, float]:
        """(latitude, longitude, elevation_m) at ``km`` along the route."""
        km = min(max(km, 0.0), self.total_km)
        i = bisect.bisect_right(self.km, km) - 1
        if i >= len(self.km) - 1:
            lat, lon = self.points[-1]
            return lat, lon, self.elevations[-1]
        span = self.km[i + 1] - self.km[i]
        f = (km - self.km[i]) / span if span > 0 else 0.0
        (lat_a, lon_a), (lat_b, lon_b) = self.points[i], self.points[i + 1]
        dlon = (lon_b - lon_a + 540.0) % 360.0 - 180.0  # the short way round, also across 180°
        lon = (lon_a + f * dlon + 540.0) % 360.0 - 180.0
        elevation = self.elevations[i] + f * (self.elevations[i + 1] - self.elevations[i])
        return lat_a + f * (lat_b - lat_a), lon, elevation


@lru_cache(maxsize=64)
def _geometry(waypoints: tuple[tuple[float, float, float], ...]) -> _Geometry:
    # A fleet runs many trackers over the same few routes: measure each route once.
    return _Geometry(waypoints)


class TripPlan:
    """How one shipment moves along its route: phases in time, from 0 s (departure) to ``duration_s``."""

    def __init__(self, waypoints: Sequence[Waypoint], phases: list[Phase], geometry: _Geometry) -> None:
        self.waypoints = tuple(waypoints)
        self.phases = phases
        self._starts = [phase.start_s for phase in phases]
        self._geometry = geometry

    @property
    def duration_s(self) -> float:
        return self.phases[-1].end_s if self.phases else 0.0

    @property
    def total_km(self) -> float:
        return self._geometry.total_km

    def at(self, elapsed_s: float) -> RoutePosition:
        """Where the shipment is ``elapsed_s`` after departure (at the destination once the plan is over)."""
        i = bisect.bisect_right(self._starts, elapsed_s) - 1
        if i < 0 or elapsed_s >= self.duration_s:
            at_end = elapsed_s >= self.duration_s
            km = self.total_km if at_end else 0.0
            lat, lon, elevation = self._geometry.at(km)
            mode = self.phases[-1].mode if self.phases else "road"
            return RoutePosition(
                latitude=lat,
                longitude=lon,
                distance_km=km,
                elevation_m=elevation,
                mode=mode,
                kind="arrived" if at_end else "stopped",
                phase_fraction=0.0,
            )
        phase = self.phases[i]
        span = phase.end_s - phase.start_s
        fraction = (elapsed_s - phase.start_s) / span if span > 0 else 0.0
        km = phase.start_km + (phase.end_km - phase.start_km) * fraction
        lat, lon, elevation = self._geometry.at(km)
        return RoutePosition(
            latitude=lat,
            longitude=lon,
            distance_km=km,
            elevation_m=elevation,
            mode=phase.mode,
            kind=phase.kind,
            phase_fraction=fraction,
        )

    def door_windows(self) -> list[tuple[float, float]]:
        """(start_s, end_s) of every door opening during a dwell, in the middle of the dwell."""
        windows = []
        for phase in self.phases:
            if phase.kind != "stopped" or phase.waypoint is None:
                continue
            door_s = min(self.waypoints[phase.waypoint].door_open_min * 60.0, phase.end_s - phase.start_s)
            if door_s > 0:
                middle = (phase.start_s + phase.end_s) / 2
                windows.append((middle - door_s / 2, middle + door_s / 2))
        return windows

    def airborne_windows(self) -> list[tuple[float, float]]:
        """(start_s, end_s) of every flight, from take-off to landing."""
        windows: list[tuple[float, float]] = []
        for phase in self.phases:
            if phase.kind not in ("climb", "cruise", "descent"):
                continue
            if windows and windows[-1][1] == phase.start_s:
                windows[-1] = (windows[-1][0], phase.end_s)
            else:
                windows.append((phase.start_s, phase.end_s))
        return windows


def _air_phases(leg_km: float, start_s: float, start_km: float, rng: random.Random) -> list[Phase]:
    cruise_kmh = rng.uniform(*SPEED_RANGE_KMH["air"])
    climb_km, descent_km, climb_s, descent_s = _CLIMB_KM, _DESCENT_KM, float(_CLIMB_S), float(_DESCENT_S)
    if climb_km + descent_km > 0.8 * leg_km:  # a short hop: climb and descent take most of it
        scale = 0.8 * leg_km / (climb_km + descent_km)
        climb_km, descent_km, climb_s, descent_s = (v * scale for v in (climb_km, descent_km, climb_s, descent_s))
    cruise_km = leg_km - climb_km - descent_km
    cruise_s = cruise_km / cruise_kmh * 3600.0
    stages: tuple[tuple[PhaseKind, float, float], ...] = (
        ("climb", climb_km, climb_s),
        ("cruise", cruise_km, cruise_s),
        ("descent", descent_km, descent_s),
    )
    phases = []
    t, km = start_s, start_km
    for kind, dkm, dt in stages:
        phases.append(Phase(kind=kind, mode="air", start_s=t, end_s=t + dt, start_km=km, end_km=km + dkm))
        t, km = t + dt, km + dkm
    return phases


def _surface_phases(
    mode: Mode, leg_km: float, start_s: float, start_km: float, driven_s: float, rng: random.Random
) -> tuple[list[Phase], float]:
    """Moving chunks at varying speed, with traffic stops and driver breaks on the road."""
    low, high = SPEED_RANGE_KMH[mode]
    chunk_range_s = (4 * 3600.0, 8 * 3600.0) if mode == "sea" else (20 * 60.0, 40 * 60.0)
    phases: list[Phase] = []
    t, km, remaining = start_s, start_km, leg_km
    while remaining > 1e-9:
        stop_s = 0.0
        if mode == "road" and driven_s >= _DRIVING_BEFORE_BREAK_S - 1e-6:
            stop_s, driven_s = _BREAK_S, 0.0
        elif mode == "road" and phases and rng.random() < 0.08:
            stop_s = rng.uniform(2 * 60.0, 12 * 60.0)
        if stop_s:
            phases.append(Phase(kind="stopped", mode=mode, start_s=t, end_s=t + stop_s, start_km=km, end_km=km))
            t += stop_s
        speed = rng.uniform(low, high)
        chunk_s = rng.uniform(*chunk_range_s)
        if mode == "road":
            chunk_s = min(chunk_s, _DRIVING_BEFORE_BREAK_S - driven_s)
        dkm = min(remaining, speed * chunk_s / 3600.0)
        dt = dkm / speed * 3600.0
        phases.append(Phase(kind="moving", mode=mode, start_s=t, end_s=t + dt, start_km=km, end_km=km + dkm))
        t, km, remaining = t + dt, km + dkm, remaining - dkm
        if mode == "road":
            driven_s += dt
    return phases, driven_s


def plan_trip(waypoints: Sequence[Waypoint], *, mode: Mode, rng: random.Random) -> TripPlan:
    """Draw one way of travelling the route: speeds, stops and breaks come from ``rng``."""
    if not waypoints:
        raise ValueError("a route needs at least one waypoint")
    geometry = _geometry(tuple((w.latitude, w.longitude, w.elevation_m) for w in waypoints))
    phases: list[Phase] = []
    t, driven_s = 0.0, 0.0
    for index, waypoint in enumerate(waypoints):
        if index > 0:
            leg_mode = waypoint.mode or mode
            start_km = geometry.leg_start_km[index - 1]
            leg_km = geometry.leg_start_km[index] - start_km
            if leg_mode == "air":
                leg_phases = _air_phases(leg_km, t, start_km, rng)
            else:
                leg_phases, driven_s = _surface_phases(leg_mode, leg_km, t, start_km, driven_s, rng)
            phases.extend(leg_phases)
            t = phases[-1].end_s if phases else t
        if waypoint.dwell_min > 0:
            km = geometry.leg_start_km[index]
            end = t + waypoint.dwell_min * 60.0
            phases.append(
                Phase(
                    kind="stopped",
                    mode=waypoint.mode or mode,
                    start_s=t,
                    end_s=end,
                    start_km=km,
                    end_km=km,
                    waypoint=index,
                )
            )
            t = end
            driven_s = 0.0 if waypoint.dwell_min >= 45 else driven_s
    return TripPlan(waypoints, phases, geometry)
