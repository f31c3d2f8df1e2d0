"""Investigations for the document tests, built the way the service builds them: synthetic readings of two trackers
judged by the real domain engine (streams, the lot's budget, quarantined readings, the recommendation), charts
bucketed from the same readings (min, mean and max per bucket aligned to the Unix epoch, as the readings route
does), and decisions with their signatures computed over the evaluation snapshot.

The shipment: a freeze-sensitive vaccine at 2–8 °C, Helsinki → Oulu by road, two legs. On the way it warms above
8 °C for a little over two hours (the heat alarm; the lot's budget is spent from), dips below 0 °C for twenty minutes
(an excursion within the freeze rule's delay), its first probe reads -127 °C three times (a disconnected probe: a
sensor fault), the second tracker is silent for 100 minutes (a data gap), and one reading was quarantined at ingest.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import msgspec
import rfc8785

import coldchain
from coldchain.domain.certificate import Certificate, CertificateIntegrity, CustodyStep
from coldchain.domain.custody import CustodyKind, Location
from coldchain.domain.decisions import (
    MEANINGS,
    Decision,
    Outcome,
    Signature,
    evaluation_snapshot,
    jcs_sha256,
    needs_approval,
    record_content,
    record_sha256,
    waiting_reasons,
)
from coldchain.domain.evaluation import advance, new_state, stream_evaluation, stream_spendings
from coldchain.domain.excursions import Excursion
from coldchain.domain.exports import ReadingsDigest
from coldchain.domain.findings import StoredAlarm, StoredExcursion
from coldchain.domain.investigation import (
    Chart,
    ChartLimit,
    ChartPoint,
    ExcursionView,
    Identification,
    Integrity,
    Investigation,
    LegView,
    ReadingSpan,
    TrackerView,
    decision_views,
)
from coldchain.domain.judgement import is_late_detection, judge_shipment
from coldchain.domain.lot_budget import Spending
from coldchain.domain.profiles import AlarmRule, MktSettings, Profile
from coldchain.domain.quarantine import QuarantineFault
from coldchain.domain.readings import Reading
from coldchain.domain.shipments import Place

__all__ = [
    "CUSTODY",
    "PROFILE",
    "SHIPMENT_ID",
    "SignerSpec",
    "Trip",
    "bucket",
    "certificate",
    "chart_for",
    "investigation",
    "trip_readings",
]

SHIPMENT_ID = 4711
T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
GENERATED_AT = datetime(2026, 11, 27, 9, 15, 30, tzinfo=UTC)
CET_MIN = 120  # the trackers' clocks: Finnish winter time, UTC+02:00
BUDGET_RULE = "time out of refrigeration 8-25 °C"

PROFILE = Profile(
    id="vaccine-2-8-freeze",
    name="Freeze-sensitive vaccine, 2–8 °C",
    version=3,
    label_range_c=(2.0, 8.0),
    logging_interval_max_min=5,
    rules=(
        AlarmRule(name="heat", direction="above", threshold=8.0, inclusive=False, mode="consecutive",
                  delay_min=60, action="quarantine"),
        AlarmRule(name=BUDGET_RULE, direction="above", threshold=8.0, inclusive=False, mode="cumulative",
                  delay_min=720, scope="lifetime", action="reject"),
        AlarmRule(name="freeze", direction="below", threshold=0.0, inclusive=True, mode="consecutive",
                  delay_min=30, action="reject"),
        AlarmRule(name="extreme heat", direction="above", threshold=25.0, inclusive=False, mode="instant",
                  action="reject"),
    ),
    mkt=MktSettings(window="24h", limit_c=8.0),
)  # fmt: skip

#: Chart buckets a reader counts in (seconds).
_BUCKETS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass(frozen=True)
class Trip:
    """What happens on the way, in minutes after the start: warm spells and freeze dips (start, length, extreme
    °C), probe faults (start, count), silences (start, length)."""

    days: float = 3.0
    interval_min: float = 5.0
    warm: Sequence[tuple[float, float, float]] = ((1920.0, 130.0, 11.8),)
    cold: Sequence[tuple[float, float, float]] = ((2700.0, 20.0, -0.8),)
    faults: Sequence[tuple[float, int]] = ((600.0, 3),)
    silences: Sequence[tuple[float, float]] = ((3300.0, 100.0),)
    handover_min: float = 2160.0
    """Where the second tracker takes over (and the second leg begins)."""


@dataclass(frozen=True)
class SignerSpec:
    name: str
    email: str
    user_id: int


AMIRA = SignerSpec(name="Dr. Amira Haddad", email="amira.haddad@apteekki.example", user_id=31)
JONAS = SignerSpec(name="Jonas Berg", email="jonas.berg@apteekki.example", user_id=32)
LINNEA = SignerSpec(name="Linnea Virtanen", email="linnea.virtanen@apteekki.example", user_id=33)


@dataclass(frozen=True)
class DecisionSpec:
    outcome: Outcome
    signer: SignerSpec
    signed_at: datetime
    reason: str | None = None
    comment: str | None = None
    requires_approval: bool = False
    approver: SignerSpec | None = None
    approved_at: datetime | None = None
    evaluation_changed_at: datetime | None = None


DEFAULT_DECISIONS = (
    DecisionSpec(
        outcome="release",
        signer=AMIRA,
        signed_at=datetime(2026, 11, 27, 7, 40, 12, tzinfo=UTC),
        comment="Heat excursion of about two hours within the manufacturer's stability data.",
        requires_approval=True,
        approver=JONAS,
        approved_at=datetime(2026, 11, 27, 8, 5, 47, tzinfo=UTC),
    ),
    DecisionSpec(
        outcome="quarantine",
        signer=LINNEA,
        signed_at=datetime(2026, 11, 27, 9, 2, 3, tzinfo=UTC),
        reason="The freeze dip to -0.8 °C was not assessed in the release: the lot waits for the manufacturer.",
        comment="Manufacturer asked for the freeze-sensitivity data of this lot (case 2026-118).",
    ),
)


def _temperature(minute: float, trip: Trip, randomness: random.Random) -> float:
    for start, length, extreme in (*trip.warm, *trip.cold):
        if start <= minute < start + length:
            # a ramp up to the extreme and back, beyond the threshold over most of the spell
            phase = (minute - start) / length
            return round(extreme - (abs(phase - 0.5) * 2) ** 3 * (extreme - 5.0) * 0.4, 2)
    daily = 0.8 * math.sin(2 * math.pi * (minute % 1440) / 1440)
    return round(5.0 + daily + randomness.uniform(-0.4, 0.4), 2)


def trip_readings(trip: Trip, *, seed: int = 11) -> tuple[list[Reading], list[Reading]]:
    """The readings of the two trackers, in device time order (sequence numbers per tracker from 1)."""
    randomness = random.Random(seed)
    first: list[Reading] = []
    second: list[Reading] = []
    faulted = {round(start + index * trip.interval_min) for start, count in trip.faults for index in range(count)}
    total_min = trip.days * 1440
    minute = 0.0
    while minute < total_min:
        if any(start <= minute < start + length for start, length in trip.silences):
            minute += trip.interval_min
            continue
        log = first if minute < trip.handover_min else second
        temperature_c = -127.0 if round(minute) in faulted else _temperature(minute, trip, randomness)
        log.append(
            Reading(
                seq=len(log) + 1,
                device_time=T0 + timedelta(minutes=minute),
                utc_offset_min=CET_MIN,
                temperature_c=temperature_c,
                humidity_pct=round(48.0 + randomness.uniform(-3, 3), 1),
            )
        )
        minute += trip.interval_min
    return first, second


def _valid(reading: Reading) -> float | None:
    value = reading.temperature_c
    if value is None or math.isnan(value) or not -100.0 <= value <= 100.0:
        return None
    return value


def bucket(readings: Sequence[Reading], *, start: datetime, end: datetime, bucket_s: int) -> list[ChartPoint]:
    """Min, mean and max of the valid temperatures per ``bucket_s`` bucket aligned to the Unix epoch, over
    ``[start, end)``; buckets without a reading are left out."""
    sums: dict[int, list[float]] = {}
    for reading in readings:
        value = _valid(reading)
        if value is None or not start <= reading.device_time < end:
            continue
        key = int(reading.device_time.timestamp()) // bucket_s * bucket_s
        entry = sums.setdefault(key, [math.inf, -math.inf, 0.0, 0.0])
        entry[0] = min(entry[0], value)
        entry[1] = max(entry[1], value)
        entry[2] += value
        entry[3] += 1
    return [
        ChartPoint(
            at=datetime.fromtimestamp(key, UTC),
            min_c=low,
            mean_c=total / count,
            max_c=high,
            readings=int(count),
        )
        for key, (low, high, total, count) in sorted(sums.items())
    ]


def chart_limits(profile: Profile) -> list[ChartLimit]:
    """A line per temperature rule and the label range's bounds."""
    low_c, high_c = profile.label_range_c
    limits = [
        ChartLimit(label=rule.name, threshold_c=rule.threshold, direction=rule.direction, inclusive=rule.inclusive)
        for rule in profile.rules
        if rule.metric == "temperature" and rule.scope != "lifetime"
    ]
    limits += [
        ChartLimit(label="label range", threshold_c=high_c, direction="above"),
        ChartLimit(label="label range", threshold_c=low_c, direction="below"),
    ]
    return limits


def chart_for(
    readings: Sequence[Reading],
    excursions: Sequence[Excursion],
    *,
    start: datetime,
    end: datetime,
    profile: Profile = PROFILE,
    buckets: int = 300,
) -> Chart:
    """The chart of ``[start, end)`` with at most about ``buckets`` buckets of a round length."""
    span_s = (end - start).total_seconds()
    bucket_s = next((size for size in _BUCKETS if span_s / size <= buckets), _BUCKETS[-1])
    shaded = [
        (max(e.start, start), min(e.end or end, end))
        for e in excursions
        if e.start < end and (e.end is None or e.end > start)
    ]
    return Chart(
        start=start,
        end=end,
        bucket_s=bucket_s,
        points=bucket(readings, start=start, end=end, bucket_s=bucket_s),
        limits=chart_limits(profile),
        shaded=shaded,
    )


def _decisions(
    specs: Sequence[DecisionSpec], *, snapshot: str, snapshot_sha256: str, recommendation: Outcome
) -> list[Decision]:
    decisions: list[Decision] = []
    for seq, spec in enumerate(specs, start=1):
        content = record_content(
            shipment_id=SHIPMENT_ID,
            seq=seq,
            outcome=spec.outcome,
            reason=spec.reason,
            comment=spec.comment,
            snapshot_sha256=snapshot_sha256,
            user_id=spec.signer.user_id,
            name=spec.signer.name,
            email=spec.signer.email,
            signed_at=spec.signed_at,
        )
        digest = record_sha256(content)
        signatures = [
            Signature(
                role="decision",
                user_id=spec.signer.user_id,
                name=spec.signer.name,
                email=spec.signer.email,
                meaning=MEANINGS[spec.outcome],
                signed_at=spec.signed_at,
                record_sha256=digest,
            )
        ]
        if spec.approver is not None and spec.approved_at is not None:
            signatures.append(
                Signature(
                    role="approval",
                    user_id=spec.approver.user_id,
                    name=spec.approver.name,
                    email=spec.approver.email,
                    meaning=MEANINGS["approval"],
                    signed_at=spec.approved_at,
                    record_sha256=jcs_sha256({"approves": digest, "user_id": spec.approver.user_id}),
                )
            )
        decisions.append(
            Decision(
                id=900 + seq,
                shipment_id=SHIPMENT_ID,
                seq=seq,
                outcome=spec.outcome,
                reason=spec.reason,
                comment=spec.comment,
                recommendation=recommendation,
                snapshot_sha256=snapshot_sha256,
                snapshot=snapshot,
                record_sha256=digest,
                requires_approval=spec.requires_approval,
                signatures=signatures,
                created_at=spec.signed_at,
                evaluation_changed_at=spec.evaluation_changed_at,
                evaluation_changed_sha256=None if spec.evaluation_changed_at is None else "0" * 64,
            )
        )
    return decisions


@dataclass(frozen=True)
class _Parties:
    shipper: str = "Nordic Vaccines Oy"
    receiver: str = "Oulu University Hospital Pharmacy"
    carriers: tuple[str, str] = ("Arctic Reefer Transport", "Pohjola Cold Freight")
    serials: tuple[str, str] = ("TRK-20417", "TRK-20988")


def investigation(
    trip: Trip | None = None,
    *,
    decisions: Sequence[DecisionSpec] = DEFAULT_DECISIONS,
    reference: str = "SHP-2026-0042",
    parties: _Parties | None = None,
    overview_buckets: int = 300,
    excursion_buckets: int = 240,
) -> Investigation:
    """An investigation of the shipment above, as the service would assemble it."""
    trip = trip or Trip()
    parties = parties or _Parties()
    first, second = trip_readings(trip)
    streams = []
    spendings: list[Spending] = [Spending(stream_id=1, shipment_id=4000, rule=BUDGET_RULE, unplaced_min=185.0)]
    for stream_id, log in enumerate((first, second), start=11):
        state, _ = advance(PROFILE, new_state(PROFILE), log)
        streams.append(stream_evaluation(PROFILE, state))
        spendings += stream_spendings(PROFILE, state, stream_id=stream_id, shipment_id=SHIPMENT_ID)
    quarantined = [
        QuarantineFault(
            kind="temperature_c outside the physical range",
            first_at=T0 + timedelta(minutes=3000),
            last_at=T0 + timedelta(minutes=3000),
            readings=1,
        )
    ]
    judgement = judge_shipment(
        PROFILE, shipment_id=SHIPMENT_ID, streams=streams, lot_spendings=spendings, quarantined=quarantined
    )
    evaluation = judgement.evaluation
    digest = ReadingsDigest()
    for reading in sorted(
        [(r, parties.serials[0]) for r in first] + [(r, parties.serials[1]) for r in second],
        key=lambda item: (item[0].device_time, item[1], item[0].seq),
    ):
        digest.add(reading[1], reading[0], reading[0].device_time)
    readings_sha256 = digest.hexdigest()
    snapshot_value = evaluation_snapshot(
        shipment_id=SHIPMENT_ID,
        reference=reference,
        evaluation=evaluation,
        quarantined=quarantined,
        disposition=judgement.disposition,
        readings_sha256=readings_sha256,
    )
    snapshot = rfc8785.dumps(msgspec.to_builtins(snapshot_value)).decode()
    snapshot_sha256 = jcs_sha256(snapshot_value)

    all_readings = [*first, *second]
    start = T0
    end = T0 + timedelta(days=trip.days)
    handover = T0 + timedelta(minutes=trip.handover_min)
    custodians = {1: parties.carriers[0], 2: parties.carriers[1]}
    excursion_views = []
    for number, excursion in enumerate(evaluation.excursions, start=1):
        length = (excursion.end or end) - excursion.start
        pad = max(timedelta(hours=2), length)
        leg = 1 if excursion.start < handover else 2
        stored = StoredExcursion(
            id=700 + number,
            assignment_id=leg,
            shipment_id=SHIPMENT_ID,
            excursion=excursion,
            custodian_id=100 + leg,
            detected_at=excursion.start + timedelta(minutes=6),
            updated_at=(excursion.end or excursion.start) + timedelta(minutes=6),
            withdrawn_at=None,
        )
        excursion_views.append(
            ExcursionView(
                stored=stored,
                custodian_name=custodians[leg],
                chart=chart_for(
                    all_readings,
                    evaluation.excursions,
                    start=max(start, excursion.start - pad),
                    end=min(end, (excursion.end or end) + pad),
                    buckets=excursion_buckets,
                ),
            )
        )
    alarms = [
        StoredAlarm(
            id=800 + number,
            assignment_id=1 if alarm.began_at < handover else 2,
            shipment_id=SHIPMENT_ID,
            alarm=alarm,
            detected_at=alarm.met_at + timedelta(minutes=4),
            late=is_late_detection(alarm, alarm.met_at + timedelta(minutes=4)),
            acknowledged_at=alarm.met_at + timedelta(minutes=25),
            acknowledged_by="Mikko Laine <mikko.laine@arcticreefer.example> (org:7/user:12, logistics)",
            acknowledgement="Reefer door left open at the Kokkola depot; closed and unit checked.",
            escalated_at=None,
            withdrawn_at=None,
            updated_at=alarm.met_at + timedelta(minutes=25),
        )
        for number, alarm in enumerate(evaluation.alarms, start=1)
    ]
    made = _decisions(
        decisions,
        snapshot=snapshot,
        snapshot_sha256=snapshot_sha256,
        recommendation=judgement.disposition.recommendation,
    )
    views = decision_views(made)
    waiting = waiting_reasons(
        status="delivered",
        evaluation=evaluation,
        quarantined=quarantined,
        recommendation=judgement.disposition.recommendation,
        latest=made[-1] if made else None,
    )
    last_first, last_second = first[-1], second[-1]
    return Investigation(
        identification=Identification(
            shipment_id=SHIPMENT_ID,
            reference=reference,
            status="delivered",
            priority="urgent",
            product_id=55,
            product_name="Vaxigrip Tetra suspension for injection, prefilled syringe",
            gtin="05012345678900",
            lot_number="VX-24117B",
            lot_expires_on=date(2027, 5, 31),
            quantity=1200,
            origin=Place(name="Nordic Vaccines Oy, Vantaa warehouse", lat=60.2934, lon=25.0378),
            destination=Place(name="Oulu University Hospital Pharmacy", lat=65.0090, lon=25.5107),
            shipper_id=3,
            shipper_name=parties.shipper,
            receiver_id=9,
            receiver_name=parties.receiver,
            promised_at=end + timedelta(hours=2),
            legs=[
                LegView(leg_no=1, carrier_id=101, carrier_name=parties.carriers[0], mode="road"),
                LegView(leg_no=2, carrier_id=102, carrier_name=parties.carriers[1], mode="road"),
            ],
        ),
        trackers=[
            TrackerView(
                tracker_id=201,
                serial=parties.serials[0],
                model="Coldtrace LTE-4 (probe PT100)",
                calibration_due_on=date(2026, 10, 31),
                calibration_overdue=True,
                starts_at=start,
                ends_at=handover,
            ),
            TrackerView(
                tracker_id=202,
                serial=parties.serials[1],
                model="Coldtrace LTE-4 (probe PT100)",
                calibration_due_on=date(2027, 8, 15),
                calibration_overdue=False,
                starts_at=handover,
                ends_at=last_second.device_time + timedelta(minutes=5),
            ),
        ],
        profile=PROFILE,
        span=ReadingSpan(
            first_at=first[0].device_time,
            first_utc_offset_min=first[0].utc_offset_min,
            last_at=max(last_first.device_time, last_second.device_time),
            last_utc_offset_min=last_second.utc_offset_min,
        ),
        evaluation=evaluation,
        allowances=judgement.allowances,
        quarantined=quarantined,
        excursions=excursion_views,
        alarms=alarms,
        disposition=judgement.disposition,
        chart=chart_for(all_readings, evaluation.excursions, start=start, end=end, buckets=overview_buckets),
        decisions=views,
        waiting=waiting,
        integrity=Integrity(
            readings_sha256=readings_sha256,
            snapshot_sha256=snapshot_sha256,
            generated_at=GENERATED_AT,
            software=f"coldchain {coldchain.__version__}",
        ),
        snapshot=snapshot,
        approval_required=needs_approval("release", excursions=len(evaluation.excursions), policy_requires=True),
    )


@dataclass(frozen=True)
class _Step:
    kind: CustodyKind
    party: str
    counterparty: str | None
    place: Location
    minute: float
    signers: tuple[str, ...]
    note: str | None = None


#: The shipment's chain of custody: packed, picked up, one hand-over between the legs' carriers, arrival on a
#: tracker's evidence, delivery.
CUSTODY = (
    _Step(
        "packed",
        "Nordic Vaccines Oy",
        None,
        Location(lat=60.2934, lon=25.0378, name="Vantaa warehouse, dock 2"),
        -30,
        ("Aino Virtanen <aino.virtanen@nordicvaccines.example>, Nordic Vaccines Oy",),
        "Two pallets, 4 shippers each; trackers TRK-20417 and TRK-20988 started",
    ),
    _Step(
        "picked_up",
        "Arctic Reefer Transport",
        "Nordic Vaccines Oy",
        Location(lat=60.2934, lon=25.0378, name="Vantaa warehouse, dock 2"),
        0,
        ("API token 'dock scanner 3' of Arctic Reefer Transport",),
    ),
    _Step(
        "handed_over",
        "Pohjola Cold Freight",
        "Arctic Reefer Transport",
        Location(lat=62.2426, lon=25.7473, name="Jyväskylä cross-dock"),
        1440,
        (
            "Mikko Laine <mikko.laine@arcticreefer.example>, Arctic Reefer Transport",
            "Sanna Korhonen <sanna.korhonen@pohjolacold.example>, Pohjola Cold Freight",
        ),
        "Seal 448812 intact; reefer set point 5 °C",
    ),
    _Step(
        "arrived",
        "Pohjola Cold Freight",
        None,
        Location(lat=65.0090, lon=25.5107, name="Oulu University Hospital, goods entrance"),
        2 * 1440 + 300,
        ("coldchain, on the evidence of tracker TRK-20988 inside the destination's geofence",),
    ),
    _Step(
        "delivered",
        "Oulu University Hospital Pharmacy",
        "Pohjola Cold Freight",
        Location(lat=65.0090, lon=25.5107, name="Oulu University Hospital Pharmacy"),
        2 * 1440 + 330,
        ("Sanna Korhonen <sanna.korhonen@pohjolacold.example>, Pohjola Cold Freight",),
        "Received by the pharmacy's cold room; 8 shippers",
    ),
)


def certificate(subject: Investigation | None = None, *, draft: bool = False, intact: bool = True) -> Certificate:
    """A certificate of :func:`investigation`'s shipment with :data:`CUSTODY` as its chain (hashes chained the way
    the custody chain links them: each over the step and the hash before it)."""
    subject = subject or investigation()
    if draft:
        identification = msgspec.structs.replace(subject.identification, status="in_transit")
        subject = msgspec.structs.replace(subject, identification=identification)
    previous = hashlib.sha256(f"genesis {SHIPMENT_ID}".encode()).hexdigest()
    steps = []
    for seq, step in enumerate(CUSTODY[:3] if draft else CUSTODY, start=1):
        occurred = T0 + timedelta(minutes=step.minute)
        content = msgspec.json.encode([seq, step.kind, step.party, step.counterparty, occurred, previous])
        previous = hashlib.sha256(content).hexdigest()
        steps.append(
            CustodyStep(
                seq=seq,
                kind=step.kind,
                party=step.party,
                counterparty=step.counterparty,
                place=step.place,
                occurred_at=occurred,
                recorded_at=occurred + timedelta(seconds=42),
                signers=list(step.signers),
                note=step.note,
                hash=previous,
            )
        )
    integrity = subject.integrity
    return Certificate(
        certificate_id=f"{SHIPMENT_ID}-{integrity.generated_at.strftime('%Y%m%dT%H%M%SZ')}",
        draft=draft,
        investigation=subject,
        custody=steps,
        integrity=CertificateIntegrity(
            readings_sha256=integrity.readings_sha256,
            readings=subject.evaluation.readings,
            custody_head_seq=steps[-1].seq,
            custody_head_sha256=steps[-1].hash,
            custody_intact=intact,
            audit_head_id=1874,
            audit_head_sha256=hashlib.sha256(b"audit 1874").hexdigest(),
            snapshot_sha256=integrity.snapshot_sha256,
            generated_at=integrity.generated_at,
            software=integrity.software,
            key_id="kSbtq0uCq6bCqE7mDV5cBzK0TkbwCMnXxTPoc7BwO9E",
        ),
    )
