"""Physical models behind the tracker's sensors: load temperature, humidity, pressure, battery, GPS, clock.

Each model is small, deterministic given its random generator, and cheap per step (a fleet generates millions
of readings). The physics is deliberately simple but shaped like the real thing:

- Load temperature follows Newton's law of cooling towards whatever it is exposed to (the reefer's supply air,
  the ambient air through the insulation, the open door), stepped exactly for piecewise constant targets.
- Humidity keeps the air's vapour pressure and derives relative humidity from the Magnus formula, so a box
  that warms up gets drier and one that freezes condenses, as real loggers show.
- Pressure is the ICAO standard atmosphere at the ground's elevation on a slowly wandering weather pressure;
  airborne, the cargo hold follows the cabin, pressurised to a cabin altitude of 6,000-8,000 ft
  (75-81 kPa; 14 CFR 25.841 caps it at 8,000 ft).
- The device clock runs fast or slow by a fixed drift in parts per million, as quartz clocks do.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, tzinfo

__all__ = [
    "CABIN_PRESSURE_KPA",
    "SEA_LEVEL_PRESSURE_KPA",
    "Battery",
    "DeviceClock",
    "GpsReceiver",
    "OrnsteinUhlenbeck",
    "ThermalMass",
    "relative_humidity_pct",
    "saturation_vapour_pressure_hpa",
    "station_pressure_kpa",
]

SEA_LEVEL_PRESSURE_KPA = 101.325
CABIN_PRESSURE_KPA = (75.3, 81.2)
"""Cabin (and heated cargo hold) pressure at cruise: cabin altitude 8,000 ft down to 6,000 ft."""

_METRES_PER_DEGREE = 111_320.0


def saturation_vapour_pressure_hpa(temperature_c: float) -> float:
    """Magnus formula over water, coefficients of Alduchov & Eskridge (1996) as used by the WMO (2008)."""
    return 6.112 * math.exp(17.62 * temperature_c / (243.12 + temperature_c))


def relative_humidity_pct(vapour_pressure_hpa: float, temperature_c: float) -> float:
    """Relative humidity of air holding ``vapour_pressure_hpa`` at ``temperature_c``, capped at 100 %."""
    return min(100.0, max(0.0, 100.0 * vapour_pressure_hpa / saturation_vapour_pressure_hpa(temperature_c)))


def station_pressure_kpa(sea_level_kpa: float, elevation_m: float) -> float:
    """Pressure at ``elevation_m`` in the ICAO standard atmosphere (troposphere) for a sea-level pressure."""
    return float(sea_level_kpa * (1.0 - 2.25577e-5 * elevation_m) ** 5.25588)


class ThermalMass:
    """A load whose temperature relaxes towards a target with time constant ``tau_s`` (Newton's cooling)."""

    def __init__(self, temperature_c: float) -> None:
        self.temperature_c = temperature_c

    def expose(self, target_c: float, tau_s: float, dt_s: float) -> None:
        """Exact solution over ``dt_s`` for a constant target: T = target + (T0 - target)·e^(-dt/tau)."""
        if dt_s <= 0:
            return
        self.temperature_c = target_c + (self.temperature_c - target_c) * math.exp(-dt_s / tau_s)


class OrnsteinUhlenbeck:
    """A quantity wandering around ``mean`` (weather, drift): spread ``sigma``, memory ``tau_s``."""

    def __init__(self, *, mean: float, sigma: float, tau_s: float, rng: random.Random) -> None:
        self.mean, self.sigma, self.tau_s = mean, sigma, tau_s
        self._rng = rng
        self.value = mean + rng.gauss(0.0, sigma)

    def step(self, dt_s: float) -> float:
        """Advance by ``dt_s`` with the exact discretisation of the process; return the new value."""
        if dt_s > 0:
            decay = math.exp(-dt_s / self.tau_s)
            spread = self.sigma * math.sqrt(1.0 - decay * decay)
            self.value = self.mean + (self.value - self.mean) * decay + spread * self._rng.gauss(0.0, 1.0)
        return self.value


class DeviceClock:
    """The tracker's own clock: set ``offset_s`` off at ``start``, then drifting by ``drift_ppm``."""

    def __init__(self, *, start: datetime, drift_ppm: float, offset_s: float, tz: tzinfo) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be aware")
        self.start, self.drift_ppm, self.offset_s, self.tz = start, drift_ppm, offset_s, tz

    def error_s(self, true_time: datetime) -> float:
        """How far the device clock is ahead of true time at ``true_time`` (negative: behind)."""
        return self.offset_s + self.drift_ppm * 1e-6 * (true_time - self.start).total_seconds()

    def read(self, true_time: datetime) -> datetime:
        """What the device clock shows at ``true_time``, in the device's time zone."""
        return (true_time + timedelta(seconds=self.error_s(true_time))).astimezone(self.tz)


class GpsReceiver:
    """Fixes scattered around the true position (a few metres, as consumer GNSS receivers manage)."""

    def __init__(self, *, rng: random.Random, sigma_m: float = 4.0, dropout_rate: float = 0.0) -> None:
        self._rng, self.sigma_m, self.dropout_rate = rng, sigma_m, dropout_rate

    def fix(self, latitude: float, longitude: float, *, sky_visible: bool) -> tuple[float | None, float | None]:
        """A fix, or (None, None) without sky view (tunnel, hold of an aircraft) or on a random dropout."""
        if not sky_visible or self._rng.random() < self.dropout_rate:
            return None, None
        north_m, east_m = self._rng.gauss(0.0, self.sigma_m), self._rng.gauss(0.0, self.sigma_m)
        lat = latitude + north_m / _METRES_PER_DEGREE
        lon = longitude + east_m / (_METRES_PER_DEGREE * max(0.01, math.cos(math.radians(latitude))))
        lat = max(-90.0, min(90.0, lat))
        lon = (lon + 540.0) % 360.0 - 180.0
        return round(lat, 6), round(lon, 6)


class Battery:
    """A primary cell drained by time, by GPS fixes, and faster in the cold."""

    _IDLE_PCT_PER_H = 0.025
    _PER_FIX_PCT = 0.0015
    _COLD_PCT_PER_H = 0.02

    def __init__(self, level_pct: float) -> None:
        self.level_pct = level_pct

    def drain(self, dt_s: float, *, temperature_c: float, gps_fix: bool) -> float:
        hours = dt_s / 3600.0
        used = self._IDLE_PCT_PER_H * hours + (self._PER_FIX_PCT if gps_fix else 0.0)
        if temperature_c < 0.0:
            used += self._COLD_PCT_PER_H * hours
        self.level_pct = max(0.0, self.level_pct - used)
        return self.level_pct
