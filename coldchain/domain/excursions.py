"""What the evaluation finds in a reading log besides alarms: excursions, data gaps and sensor faults.

Each is a frozen Struct with a stable ``key``: re-judging the same data (after late readings, from a
checkpoint) produces the same keys, so a store can upsert by key and never record the same fact twice.

Time accounting (the convention of the whole engine): each reading's value holds from its own device time
until the next reading, never across a data gap (an interval longer than the profile's ``max_gap_min``), and a
reading without a valid value credits nothing.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

import msgspec

from coldchain.domain.profiles import Direction, Metric

__all__ = [
    "PHYSICAL_RANGES",
    "DataGap",
    "Excursion",
    "FaultReason",
    "SensorFault",
    "classify_fault",
]

FaultReason = Literal["missing", "not_a_number", "out_of_range"]

#: Values outside these ranges cannot be physical readings of a shipment sensor: they are sensor faults
#: (a disconnected probe often reads a fixed extreme), kept apart from excursions. Temperature follows the
#: project's Celsius vocabulary (−100 to +100 °C); humidity is a percentage; pressure covers sea level to a
#: depressurised hold and a sealed container.
PHYSICAL_RANGES: dict[Metric, tuple[float, float]] = {
    "temperature": (-100.0, 100.0),
    "humidity": (0.0, 100.0),
    "pressure": (0.0, 200.0),
}


def classify_fault(metric: Metric, value: float | None) -> FaultReason | None:
    """Why ``value`` is not a valid reading of ``metric``, or ``None`` when it is valid."""
    if value is None:
        return "missing"
    if math.isnan(value):
        return "not_a_number"
    low, high = PHYSICAL_RANGES[metric]
    if not low <= value <= high:
        return "out_of_range"
    return None


class Excursion(msgspec.Struct, frozen=True, kw_only=True, tag="excursion"):
    """A maximal run of readings beyond one rule's threshold.

    ``start`` is the device time of the first reading beyond the threshold, ``start_seq`` its sequence number.
    ``end`` is where the last credited beyond interval ends, normally the time of the first reading back
    within the threshold; ``None`` while the excursion is open. ``duration_min`` is the credited time beyond
    the threshold; ``uncredited_min`` is time inside the excursion that was not credited (a data gap or a
    faulted reading between two readings beyond the threshold: the excursion continues across it, but its time
    is counted neither in nor out of range). ``peak`` is the highest value (direction above) or the lowest
    (below). ``degree_min`` is Σ max(0, value − threshold)·Δt for above, Σ max(0, threshold − value)·Δt for
    below (REFERENCE §4). ``custodian`` is filled in by the service from the chain of custody.
    """

    rule: str
    metric: Metric
    direction: Direction
    threshold: float
    start: datetime
    start_seq: int
    end: datetime | None
    duration_min: float
    uncredited_min: float
    peak: float
    degree_min: float
    custodian: str | None = None

    @property
    def key(self) -> str:
        """Stable identity: rule and the reading that began it (time and sequence number)."""
        return f"excursion|{self.rule}|{self.start.isoformat()}|{self.start_seq}"

    @property
    def is_open(self) -> bool:
        return self.end is None


class DataGap(msgspec.Struct, frozen=True, kw_only=True, tag="gap"):
    """Two consecutive readings further apart than the profile's ``max_gap_min``: time nobody can vouch for.

    Nothing is credited between ``start`` (the reading before) and ``end`` (the reading after): a gap is
    reported, not interpolated (REFERENCE §1).
    """

    start: datetime
    end: datetime
    duration_min: float

    @property
    def key(self) -> str:
        return f"gap|{self.start.isoformat()}"


class SensorFault(msgspec.Struct, frozen=True, kw_only=True, tag="sensor_fault"):
    """A run of readings whose ``metric`` is missing, NaN or physically impossible.

    ``start`` is the first faulted reading (``start_seq`` its sequence number), ``end`` the next reading with
    a valid value (``None`` while the run continues), ``readings`` how many faulted readings the run holds. A
    run ends when the reason changes. ``first_value`` is the first faulted value when there was one (out of
    range), for the evidence.
    """

    metric: Metric
    reason: FaultReason
    start: datetime
    start_seq: int
    end: datetime | None
    readings: int
    first_value: float | None = None

    @property
    def key(self) -> str:
        return f"sensor_fault|{self.metric}|{self.start.isoformat()}|{self.start_seq}"

    @property
    def is_open(self) -> bool:
        return self.end is None
