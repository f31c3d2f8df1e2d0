"""How the documents write times, durations and measured values: UTC spelled out, units beside every number.

A time is shown in UTC with the zone named (``2026-11-27 05:40 UTC``), never bare; a device's own clock is shown
with its UTC offset (``06:40 UTC+01:00``), as recorded (ALCOA+: original). A signature's time follows
:func:`coldchain.domain.decisions.signature_manifest` (seconds and the offset), the form every rendering of a
signature uses (21 CFR 11.50).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from coldchain.domain.profiles import Direction, Metric

__all__ = [
    "NONE",
    "UNITS",
    "condition",
    "count",
    "device_time",
    "duration",
    "hours",
    "measure",
    "number",
    "short_hash",
    "signed_at",
    "utc",
    "utc_exact",
    "utc_offset",
]

#: What a missing value reads as.
NONE = "—"

#: The unit of each metric, as the profile's thresholds are given (:class:`coldchain.domain.profiles.AlarmRule`).
UNITS: dict[Metric, str] = {"temperature": "°C", "humidity": "% RH", "pressure": "kPa"}


def utc(moment: datetime | None, *, seconds: bool = False) -> str:
    """``2026-11-27 05:40 UTC`` (with ``seconds``, ``05:40:12``)."""
    if moment is None:
        return NONE
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def utc_exact(moment: datetime | None) -> str:
    """A moment to the second, in UTC with the offset written out: ``2026-11-27 05:40:12 UTC+00:00``."""
    return NONE if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC+00:00")


def utc_offset(offset_min: int) -> str:
    """``UTC+01:00``, ``UTC-03:30``, ``UTC+00:00``."""
    sign = "-" if offset_min < 0 else "+"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"


def device_time(moment: datetime | None, offset_min: int | None) -> str:
    """A device time in UTC and, beside it, as the device's clock showed it with its offset:
    ``2026-11-27 05:40 UTC (device clock 2026-11-27 06:40 UTC+01:00)``."""
    if moment is None:
        return NONE
    if offset_min is None:
        return utc(moment)
    local = moment.astimezone(timezone(timedelta(minutes=offset_min)))
    return f"{utc(moment)} (device clock {local.strftime('%Y-%m-%d %H:%M')} {utc_offset(offset_min)})"


def signed_at(moment: datetime) -> str:
    """A signature's date and time, as :func:`coldchain.domain.decisions.signature_manifest` writes it."""
    return utc_exact(moment)


def short_hash(digest: str, length: int = 16) -> str:
    """The first ``length`` hex digits of a hash and an ellipsis: enough to find it, not to recompute it."""
    return digest if len(digest) <= length else f"{digest[:length]}…"


def duration(minutes: float | None) -> str:
    """``45 min``, ``10 h 05 min``, ``3 d 04 h 10 min`` (to the minute; under a minute, in seconds)."""
    if minutes is None:
        return NONE
    if 0 < minutes < 1:
        return f"{minutes * 60:.0f} s"
    whole = round(minutes)
    days, rest = divmod(whole, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours:02d} h {mins:02d} min"
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{mins} min"


def hours(minutes: float | None) -> str:
    """``24.0 h``: a length compared with a window counted in hours."""
    return NONE if minutes is None else f"{minutes / 60:.1f} h"


def count(value: int) -> str:
    """``43,200``."""
    return f"{value:,}"


def number(value: float | None, digits: int = 1) -> str:
    return NONE if value is None else f"{value:.{digits}f}"


def measure(value: float | None, metric: Metric = "temperature", digits: int = 1) -> str:
    """A measured value with its unit: ``8.4 °C``, ``76.0 % RH``, ``68.2 kPa``."""
    return NONE if value is None else f"{value:.{digits}f} {UNITS[metric]}"


def condition(direction: Direction, threshold: float, inclusive: bool | None, metric: Metric = "temperature") -> str:
    """A threshold as a reader compares against it: ``≥ 8 °C`` (on the threshold counts), ``< 0 °C`` (it does not);
    without ``inclusive`` (a label range's bound), ``above 8 °C``."""
    sign: str
    if inclusive is None:
        sign = direction
    elif direction == "above":
        sign = "≥" if inclusive else ">"
    else:
        sign = "≤" if inclusive else "<"
    return f"{sign} {threshold:g} {UNITS[metric]}"
