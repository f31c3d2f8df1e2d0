"""The excursion investigation of a shipment: one read model, shown as a portal page, as JSON and as a PDF report.

It carries what REFERENCE §6 asks of a report: identification (shipment, product, lot, quantity, origin,
destination, carrier per leg), the trackers (serial, model, calibration due date), the profile version with
every rule, the data summary (start and stop with their UTC offsets, readings, gaps, min/max/mean, MKT with ΔH,
window and coverage), each excursion with its custodian and a chart of the readings around it with the limits,
each rule's status, the lot budget, sensor faults and quarantined readings, the recommendation with its reasons,
the decisions with their signatures, and the integrity block (the readings' SHA-256, the snapshot's SHA-256,
generation time, software version). The service assembles it; renderings never compute a rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Literal

import msgspec

from coldchain.domain.decisions import Decision, DecisionState, WaitingReason, decision_state
from coldchain.domain.disposition import Disposition
from coldchain.domain.evaluation import Evaluation
from coldchain.domain.findings import StoredAlarm, StoredExcursion
from coldchain.domain.profiles import Direction, Profile
from coldchain.domain.quarantine import QuarantineFault
from coldchain.domain.shipments import Mode, Place, Priority, ShipmentStatus

__all__ = [
    "Chart",
    "ChartLimit",
    "ChartPoint",
    "DecisionView",
    "ExcursionView",
    "Identification",
    "Integrity",
    "Investigation",
    "LegView",
    "ReadingSpan",
    "TrackerView",
    "decision_views",
]


class LegView(msgspec.Struct, frozen=True, kw_only=True):
    leg_no: int
    carrier_id: int
    carrier_name: str
    mode: Mode


class Identification(msgspec.Struct, frozen=True, kw_only=True):
    shipment_id: int
    reference: str
    status: ShipmentStatus
    priority: Priority
    product_id: int
    product_name: str
    gtin: str | None
    lot_number: str | None
    lot_expires_on: date | None
    quantity: int
    origin: Place
    destination: Place
    shipper_id: int
    shipper_name: str
    receiver_id: int | None
    receiver_name: str | None
    promised_at: datetime | None
    legs: list[LegView]


class TrackerView(msgspec.Struct, frozen=True, kw_only=True):
    """A tracker as it watched the shipment: its assignment and its readings within it."""

    tracker_id: int
    serial: str
    model: str | None
    calibration_due_on: date | None
    calibration_overdue: bool
    """The calibration was due before the assignment ended (or before today, while it is open)."""
    starts_at: datetime
    ends_at: datetime | None


class ReadingSpan(msgspec.Struct, frozen=True, kw_only=True):
    """Start and stop of the data in device time, each with the device's own UTC offset (ALCOA+: original)."""

    first_at: datetime | None
    first_utc_offset_min: int | None
    last_at: datetime | None
    last_utc_offset_min: int | None


class ChartPoint(msgspec.Struct, frozen=True, kw_only=True):
    """Temperature over ``[at, at + bucket_s)``: the readings' min, mean and max (one reading: all three equal)."""

    at: datetime
    min_c: float
    mean_c: float
    max_c: float
    readings: int


class ChartLimit(msgspec.Struct, frozen=True, kw_only=True):
    """A temperature threshold drawn as a line: a rule's, or the label range's bounds."""

    label: str
    threshold_c: float
    direction: Direction
    inclusive: bool | None = None
    """A rule's: whether a value on the threshold counts as beyond it (drawn as ≥ or ≤, else > or <); ``None``
    for a bound of the label range, which is no rule."""


class Chart(msgspec.Struct, frozen=True, kw_only=True):
    """Temperature over ``[start, end)`` in ``bucket_s`` buckets, with the limits and the excursions shaded."""

    start: datetime
    end: datetime
    bucket_s: int
    points: list[ChartPoint]
    limits: list[ChartLimit]
    shaded: list[tuple[datetime, datetime]]
    """Excursion spans within the chart (an open one up to the chart's end)."""


class ExcursionView(msgspec.Struct, frozen=True, kw_only=True):
    stored: StoredExcursion
    custodian_name: str | None
    chart: Chart | None
    """The readings around it with the limits (temperature excursions; ``None`` past the first fifty)."""


class DecisionView(msgspec.Struct, frozen=True, kw_only=True):
    decision: Decision
    state: DecisionState
    superseded_by: int | None = None
    """The ``seq`` of the decision that superseded this one (the next one made), when it is superseded."""


def decision_views(decisions: Sequence[Decision]) -> list[DecisionView]:
    """The shipment's decisions oldest first, each with its state (:func:`decision_state`) and, when superseded,
    the decision that superseded it: the next one, which was made with a reason for the change."""
    ordered = sorted(decisions, key=lambda decision: decision.seq)
    latest_seq = ordered[-1].seq if ordered else 0
    return [
        DecisionView(
            decision=decision,
            state=decision_state(decision, latest_seq=latest_seq),
            superseded_by=ordered[index + 1].seq if decision.seq < latest_seq else None,
        )
        for index, decision in enumerate(ordered)
    ]


class Integrity(msgspec.Struct, frozen=True, kw_only=True):
    readings_sha256: str
    """SHA-256 of the readings CSV export (``GET /v1/shipments/{id}/readings.csv``), the raw readings the report
    rests on (:class:`coldchain.domain.exports.ReadingsDigest`)."""
    snapshot_sha256: str
    """SHA-256 of the evaluation snapshot a decision signs (RFC 8785 bytes)."""
    generated_at: datetime
    software: str
    """``coldchain <version>``."""


class Investigation(msgspec.Struct, frozen=True, kw_only=True):
    identification: Identification
    trackers: list[TrackerView]
    profile: Profile
    span: ReadingSpan
    evaluation: Evaluation
    """The shipment's streams combined, lifetime budgets on the lot's timeline."""
    allowances: dict[str, float | None]
    quarantined: list[QuarantineFault]
    excursions: list[ExcursionView]
    alarms: list[StoredAlarm]
    disposition: Disposition
    chart: Chart
    """The whole shipment."""
    decisions: list[DecisionView]
    """Oldest first."""
    waiting: list[WaitingReason]
    """Why the shipment is on the worklist (empty: it is not)."""
    integrity: Integrity
    snapshot: str
    """The evaluation snapshot's canonical JSON: what a decision made now would sign."""
    approval_required: Literal[True, False]
    """A release now would need a second signature (the deciding organisation's policy, an excursion)."""
