"""A scenario played out with a seed: the readings one tracker logs during its trip.

:class:`Trip` draws the travel plan (route speeds, stops, breaks) and then steps every sensor model from one
logging instant to the next. Inside a step the load is exposed to piecewise constant conditions (door open,
compressor down, freezing, airborne), split exactly at event edges, so a five-minute door opening counts for
five minutes whatever the logging interval.

Each concern draws from its own generator (``random.Random(f"{seed}:<concern>")``): the same seed gives the
same readings, and changing how GPS noise is drawn does not change the temperatures.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

import msgspec

from tracker_sim.logbook import Measurement
from tracker_sim.route import RoutePosition, TripPlan, plan_trip
from tracker_sim.scenarios import (
    AmbientShift,
    CompressorFailure,
    DoorOpening,
    Event,
    Freeze,
    GpsDropout,
    ProbeFault,
    Scenario,
)
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

__all__ = ["Sample", "Trip", "simulate_trip"]

_DOOR_TAU_S = 90 * 60.0
_REEFER_TAU_S = 12 * 60.0
"""A running reefer unit moves the load towards its supply air quickly (and pulls down after a failure)."""
_COMPRESSOR_CYCLE_S = 35 * 60.0
_PCM_TAU_S = 6 * 3600.0
_PCM_REFERENCE_AMBIENT_C = 25.0
_DOOR_HUMIDITY_TAU_S = 10 * 60.0
_REEFER_HUMIDITY_TAU_S = 2 * 3600.0


class Sample(msgspec.Struct, frozen=True, kw_only=True):
    """One logging instant: what the tracker logs (``measurement``) and the truth behind it."""

    true_time: datetime
    measurement: Measurement
    position: RoutePosition
    load_c: float
    """True temperature of the load (the sensor adds noise and resolution)."""
    airborne: bool


class _Conditions(NamedTuple):
    door_open: bool = False
    compressor_down: bool = False
    freeze: Freeze | None = None
    ambient_delta_c: float = 0.0
    airborne: bool = False
    gps_blocked: bool = False
    probe_fault: ProbeFault | None = None


class Trip:
    """One realisation of ``scenario`` with ``seed``, starting at ``start`` (default: the scenario's)."""

    def __init__(self, scenario: Scenario, *, seed: int, start: datetime | None = None) -> None:
        tz = scenario.start.tzinfo
        if tz is None or (start is not None and start.tzinfo is None):
            raise ValueError("trip start times must be aware")
        self.scenario = scenario
        self.seed = seed
        # The device keeps the scenario's UTC offset even when the trip is moved in time.
        self.start = scenario.start if start is None else start.astimezone(tz)
        self.plan: TripPlan = plan_trip(scenario.route, mode=scenario.mode, rng=self.rng("route"))
        self.device_clock = DeviceClock(
            start=self.start, drift_ppm=scenario.clock_drift_ppm, offset_s=scenario.clock_offset_s, tz=tz
        )
        self._bounds, self._conditions = self._timeline()

    def rng(self, concern: str) -> random.Random:
        """The trip's own generator for one concern (reproducible from the seed, independent of the rest)."""
        return random.Random(f"{self.seed}:{concern}")

    @property
    def interval_s(self) -> float:
        return self.scenario.interval_min * 60.0

    @property
    def duration_s(self) -> float:
        if self.scenario.duration_h is not None:
            return self.scenario.duration_h * 3600.0
        return self.plan.duration_s + self.scenario.after_arrival_h * 3600.0

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.duration_s)

    @property
    def sample_count(self) -> int:
        """How many readings the trip logs (one at departure, then one per interval)."""
        return math.floor(self.duration_s / self.interval_s + 1e-9) + 1

    def airborne_windows(self) -> list[tuple[datetime, datetime]]:
        """Take-off to landing of every flight. No cellular coverage up there: the tracker is offline."""
        return [
            (self.start + timedelta(seconds=a), self.start + timedelta(seconds=b))
            for a, b in self.plan.airborne_windows()
        ]

    def _timeline(self) -> tuple[list[float], list[_Conditions]]:
        """Cut the trip at every event edge; conditions are constant between consecutive cuts."""
        spans: list[tuple[float, float, Event | Literal["airborne"]]] = []
        for event in self.scenario.events:
            start_h, end_h = event.window_h()
            spans.append((start_h * 3600.0, end_h * 3600.0, event))
        for a, b in self.plan.door_windows():  # deliveries and hand-overs along the route
            spans.append((a, b, DoorOpening(at_h=a / 3600.0, duration_min=(b - a) / 60.0)))
        for a, b in self.plan.airborne_windows():
            spans.append((a, b, "airborne"))
        bounds = sorted({0.0, *(s[0] for s in spans), *(s[1] for s in spans)})
        conditions = []
        for i, start in enumerate(bounds):
            middle = (start + bounds[i + 1]) / 2 if i + 1 < len(bounds) else start + 1.0
            active = [what for a, b, what in spans if a <= middle < b]
            conditions.append(
                _Conditions(
                    door_open=any(isinstance(w, DoorOpening) for w in active),
                    compressor_down=any(isinstance(w, CompressorFailure) for w in active),
                    freeze=next((w for w in reversed(active) if isinstance(w, Freeze)), None),
                    ambient_delta_c=sum(w.delta_c for w in active if isinstance(w, AmbientShift)),
                    airborne="airborne" in active,
                    gps_blocked=any(isinstance(w, GpsDropout) for w in active),
                    probe_fault=next((w for w in active if isinstance(w, ProbeFault)), None),
                )
            )
        return bounds, conditions

    def _conditions_at(self, elapsed_s: float) -> tuple[int, _Conditions]:
        i = max(0, bisect.bisect_right(self._bounds, elapsed_s) - 1)
        return i, self._conditions[i]

    def samples(self, count: int | None = None) -> Iterator[Sample]:
        """The trip's readings in logging order; ``count`` readings (default :attr:`sample_count`), logging
        on at the destination if ``count`` reaches past the end of the trip."""
        s = self.scenario
        n = self.sample_count if count is None else count
        interval_s = self.interval_s
        noise = self.rng("sensor-noise")
        ambient_drift = OrnsteinUhlenbeck(mean=0.0, sigma=1.5, tau_s=12 * 3600.0, rng=self.rng("ambient"))
        weather_kpa = OrnsteinUhlenbeck(mean=101.3, sigma=0.8, tau_s=36 * 3600.0, rng=self.rng("weather"))
        cabin_kpa = self.rng("cabin").uniform(75.5, 79.5)
        gps = GpsReceiver(rng=self.rng("gps"), dropout_rate=s.gps_dropout_rate)
        battery = Battery(s.battery_start_pct)
        initial_c = s.setpoint_c + (noise.uniform(-0.3, 0.3) if s.container == "reefer" else 0.0)
        load = ThermalMass(initial_c)
        vapour_hpa = s.humidity_pct / 100.0 * saturation_vapour_pressure_hpa(initial_c)
        pcm_budget_ch = s.passive_hold_h * max(1.0, _PCM_REFERENCE_AMBIENT_C - s.setpoint_c)
        start_hour = self.start.hour + self.start.minute / 60.0
        without_cooling_tau_s = s.tau_without_cooling_h * 3600.0

        def ambient_c(elapsed_s: float, cond: _Conditions) -> float:
            if cond.airborne:
                return s.hold_c + cond.ambient_delta_c
            hour = start_hour + elapsed_s / 3600.0
            daily = s.ambient_swing_c * math.sin(2 * math.pi * (hour - 9.0) / 24.0)
            return s.ambient_c + daily + ambient_drift.value + cond.ambient_delta_c

        previous_s = 0.0
        for i in range(n):
            elapsed_s = i * interval_s
            step_s = elapsed_s - previous_s
            ambient_drift.step(step_s)
            weather_kpa.step(step_s)
            # Expose the load piece by piece, cutting at event edges.
            a = previous_s
            while a < elapsed_s:
                k, cond = self._conditions_at(a)
                b = min(elapsed_s, self._bounds[k + 1]) if k + 1 < len(self._bounds) else elapsed_s
                dt = b - a
                outside_c = ambient_c((a + b) / 2, cond)
                if cond.freeze is not None:
                    load.expose(cond.freeze.target_c, cond.freeze.tau_min * 60.0, dt)
                elif cond.door_open:
                    load.expose(outside_c, _DOOR_TAU_S, dt)
                elif s.container == "reefer" and not cond.compressor_down:
                    cycle_c = 0.5 * math.sin(2 * math.pi * (a + b) / 2 / _COMPRESSOR_CYCLE_S)
                    load.expose(s.setpoint_c + cycle_c, _REEFER_TAU_S, dt)
                elif s.container == "passive" and pcm_budget_ch > 0:
                    # The phase-change material holds the load near the setpoint while it lasts.
                    pcm_budget_ch -= abs(outside_c - s.setpoint_c) * dt / 3600.0
                    load.expose(s.setpoint_c + 0.02 * (outside_c - s.setpoint_c), _PCM_TAU_S, dt)
                else:
                    load.expose(outside_c, without_cooling_tau_s, dt)
                if cond.door_open:
                    outside_vapour = s.ambient_humidity_pct / 100.0 * saturation_vapour_pressure_hpa(outside_c)
                    vapour_hpa += (outside_vapour - vapour_hpa) * (1 - math.exp(-dt / _DOOR_HUMIDITY_TAU_S))
                elif s.container == "reefer" and not cond.compressor_down:
                    dried = s.humidity_pct / 100.0 * saturation_vapour_pressure_hpa(load.temperature_c)
                    vapour_hpa += (dried - vapour_hpa) * (1 - math.exp(-dt / _REEFER_HUMIDITY_TAU_S))
                a = b
            previous_s = elapsed_s
            # Whatever the air cannot hold condenses out.
            vapour_hpa = min(vapour_hpa, saturation_vapour_pressure_hpa(load.temperature_c))

            position = self.plan.at(elapsed_s)
            _, cond = self._conditions_at(elapsed_s)
            airborne = position.kind in ("climb", "cruise", "descent")
            ground_kpa = station_pressure_kpa(weather_kpa.value, position.elevation_m)
            if position.kind == "climb":
                true_kpa = ground_kpa + (cabin_kpa - ground_kpa) * position.phase_fraction
            elif position.kind == "cruise":
                true_kpa = cabin_kpa
            elif position.kind == "descent":
                true_kpa = cabin_kpa + (ground_kpa - cabin_kpa) * position.phase_fraction
            else:
                true_kpa = ground_kpa
            latitude, longitude = gps.fix(
                position.latitude,
                position.longitude,
                sky_visible=not cond.gps_blocked and (s.gps_in_flight or not airborne),
            )
            true_time = self.start + timedelta(seconds=elapsed_s)
            humidity = relative_humidity_pct(vapour_hpa, load.temperature_c) + noise.gauss(0.0, 0.8)
            measurement = Measurement(
                device_time=self.device_clock.read(true_time),
                temperature_c=(
                    cond.probe_fault.reading_c
                    if cond.probe_fault is not None
                    else round(load.temperature_c + noise.gauss(0.0, 0.05), 1)
                ),
                humidity_pct=round(min(100.0, max(0.0, humidity)), 1),
                pressure_kpa=round(true_kpa + noise.gauss(0.0, 0.03), 2),
                latitude=latitude,
                longitude=longitude,
                battery_pct=round(
                    battery.drain(step_s, temperature_c=load.temperature_c, gps_fix=latitude is not None), 1
                ),
            )
            yield Sample(
                true_time=true_time,
                measurement=measurement,
                position=position,
                load_c=load.temperature_c,
                airborne=airborne,
            )


def simulate_trip(
    scenario: Scenario, *, seed: int, start: datetime | None = None, count: int | None = None
) -> Iterator[Sample]:
    """The readings of ``scenario`` played with ``seed`` (see :meth:`Trip.samples`)."""
    return Trip(scenario, seed=seed, start=start).samples(count)
