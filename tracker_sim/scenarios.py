"""Scenarios: one tracker's trip as data (route, container, events, network), built in or from a file.

A scenario says *what* happens; :mod:`tracker_sim.trip` turns it, with a seed, into readings. Files are JSON
or TOML holding one scenario, a list of them (JSON), or a table ``scenarios = [...]`` /
``[[scenarios]]`` (both). Event and offline times are hours after the start of the trip.

Built-in scenarios (:data:`BUILTIN_SCENARIOS`):

- ``reefer-road``: reefer truck Berlin → Leipzig → Nuremberg → Munich with deliveries, a tunnel, a dead zone.
- ``air-freight``: passive box Marburg → Frankfurt airport → JFK → New Jersey; cabin pressure in flight,
  tracker silent while airborne.
- ``multi-day-offline``: reefer truck Mombasa → Nairobi → Malaba border → Kampala's cold store, two days
  without coverage on the way.
- ``compressor-failure``: reefer truck Lyon → Paris in July; the compressor stops for 2.5 h (above 8 °C).
- ``freeze``: reefer truck Helsinki → Tampere → Oulu in January; a thermostat fault freezes the load.
"""

from __future__ import annotations

import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from tracker_sim.network import NetworkConditions, OfflineWindow
from tracker_sim.route import Mode, Waypoint

__all__ = [
    "BUILTIN_SCENARIOS",
    "AmbientShift",
    "CompressorFailure",
    "Container",
    "DoorOpening",
    "Event",
    "Freeze",
    "GpsDropout",
    "ProbeFault",
    "Scenario",
    "ScenarioError",
    "builtin_scenario",
    "load_scenarios",
    "resolve_scenarios",
]

Container = Literal["reefer", "passive"]
AwareDatetime = Annotated[datetime, Meta(tz=True)]
NonNegative = Annotated[float, Meta(ge=0)]
Positive = Annotated[float, Meta(gt=0)]
Celsius = Annotated[float, Meta(ge=-100, le=100)]
Percent = Annotated[float, Meta(ge=0, le=100)]
Probability = Annotated[float, Meta(ge=0, le=1)]


class ScenarioError(ValueError):
    """A scenario name that is not built in, or a file that does not hold valid scenarios."""


class _Event(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"):
    """Every event starts ``at_h`` hours into the trip; each kind says how long it lasts (``window_h``)."""

    at_h: NonNegative


class DoorOpening(_Event, frozen=True, tag="door_open"):
    """The cargo door stands open: the load is exposed to ambient air."""

    duration_min: Positive = 5.0

    def window_h(self) -> tuple[float, float]:
        return self.at_h, self.at_h + self.duration_min / 60.0


class CompressorFailure(_Event, frozen=True, tag="compressor_failure"):
    """The reefer unit stops; the load warms (or cools) towards ambient through the insulation, then the
    unit recovers and pulls the temperature back down. No effect on a passive container."""

    duration_h: Positive

    def window_h(self) -> tuple[float, float]:
        return self.at_h, self.at_h + self.duration_h


class Freeze(_Event, frozen=True, tag="freeze"):
    """A thermostat fault (or a winter apron): the load is pulled towards ``target_c``."""

    duration_h: Positive
    target_c: Celsius = -6.0
    tau_min: Positive = 45.0

    def window_h(self) -> tuple[float, float]:
        return self.at_h, self.at_h + self.duration_h


class AmbientShift(_Event, frozen=True, tag="ambient_shift"):
    """Weather: ambient air ``delta_c`` warmer (or colder) than usual for a while."""

    duration_h: Positive
    delta_c: float

    def window_h(self) -> tuple[float, float]:
        return self.at_h, self.at_h + self.duration_h


class GpsDropout(_Event, frozen=True, tag="gps_dropout"):
    """No sky view (tunnel, covered loading bay): no GPS fix."""

    duration_min: Positive

    def window_h(self) -> tuple[float, float]:
        return self.at_h, self.at_h + self.duration_min / 60.0


class ProbeFault(_Event, frozen=True, tag="probe_fault"):
    """The temperature probe's cable is loose: the sensor reports its fault code instead of a temperature
    (a disconnected 1-Wire probe reads -127 °C). The load itself is unaffected."""

    duration_min: Positive
    reading_c: float = -127.0

    def window_h(self) -> tuple[float, float]:
        return self.at_h, self.at_h + self.duration_min / 60.0


Event = DoorOpening | CompressorFailure | Freeze | AmbientShift | GpsDropout | ProbeFault


def _cet() -> timezone:
    return timezone(timedelta(hours=1))


class Scenario(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One tracker's trip. ``start`` is an aware time; the device keeps its UTC offset as its time zone."""

    name: str
    description: str = ""
    route: Annotated[tuple[Waypoint, ...], Meta(min_length=1)]
    mode: Mode = "road"
    container: Container = "reefer"
    start: AwareDatetime = msgspec.field(default_factory=lambda: datetime(2026, 3, 2, 6, 0, tzinfo=_cet()))
    interval_min: Positive = 5.0
    """Logging interval."""
    after_arrival_h: NonNegative = 0.5
    """How long the tracker keeps logging at the destination before it is switched off."""
    duration_h: Positive | None = None
    """Fixed trip length; None: until arrival plus ``after_arrival_h``."""
    setpoint_c: Celsius = 5.0
    ambient_c: Celsius = 15.0
    """Mean outdoor temperature over the trip."""
    ambient_swing_c: NonNegative = 4.0
    """Half the day-night difference (warmest at 15:00 local time)."""
    ambient_humidity_pct: Percent = 70.0
    humidity_pct: Percent = 60.0
    """Relative humidity inside the container at the setpoint."""
    hold_c: Celsius = 15.0
    """Temperature of the aircraft's cargo hold in flight."""
    insulation_tau_h: Positive | None = None
    """Time constant of the load towards ambient without cooling (None: 4 h reefer trailer, 10 h box)."""
    passive_hold_h: Positive = 96.0
    """Qualified hold time of a passive box at 25 °C ambient (phase-change material)."""
    events: tuple[Event, ...] = ()
    network: NetworkConditions = msgspec.field(default_factory=NetworkConditions)
    clock_drift_ppm: float = 20.0
    clock_offset_s: float = 0.0
    battery_start_pct: Percent = 100.0
    gps_dropout_rate: Probability = 0.01
    gps_in_flight: bool = False
    """Whether GPS still gets fixes airborne (usually not: no sky view from the hold, flight mode)."""

    @property
    def tau_without_cooling_h(self) -> float:
        if self.insulation_tau_h is not None:
            return self.insulation_tau_h
        return 4.0 if self.container == "reefer" else 10.0


def _wp(name: str, lat: float, lon: float, elevation_m: float, **kwargs: Any) -> Waypoint:
    return Waypoint(name=name, latitude=lat, longitude=lon, elevation_m=elevation_m, **kwargs)


BUILTIN_SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="reefer-road",
            description="Reefer truck, Berlin wholesaler to Munich with deliveries in Leipzig and Nuremberg.",
            route=(
                _wp("Berlin wholesaler", 52.5200, 13.4050, 34, dwell_min=30, door_open_min=12),
                _wp("Leipzig pharmacy hub", 51.3397, 12.3731, 113, dwell_min=25, door_open_min=8),
                _wp("Nuremberg hospital", 49.4521, 11.0767, 309, dwell_min=25, door_open_min=8),
                _wp("Munich hospital", 48.1351, 11.5820, 519, dwell_min=20, door_open_min=10),
            ),
            start=datetime(2026, 3, 2, 6, 0, tzinfo=_cet()),
            ambient_c=6.0,
            ambient_swing_c=4.0,
            events=(GpsDropout(at_h=3.2, duration_min=6),),
            network=NetworkConditions(
                offline=(OfflineWindow(start_h=2.0, duration_h=0.75),),
                lost_response_rate=0.02,
                latency_ms=250,
                latency_jitter_ms=150,
            ),
        ),
        Scenario(
            name="air-freight",
            description="Passive box, vaccine plant in Marburg to a New Jersey distributor via FRA and JFK.",
            route=(
                _wp("Marburg plant", 50.8021, 8.7667, 186, dwell_min=20, door_open_min=5),
                _wp("Frankfurt airport cargo", 50.0379, 8.5622, 111, dwell_min=180),
                _wp("JFK airport cargo", 40.6413, -73.7781, 4, mode="air", dwell_min=150),
                _wp("Edison NJ distributor", 40.5187, -74.4121, 30, mode="road", dwell_min=15, door_open_min=5),
            ),
            container="passive",
            start=datetime(2026, 3, 2, 5, 0, tzinfo=_cet()),
            ambient_c=7.0,
            ambient_swing_c=4.0,
            clock_drift_ppm=-35.0,
            clock_offset_s=2.0,
            network=NetworkConditions(lost_response_rate=0.03, latency_ms=400, latency_jitter_ms=200),
        ),
        Scenario(
            name="multi-day-offline",
            description="Reefer truck Mombasa to Kampala; two days without coverage up-country.",
            route=(
                _wp("Mombasa port", -4.0435, 39.6682, 50, dwell_min=45, door_open_min=10),
                _wp("Nairobi depot (night rest)", -1.2921, 36.8219, 1795, dwell_min=600, door_open_min=10),
                _wp("Malaba border post", 0.6370, 34.2750, 1200, dwell_min=1080, door_open_min=10),
                _wp("Kampala medical stores", 0.3476, 32.5825, 1190, dwell_min=30, door_open_min=10),
            ),
            start=datetime(2026, 3, 2, 5, 0, tzinfo=timezone(timedelta(hours=3))),
            after_arrival_h=12.0,
            ambient_c=27.0,
            ambient_swing_c=6.0,
            humidity_pct=65.0,
            ambient_humidity_pct=75.0,
            clock_drift_ppm=45.0,
            network=NetworkConditions(
                offline=(OfflineWindow(start_h=6.0, duration_h=48.0),),
                lost_response_rate=0.05,
                latency_ms=600,
                latency_jitter_ms=400,
                bandwidth_kbps=64,
            ),
        ),
        Scenario(
            name="compressor-failure",
            description="Reefer truck Lyon to Rungis in July; the compressor stops for 2.5 hours.",
            route=(
                _wp("Lyon distributor", 45.7640, 4.8357, 173, dwell_min=20, door_open_min=8),
                _wp("Rungis wholesale hub", 48.7469, 2.3515, 80, dwell_min=20, door_open_min=8),
            ),
            start=datetime(2026, 7, 14, 6, 0, tzinfo=timezone(timedelta(hours=2))),
            ambient_c=27.0,
            ambient_swing_c=6.0,
            events=(CompressorFailure(at_h=2.0, duration_h=2.5),),
            network=NetworkConditions(lost_response_rate=0.02, latency_ms=200, latency_jitter_ms=100),
        ),
        Scenario(
            name="freeze",
            description="Reefer truck Helsinki to Oulu in January; a thermostat fault freezes the load.",
            route=(
                _wp("Helsinki wholesaler", 60.1699, 24.9384, 20, dwell_min=20, door_open_min=6),
                _wp("Tampere pharmacy", 61.4978, 23.7610, 110, dwell_min=20, door_open_min=6),
                _wp("Oulu hospital", 65.0121, 25.4651, 15, dwell_min=20, door_open_min=8),
            ),
            start=datetime(2026, 1, 20, 7, 0, tzinfo=timezone(timedelta(hours=2))),
            ambient_c=-15.0,
            ambient_swing_c=3.0,
            ambient_humidity_pct=85.0,
            events=(
                Freeze(at_h=2.5, duration_h=3.0, target_c=-8.0, tau_min=60.0),
                ProbeFault(at_h=7.0, duration_min=20),
            ),
            network=NetworkConditions(lost_response_rate=0.01, latency_ms=200, latency_jitter_ms=100),
        ),
    )
}


def builtin_scenario(name: str) -> Scenario:
    try:
        return BUILTIN_SCENARIOS[name]
    except KeyError:
        known = ", ".join(sorted(BUILTIN_SCENARIOS))
        raise ScenarioError(f"no built-in scenario {name!r} (built in: {known})") from None


class _ScenarioFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    scenarios: Annotated[list[Scenario], Meta(min_length=1)]


def load_scenarios(path: str | Path) -> list[Scenario]:
    """Read the scenarios of a ``.json`` or ``.toml`` file."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".toml":
            document: Any = tomllib.loads(path.read_text(encoding="utf-8"))
            if "scenarios" in document:
                return msgspec.convert(document, _ScenarioFile).scenarios
            return [msgspec.convert(document, Scenario)]
        if path.suffix.lower() != ".json":
            raise ScenarioError(f"{path}: scenario files are .json or .toml")
        data = path.read_bytes()
        document = msgspec.json.decode(data)
        if isinstance(document, list):
            return msgspec.json.decode(b'{"scenarios":' + data + b"}", type=_ScenarioFile).scenarios
        if isinstance(document, dict) and "scenarios" in document:
            return msgspec.json.decode(data, type=_ScenarioFile).scenarios
        return [msgspec.json.decode(data, type=Scenario)]
    except (msgspec.ValidationError, msgspec.DecodeError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc


def resolve_scenarios(spec: str) -> list[Scenario]:
    """A built-in scenario by name, or the scenarios of a file by path."""
    if spec in BUILTIN_SCENARIOS:
        return [BUILTIN_SCENARIOS[spec]]
    if Path(spec).suffix.lower() in (".json", ".toml"):
        if not Path(spec).is_file():
            raise ScenarioError(f"no scenario file {spec}")
        return load_scenarios(spec)
    return [builtin_scenario(spec)]
