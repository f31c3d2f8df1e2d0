"""Arrival estimates for urgent deliveries, and when the stability budget would run out on the way.

Three pure functions, composed by the ETA refresh:

- :func:`robust_speed`: how fast the shipment is really progressing, from the tracker's recent GPS fixes;
- :func:`budget_runs_out_at`: when the stability budget (REFERENCE §4) would be spent at the current
  temperature trend;
- :func:`estimate_eta`: remaining route distance over that speed, with bounds, and the "at risk" verdict
  (DESIGN, "Shipments, custody, ETA"): the ETA comes after the promised time, or after the budget runs out.

Nothing here reads a clock: every function takes ``now``. Datetimes must be timezone-aware; a naive one raises
``ValueError``, as do out-of-range numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import pairwise

import msgspec

from coldchain.domain.geo import Point, distance_m, remaining_route_m
from coldchain.domain.profiles import Direction
from coldchain.domain.utc import utc_text

__all__ = [
    "DEFAULT_ARRIVAL_RADIUS_M",
    "DEFAULT_MAX_SPEED_MPS",
    "DEFAULT_SPEED_WINDOW",
    "DEFAULT_STOP_SPEED_MPS",
    "EtaEstimate",
    "Fix",
    "SpeedEstimate",
    "budget_runs_out_at",
    "estimate_eta",
    "no_position_reason",
    "overdue_reason",
    "robust_speed",
]

#: Fastest ground speed we believe, whatever the mode: above a subsonic airliner riding a jet-stream tailwind
#: (the record is ~370 m/s). A GPS jump of even a few km between fixes a minute apart implies far more. Set it
#: lower per mode if need be; never below the vehicle's real top speed, or every fix after the first fast one
#: is thrown away.
DEFAULT_MAX_SPEED_MPS = 400.0

#: Below this segment speed (about 1 knot) the tracker counts as stopped: GPS jitter of a parked tracker
#: logging every minute or so stays under it.
DEFAULT_STOP_SPEED_MPS = 0.5

#: How far back :func:`robust_speed` looks: long enough to see a stop and the driving around it.
DEFAULT_SPEED_WINDOW = timedelta(hours=2)

#: A tracker this close to the destination has arrived.
DEFAULT_ARRIVAL_RADIUS_M = 500.0

#: The speed band of :func:`robust_speed`: percentiles of recent moving speeds (see its docstring for why).
_LOW_QUANTILE = 0.1
_HIGH_QUANTILE = 0.9

#: Estimates further out than this are not estimates; report none rather than a date years ahead.
_HORIZON = timedelta(days=365)


class Fix(msgspec.Struct, frozen=True, kw_only=True):
    """One GPS position of a tracker at an aware ``time`` (decimal degrees, WGS-84)."""

    time: datetime
    lat: float
    lon: float

    def __post_init__(self) -> None:
        _require_aware(self.time, "fix time")
        Point(lat=self.lat, lon=self.lon)  # validates the coordinates

    @property
    def point(self) -> Point:
        return Point(lat=self.lat, lon=self.lon)


class SpeedEstimate(msgspec.Struct, frozen=True, kw_only=True):
    """A speed over ground in m/s with its plausible range (see :func:`robust_speed` for the model).

    ``moving_fraction`` is the share of the window spent moving; ``fixes_used`` the fixes left after GPS jumps
    were dropped; ``jumps_dropped`` how many fixes were dropped as jumps.
    """

    speed_mps: float
    low_mps: float
    high_mps: float
    moving_fraction: float
    fixes_used: int
    jumps_dropped: int


class EtaEstimate(msgspec.Struct, frozen=True, kw_only=True):
    """The arrival estimate of one shipment at ``now``.

    ``remaining_m`` is the distance along the route plus ``off_route_m`` (the way back to the route).
    ``eta`` is ``None`` when no speed can be estimated (too few fixes, or stopped for the whole window);
    ``eta_high`` is also ``None`` when the low speed bound is 0. ``arrived`` means within the arrival radius of
    the destination: then every ETA is ``now``. ``reasons`` explains ``at_risk`` in words, one line per cause.
    """

    now: datetime
    remaining_m: float
    off_route_m: float
    speed: SpeedEstimate | None
    eta: datetime | None
    eta_low: datetime | None
    eta_high: datetime | None
    arrived: bool
    at_risk: bool
    reasons: list[str]


def robust_speed(
    fixes: Sequence[Fix],
    *,
    now: datetime,
    window: timedelta = DEFAULT_SPEED_WINDOW,
    max_speed_mps: float = DEFAULT_MAX_SPEED_MPS,
    stop_speed_mps: float = DEFAULT_STOP_SPEED_MPS,
    min_fixes: int = 3,
) -> SpeedEstimate | None:
    """The speed the shipment is making good, from its fixes within ``window`` before ``now``.

    Model, in three steps:

    1. GPS jumps. Fixes are taken in time order; a fix whose implied speed from the last kept fix exceeds
       ``max_speed_mps`` is dropped (the next fix is compared with the last kept one, so a single wild fix
       costs one fix, not two segments). If the very first fix of the window is the wild one, the second fix
       is plausible from the third but not from the first, and the first is dropped instead.
    2. Stops count as time that will recur. The segments between kept fixes are split into moving and stopped
       (below ``stop_speed_mps``); ``moving_fraction`` is the moving share of the window's time. A driver's
       break, a border queue or a transshipment wait in the last hours is likely to happen again, so the
       estimate is ``median moving speed × moving_fraction``: an hour's stop in a three-hour window gives two
       thirds of the driving speed, never zero, and never the driving speed as if the stop had not happened.
    3. Robust statistics. The median and the 10th and 90th percentiles of the moving segments' speeds are
       weighted by segment duration (irregular logging does not tilt them) and ignore the odd outlier that
       stays under ``max_speed_mps``. Bounds: ``low_mps`` is the 10th percentile with stops recurring;
       ``high_mps`` the 90th with no further stop. Why not the quartiles: on real vessel tracks
       (tests/benchmarks/bench_eta.py) an interquartile band held the true arrival about 30 % of the time,
       the 10–90 band about half the time; speed keeps changing after the window, so a band narrower than
       that promises more than it knows.

    ``None`` when fewer than ``min_fixes`` fixes remain after dropping jumps. A tracker that did not move in the
    whole window gets speed 0 (and no ETA from :func:`estimate_eta`).
    """
    _require_aware(now, "now")
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, got {window}")
    if not (math.isfinite(max_speed_mps) and max_speed_mps > stop_speed_mps >= 0):
        raise ValueError("need 0 <= stop_speed_mps < max_speed_mps")
    start = now - window
    recent = sorted((fix for fix in fixes if start <= fix.time <= now), key=lambda fix: fix.time)
    kept, lengths_m, jumps = _drop_jumps(recent, max_speed_mps)
    if len(kept) < max(min_fixes, 2):
        return None

    moving: list[tuple[float, float]] = []  # (speed_mps, duration_s)
    elapsed_s = 0.0
    for (a, b), length_m in zip(pairwise(kept), lengths_m, strict=True):
        duration_s = (b.time - a.time).total_seconds()
        elapsed_s += duration_s
        if length_m / duration_s >= stop_speed_mps:
            moving.append((length_m / duration_s, duration_s))
    moving_s = math.fsum(duration for _, duration in moving)
    if moving_s == 0.0:
        return SpeedEstimate(
            speed_mps=0.0, low_mps=0.0, high_mps=0.0, moving_fraction=0.0, fixes_used=len(kept), jumps_dropped=jumps
        )
    moving_fraction = moving_s / elapsed_s
    low, median, high = (_weighted_quantile(moving, q) for q in (_LOW_QUANTILE, 0.5, _HIGH_QUANTILE))
    return SpeedEstimate(
        speed_mps=median * moving_fraction,
        low_mps=low * moving_fraction,
        high_mps=high,
        moving_fraction=moving_fraction,
        fixes_used=len(kept),
        jumps_dropped=jumps,
    )


def estimate_eta(
    *,
    now: datetime,
    position: Point,
    route: Sequence[Point],
    fixes: Sequence[Fix],
    promised_at: datetime | None = None,
    budget: datetime | None = None,
    window: timedelta = DEFAULT_SPEED_WINDOW,
    max_speed_mps: float = DEFAULT_MAX_SPEED_MPS,
    arrival_radius_m: float = DEFAULT_ARRIVAL_RADIUS_M,
) -> EtaEstimate:
    """Estimated arrival at the end of ``route`` (origin → waypoints → destination) from ``position`` at ``now``.

    ``fixes`` feed :func:`robust_speed`; ``budget`` is the time the stability budget runs out (from
    :func:`budget_runs_out_at`), ``None`` when it does not. The ETA is ``now + remaining_m / speed``; its bounds
    divide the same distance by the high and low speed bounds.

    At risk (DESIGN, "Shipments, custody, ETA"), each cause with its reason:

    - the ETA is after ``promised_at``, or ``promised_at`` has passed and the shipment has not arrived
      ("overdue by 3 h", see :func:`overdue_reason`);
    - the budget runs out before the ETA, or has run out already and the shipment has not arrived.

    With no ETA (no speed) only the causes that need none can be known. An arrived shipment is never at risk:
    what happened on the way is judged by the excursion rules, not by the forecast.
    """
    _require_aware(now, "now")
    for name, moment in (("promised_at", promised_at), ("budget", budget)):
        if moment is not None:
            _require_aware(moment, name)
    progress = remaining_route_m(position, route)
    remaining_m = progress.remaining_m + progress.off_route_m
    speed = robust_speed(fixes, now=now, window=window, max_speed_mps=max_speed_mps)

    if distance_m(position, route[-1]) <= arrival_radius_m:
        return EtaEstimate(
            now=now,
            remaining_m=remaining_m,
            off_route_m=progress.off_route_m,
            speed=speed,
            eta=now,
            eta_low=now,
            eta_high=now,
            arrived=True,
            at_risk=False,
            reasons=[],
        )

    eta = eta_low = eta_high = None
    if speed is not None:
        eta = _after(now, remaining_m, speed.speed_mps)
        eta_low = _after(now, remaining_m, speed.high_mps)
        eta_high = _after(now, remaining_m, speed.low_mps)

    reasons: list[str] = []
    if promised_at is not None:
        overdue = overdue_reason(now=now, promised_at=promised_at)
        if overdue is not None:
            reasons.append(overdue)
        elif eta is not None and eta > promised_at:
            reasons.append(f"ETA {utc_text(eta)} after the promised {utc_text(promised_at)}")
    if budget is not None:
        if budget <= now:
            reasons.append(f"stability budget ran out at {utc_text(budget)} before arrival")
        elif eta is not None and budget < eta:
            reasons.append(f"stability budget runs out at {utc_text(budget)} before the ETA {utc_text(eta)}")
    return EtaEstimate(
        now=now,
        remaining_m=remaining_m,
        off_route_m=progress.off_route_m,
        speed=speed,
        eta=eta,
        eta_low=eta_low,
        eta_high=eta_high,
        arrived=False,
        at_risk=bool(reasons),
        reasons=reasons,
    )


def budget_runs_out_at(
    *,
    now: datetime,
    remaining_min: float,
    threshold_c: float,
    direction: Direction,
    recent: Sequence[tuple[datetime, float]],
    horizon: timedelta = _HORIZON,
) -> datetime | None:
    """When the stability budget runs out if the temperature keeps its current trend; ``None`` if it does not.

    Model: a least-squares line T(t) through ``recent`` (time, temperature °C) pairs, one reading giving a flat
    line. The budget is consumed only while T is beyond ``threshold_c`` (above it for ``direction="above"``,
    below it for ``"below"``; on the threshold is inside), one minute per minute (REFERENCE §4). With the
    "excess" e(t) = T(t) − threshold (mirrored for "below"), e(now) read off the fitted line:

    - e(now) > 0, beyond now: the budget runs out after ``remaining_min`` more minutes beyond. If the trend
      brings the temperature back inside before that, it stays inside from then on (a line crosses once), so
      the budget survives: ``None``.
    - e(now) ≤ 0 and trending toward the threshold: it crosses at t_c = −e(now)/slope; the budget runs out at
      ``now + t_c + remaining_min``.
    - e(now) ≤ 0 and flat or moving away: ``None``.

    A straight line is a screening model: a real temperature settles toward its surroundings instead of
    rising forever, so the answer is only as good as the next refresh, which recomputes it. Answers beyond
    ``horizon`` are ``None``: a drift that takes a year to cross is not a risk to a shipment.
    """
    _require_aware(now, "now")
    if not (math.isfinite(remaining_min) and remaining_min >= 0):
        raise ValueError(f"remaining_min must be a finite number >= 0, got {remaining_min}")
    if not math.isfinite(threshold_c):
        raise ValueError(f"threshold_c must be a finite number, got {threshold_c}")
    if direction not in ("above", "below"):
        raise ValueError(f"direction must be 'above' or 'below', got {direction!r}")
    if not recent:
        raise ValueError("need at least one recent reading to see a trend")
    for moment, temperature_c in recent:
        _require_aware(moment, "reading time")
        if not math.isfinite(temperature_c):
            raise ValueError(f"temperature must be a finite number, got {temperature_c}")

    value_now_c, slope_c_per_min = _fit_line([((t - now).total_seconds() / 60.0, c) for t, c in recent])
    sign = 1.0 if direction == "above" else -1.0
    excess_c = sign * (value_now_c - threshold_c)
    approach_c_per_min = sign * slope_c_per_min

    if excess_c > 0:
        if approach_c_per_min < 0 and excess_c / -approach_c_per_min < remaining_min:
            return None  # back inside before the budget is spent
        runs_out_min = remaining_min
    elif approach_c_per_min > 0:
        runs_out_min = -excess_c / approach_c_per_min + remaining_min
    else:
        return None
    if runs_out_min > horizon.total_seconds() / 60.0:
        return None
    return now + timedelta(minutes=runs_out_min)


def _drop_jumps(fixes: Sequence[Fix], max_speed_mps: float) -> tuple[list[Fix], list[float], int]:
    """Fixes in time order without GPS jumps (see :func:`robust_speed`, step 1), the length in metres of each
    segment between consecutive kept fixes, and how many fixes were dropped as jumps.

    A fix at the same time as the last kept one adds nothing and is skipped without counting as a jump.
    """

    def plausible(a: Fix, b: Fix, length_m: float) -> bool:
        return length_m <= max_speed_mps * (b.time - a.time).total_seconds()

    kept: list[Fix] = []
    lengths_m: list[float] = []
    jumps = 0
    for index, fix in enumerate(fixes):
        if not kept:
            kept.append(fix)
            continue
        if fix.time <= kept[-1].time:
            continue
        length_m = distance_m(kept[-1].point, fix.point)
        if plausible(kept[-1], fix, length_m):
            kept.append(fix)
            lengths_m.append(length_m)
            continue
        jumps += 1
        following = fixes[index + 1] if index + 1 < len(fixes) else None
        if (
            len(kept) == 1
            and following is not None
            and following.time > fix.time
            and plausible(fix, following, distance_m(fix.point, following.point))
            and not plausible(kept[0], following, distance_m(kept[0].point, following.point))
        ):
            kept[0] = fix  # the first fix was the wild one
    return kept, lengths_m, jumps


def _weighted_quantile(values: Sequence[tuple[float, float]], q: float) -> float:
    """The ``q`` quantile of (value, weight) pairs: the smallest value whose cumulative weight reaches q."""
    ordered = sorted(values)
    total = math.fsum(weight for _, weight in ordered)
    cumulative = 0.0
    for value, weight in ordered:
        cumulative += weight
        if cumulative >= q * total:
            return value
    return ordered[-1][0]


def _fit_line(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares line through (x, y) points: its value at x = 0 and its slope (flat for a single x)."""
    n = len(points)
    mean_x = math.fsum(x for x, _ in points) / n
    mean_y = math.fsum(y for _, y in points) / n
    sxx = math.fsum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0.0:
        return mean_y, 0.0
    slope = math.fsum((x - mean_x) * (y - mean_y) for x, y in points) / sxx
    return mean_y - slope * mean_x, slope


def overdue_reason(*, now: datetime, promised_at: datetime) -> str | None:
    """``"overdue by 3 h (promised 2026-11-27 09:00 UTC)"`` when ``promised_at`` has passed (a shipment not yet
    arrived), ``None`` before it."""
    _require_aware(now, "now")
    _require_aware(promised_at, "promised_at")
    if promised_at >= now:
        return None
    return f"overdue by {_span(now - promised_at)} (promised {utc_text(promised_at)})"


def no_position_reason(*, now: datetime, lookback: timedelta, tracked_since: datetime | None) -> str:
    """Why a shipment in transit without a GPS fix in the last ``lookback`` is at risk: nobody knows where it is.

    ``tracked_since`` is the start of its earliest tracker assignment (``None``: no tracker assigned). The silence
    is said as long as it is known: since tracking began when that is within the look-back, "more than" the
    look-back otherwise (older fixes are not read).
    """
    _require_aware(now, "now")
    if tracked_since is None:
        return "no position: no tracker is assigned"
    _require_aware(tracked_since, "tracked_since")
    if tracked_since > now - lookback:
        return f"no position for {_span(max(now - tracked_since, timedelta(0)))} (since tracking began)"
    return f"no position for more than {_span(lookback)}"


def _span(length: timedelta) -> str:
    """A duration in the largest whole unit that reads well: ``45 min``, ``26 h``, ``4 d``."""
    minutes = int(length.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 72:
        return f"{hours} h"
    return f"{hours // 24} d"


def _after(now: datetime, metres: float, speed_mps: float) -> datetime | None:
    """``now`` plus the time to cover ``metres`` at ``speed_mps``; ``None`` if never or beyond the horizon."""
    if speed_mps <= 0.0:
        return None
    seconds = metres / speed_mps
    if seconds > _HORIZON.total_seconds():
        return None
    return now + timedelta(seconds=seconds)


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
