"""ETA accuracy on real flight and vessel tracks (tracktable-data), replayed as tracker GPS.

Run: ``.venv/bin/python tests/benchmarks/bench_eta.py`` after ``pip install '.[bench]'``. Prints figures; asserts
nothing. Deterministic: same data, same trips, same numbers.

Data (read as plain text; the ``tracktable`` library is not needed):

- flights: ``prediction_historical_trajectories.traj``: 479 real flight tracks of 2013-07-10, each fix tagged
  with origin and destination airport (ICAO), resolved through ``airports.csv``;
- vessels: AIS position reports (MarineCadastre, US coastal waters, 2020): ``NYHarbor_2020_12_first_week.traj``,
  ``US_coastal_2020_06_30.traj``, ``VirginiaBeach_2020_06_04_to_06_filtered.traj``.

Trips:

- a flight is kept when it is a whole flight (first fix within 30 km of its origin airport, last fix within
  30 km of its destination), lasts at least an hour, covers at least 300 km, has 30 fixes or more and no
  silence over 15 minutes;
- a vessel track is cut into voyages at every port call (30 minutes or more within 300 m) and every silence
  over 30 minutes; the drifting at either end is trimmed (departure: last fix within 500 m of the first one;
  arrival: first fix within 500 m of the last one). A voyage is kept when it lasts at least an hour, has 30
  fixes or more, ends at least 10 km from where it began, and its path is at most 2.5 times that straight
  distance (it goes somewhere: patrols, tugs, and ferries shuttling back and forth are left out).

Replay: the planner's route is the origin, up to 8 waypoints from a Douglas-Peucker simplification of the true
track (tolerance 5 km for flights, 250 m for vessels) and the destination. At 25, 50 and 75 % of each trip's
duration, the ETA is estimated from the fixes seen so far (position: the latest fix) with the domain's defaults
and compared with the true arrival time.
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from itertools import pairwise

from coldchain.domain.eta import DEFAULT_SPEED_WINDOW, EtaEstimate, Fix, estimate_eta
from coldchain.domain.geo import Point

try:
    import tracktable_data
except ImportError:
    sys.exit("bench_eta needs the tracktable-data package (real tracks): pip install '.[bench]'")

FLIGHT_FILE = "prediction_historical_trajectories.traj"
VESSEL_FILES = (
    "NYHarbor_2020_12_first_week.traj",
    "US_coastal_2020_06_30.traj",
    "VirginiaBeach_2020_06_04_to_06_filtered.traj",
)
CHECKPOINTS = (0.25, 0.5, 0.75)
MAX_WAYPOINTS = 8
_DOMAINS = {"terrestrial", "generic", "cartesian2d", "cartesian3d"}
_EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Track:
    object_id: str
    properties: dict[str, str]
    fixes: list[Fix]


@dataclass(frozen=True)
class Trip:
    name: str
    fixes: list[Fix]
    route: list[Point]

    @property
    def departure(self) -> datetime:
        return self.fixes[0].time

    @property
    def arrival(self) -> datetime:
        return self.fixes[-1].time


@dataclass(frozen=True)
class Outcome:
    checkpoint: float
    estimate: EtaEstimate
    true_remaining_min: float
    arrival: datetime


# --- reading the files ----------------------------------------------------------------------------------------


def data_file(folder: str, name: str) -> Traversable:
    # The package's own ``retrieve`` helper configures logging on import; the files are plain package data.
    return resources.files(tracktable_data) / folder / name


def read_traj(name: str) -> Iterator[Track]:
    """Tracktable's ``.traj`` text format: one trajectory a line, comma-separated.

    ``*T*, [uuid,] domain, point count, property count, (name, type, value)...,
    *P*, domain, dimension, has id, has time, property count, (name, type)..., then per point
    object id, time, longitude, latitude, property values...``
    """
    with data_file("python_example_data", name).open(encoding="utf-8") as lines:
        for line in lines:
            tokens = line.rstrip("\n").split(",")
            i = 1 if tokens[1] in _DOMAINS else 2
            point_count, track_property_count = int(tokens[i + 1]), int(tokens[i + 2])
            i += 3 + 3 * track_property_count
            if tokens[i] != "*P*":
                raise ValueError(f"{name}: unexpected .traj layout near {tokens[i - 2 : i + 2]}")
            dimension, has_id, has_time, property_count = (int(t) for t in tokens[i + 2 : i + 6])
            names = [tokens[i + 6 + 2 * k] for k in range(property_count)]
            i += 6 + 2 * property_count
            width = has_id + has_time + dimension + property_count
            if (dimension, has_id, has_time) != (2, 1, 1) or len(tokens) - i != point_count * width:
                raise ValueError(f"{name}: unexpected .traj point layout")
            fixes = []
            properties: dict[str, str] = {}
            for k in range(point_count):
                object_id, time, lon, lat, *values = tokens[i + k * width : i + (k + 1) * width]
                fixes.append(Fix(time=datetime.fromisoformat(time).replace(tzinfo=UTC), lat=float(lat), lon=float(lon)))
                properties = dict(zip(names, values, strict=True))
            fixes.sort(key=lambda fix: fix.time)
            yield Track(object_id=object_id, properties=properties, fixes=fixes)


def read_airports() -> dict[str, Point]:
    """ICAO code → position, from OpenFlights' ``airports.csv`` as shipped in tracktable-data."""
    airports = {}
    with data_file("python_info_data", "airports.csv").open(encoding="utf-8") as rows:
        for row in csv.reader(rows):
            if len(row) > 7 and len(row[5]) == 4:
                airports[row[5]] = Point(lat=float(row[6]), lon=float(row[7]))
    return airports


# --- choosing trips (quick great-circle distances: selection only, the estimates use the domain) ---------------


def gc_m(a: Fix | Point, b: Fix | Point) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


def minutes(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 60.0


def path_m(fixes: Sequence[Fix], max_speed_mps: float) -> float:
    """Length of the track, leaving out segments faster than ``max_speed_mps`` (GPS jumps)."""
    total = 0.0
    for a, b in pairwise(fixes):
        step = gc_m(a, b)
        if step <= max_speed_mps * max(1.0, (b.time - a.time).total_seconds()):
            total += step
    return total


def max_gap_min(fixes: Sequence[Fix]) -> float:
    return max(minutes(a.time, b.time) for a, b in pairwise(fixes))


def flight_trips(airports: dict[str, Point]) -> list[Trip]:
    trips = []
    for track in read_traj(FLIGHT_FILE):
        origin, destination = airports.get(track.properties["orig"]), airports.get(track.properties["dest"])
        fixes = track.fixes
        if origin is None or destination is None or len(fixes) < 30:
            continue
        whole_flight = gc_m(fixes[0], origin) <= 30_000 and gc_m(fixes[-1], destination) <= 30_000
        if (
            whole_flight
            and minutes(fixes[0].time, fixes[-1].time) >= 60
            and path_m(fixes, 400.0) >= 300_000
            and max_gap_min(fixes) <= 15
        ):
            name = f"{track.object_id} {track.properties['orig']}-{track.properties['dest']}"
            trips.append(Trip(name=name, fixes=fixes, route=plan_route(fixes, tolerance_m=5_000)))
    return trips


def voyages(fixes: list[Fix]) -> Iterator[list[Fix]]:
    """The movements of one vessel between port calls (≥ 30 min within 300 m) and silences (> 30 min)."""
    piece: list[Fix] = []
    i = 0
    while i < len(fixes):
        j = i
        while (
            j + 1 < len(fixes)
            and gc_m(fixes[j + 1], fixes[i]) <= 300
            and minutes(fixes[j].time, fixes[j + 1].time) <= 30
        ):
            j += 1
        if minutes(fixes[i].time, fixes[j].time) >= 30:  # a port call: the voyage so far ends here
            yield [*piece, fixes[i]]
            piece = []
            i = j
        piece.append(fixes[i])
        if i + 1 < len(fixes) and minutes(fixes[i].time, fixes[i + 1].time) > 30:
            yield piece
            piece = []
        i += 1
    yield piece


def trimmed(fixes: list[Fix]) -> list[Fix]:
    """Without the drifting before departure and after arrival (within 500 m of the first / last fix)."""
    start, end = 0, len(fixes) - 1
    while start < end and gc_m(fixes[start + 1], fixes[0]) <= 500:
        start += 1
    while end > start and gc_m(fixes[end - 1], fixes[-1]) <= 500:
        end -= 1
    return fixes[start : end + 1]


def vessel_trips() -> list[Trip]:
    trips = []
    for name in VESSEL_FILES:
        for track in read_traj(name):
            for number, voyage in enumerate(voyages(track.fixes)):
                fixes = trimmed(voyage)
                if len(fixes) < 30 or minutes(fixes[0].time, fixes[-1].time) < 60:
                    continue
                straight_m = gc_m(fixes[0], fixes[-1])
                if straight_m >= 10_000 and path_m(fixes, 30.0) <= 2.5 * straight_m:
                    trips.append(
                        Trip(
                            name=f"{track.object_id} #{number}",
                            fixes=fixes,
                            route=plan_route(fixes, tolerance_m=250),
                        )
                    )
    return trips


def plan_route(fixes: Sequence[Fix], *, tolerance_m: float) -> list[Point]:
    """Origin, up to MAX_WAYPOINTS waypoints, destination: Douglas-Peucker, top-down, farthest point first."""
    chosen = {0, len(fixes) - 1}
    while len(chosen) < MAX_WAYPOINTS + 2:
        corners = sorted(chosen)
        worst_m, worst = 0.0, -1
        for a, b in pairwise(corners):
            for k in range(a + 1, b):
                offset = offset_m(fixes[k], fixes[a], fixes[b])
                if offset > worst_m:
                    worst_m, worst = offset, k
        if worst_m <= tolerance_m:
            break
        chosen.add(worst)
    return [fixes[k].point for k in sorted(chosen)]


def offset_m(p: Fix, a: Fix, b: Fix) -> float:
    """Distance from p to segment a-b in a local equirectangular frame (metres)."""
    k = _EARTH_RADIUS_M * math.pi / 180
    cos_lat = math.cos(math.radians((a.lat + b.lat) / 2))
    bx, by = (b.lon - a.lon) * cos_lat * k, (b.lat - a.lat) * k
    px, py = (p.lon - a.lon) * cos_lat * k, (p.lat - a.lat) * k
    length_sq = bx * bx + by * by
    t = 0.0 if length_sq == 0 else max(0.0, min(1.0, (px * bx + py * by) / length_sq))
    return math.hypot(px - t * bx, py - t * by)


# --- replay ---------------------------------------------------------------------------------------------------


def replay(trip: Trip) -> Iterator[Outcome]:
    duration = trip.arrival - trip.departure
    for checkpoint in CHECKPOINTS:
        now = trip.departure + duration * checkpoint
        seen = [fix for fix in trip.fixes if fix.time <= now]
        estimate = estimate_eta(now=now, position=seen[-1].point, route=trip.route, fixes=seen)
        yield Outcome(
            checkpoint=checkpoint,
            estimate=estimate,
            true_remaining_min=minutes(now, trip.arrival),
            arrival=trip.arrival,
        )


def report(category: str, trips: list[Trip]) -> None:
    outcomes = [outcome for trip in trips for outcome in replay(trip)]
    waypoints = statistics.median(len(trip.route) - 2 for trip in trips)
    hours = statistics.median(minutes(trip.departure, trip.arrival) / 60 for trip in trips)
    print(f"\n{category}: {len(trips)} trips (median {hours:.1f} h, {waypoints:.0f} waypoints)")
    print("  at    n  no ETA  median |err| min  median |err| % of remaining  median bias min  truth in [low, high]")
    for checkpoint in CHECKPOINTS:
        here = [o for o in outcomes if o.checkpoint == checkpoint]
        timed = [o for o in here if o.estimate.eta is not None]
        errors = [minutes(o.arrival, o.estimate.eta) for o in timed if o.estimate.eta is not None]
        relative = [100 * abs(e) / o.true_remaining_min for e, o in zip(errors, timed, strict=True)]
        inside = sum(
            1
            for o in timed
            if o.estimate.eta_low is not None
            and o.estimate.eta_low <= o.arrival
            and (o.estimate.eta_high is None or o.arrival <= o.estimate.eta_high)
        )
        abs_err = statistics.median(abs(e) for e in errors)
        print(
            f"  {checkpoint:>3.0%}  {len(here):>3}  {len(here) - len(timed):>6}  {abs_err:>16.1f}  "
            f"{statistics.median(relative):>29.1f}  {statistics.median(errors):>+15.1f}  "
            f"{inside:>5} / {len(timed)} ({100 * inside / len(timed):.0f} %)"
        )
    jumps = sum(o.estimate.speed.jumps_dropped for o in outcomes if o.estimate.speed is not None)
    print(f"  GPS jumps dropped across these estimates: {jumps}")


def main() -> None:
    print(f"ETA accuracy on tracktable-data {tracktable_data.__version__} tracks; speed window {DEFAULT_SPEED_WINDOW}")
    print("error = ETA - true arrival (negative: predicted early)")
    report("flights", flight_trips(read_airports()))
    report("vessels", vessel_trips())


if __name__ == "__main__":
    main()
