"""Use cases of a pharmacist's investigation and decision: the worklist, the investigation, signing a decision,
approving one, and noticing when late data changes a signed evaluation.

Signing (21 CFR Part 11; the rules themselves are in :mod:`coldchain.domain.decisions`):

- only a pharmacist of a party of the shipment, signed in to the portal, signs (a token cannot; others get 403,
  and outside the parties the shipment does not exist: 404);
- the signer re-enters the password, and at the session's first signing the user id too (§11.200); a refused
  attempt is audited (:func:`coldchain.services.users.check_signer`);
- the request names the snapshot digest the signer saw: when the evaluation changed in between, nothing is
  signed (409) and the signer looks again. The signature covers the record's digest, which covers the snapshot's
  (§11.70);
- each decision, approval and refusal is an entry of the hash-chained audit trail (§11.10(e)).

A decision is recorded in the transaction that recomputes the snapshot, under a per-shipment lock, so two
signers at once get consecutive numbers and the second sees the first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec

from coldchain import __version__
from coldchain.domain.access import Principal
from coldchain.domain.decisions import (
    MEANINGS,
    Outcome,
    Signature,
    WorkItem,
    calibration_overdue,
    decision_state,
    evaluation_snapshot,
    jcs_bytes,
    jcs_sha256,
    needs_approval,
    record_content,
    waiting_reasons,
    work_order,
)
from coldchain.domain.disposition import SEVERITY
from coldchain.domain.exports import ReadingsDigest
from coldchain.domain.investigation import (
    Chart,
    ChartLimit,
    ChartPoint,
    DecisionView,
    ExcursionView,
    Identification,
    Integrity,
    Investigation,
    LegView,
    ReadingSpan,
    TrackerView,
    decision_views,
)
from coldchain.domain.readings import Reading
from coldchain.domain.shipments import Shipment
from coldchain.domain.users import LoginLimits
from coldchain.services.access import require, visible_shipment
from coldchain.services.errors import Conflict, Forbidden, Invalid, NotFound
from coldchain.services.evaluation import ShipmentJudgement, judgement_in
from coldchain.services.users import check_signer
from coldchain.storage import Store, Transaction

__all__ = [
    "EVALUATION_ACTOR",
    "MAX_EXCURSION_CHARTS",
    "MAX_TEXT_CHARS",
    "Snapshot",
    "approve_decision",
    "decide",
    "investigation",
    "recheck_decisions",
    "release_policy",
    "set_release_policy",
    "shipment_decisions",
    "tell_decision_needed",
    "touched_span",
    "worklist",
]

#: The longest reason or comment a decision keeps.
MAX_TEXT_CHARS = 2000
#: Excursions charted one by one in an investigation (all are listed; a shipment with more shows the first ones).
MAX_EXCURSION_CHARTS = 50
#: The audit trail's name for the service noticing a signed evaluation changed.
EVALUATION_ACTOR = "coldchain:evaluation"

_READINGS_PAGE = 10_000
_EVER_START = datetime(1970, 1, 1, tzinfo=UTC)
_EVER_END = datetime(9999, 1, 1, tzinfo=UTC)
#: Bucket lengths a chart may use, so its time axis falls on round minutes and hours.
_BUCKETS_S = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_WHOLE_CHART_POINTS = 480
_EXCURSION_CHART_POINTS = 240


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The evaluation snapshot of a shipment now: its canonical JSON, digest, and the readings' digest and span."""

    text: str
    sha256: str
    readings_sha256: str
    first: Reading | None
    last: Reading | None


# -- reading what a decision rests on --------------------------------------------------------------------------


async def readings_pass(tx: Transaction, shipment_id: int) -> tuple[str, int, Reading | None, Reading | None]:
    """The readings' SHA-256 (:class:`ReadingsDigest`: the SHA-256 of the readings CSV export's bytes), their
    number, and the first and last reading, in one pass by key, the export's own order."""
    digest = ReadingsDigest()
    first: Reading | None = None
    last: Reading | None = None
    after = None
    while True:
        page = await tx.shipment_readings(
            shipment_id, start=_EVER_START, end=_EVER_END, after=after, limit=_READINGS_PAGE
        )
        for item in page:
            digest.add(item.serial, item.reading, item.received_at)
        if page:
            first = first or page[0].reading
            last = page[-1].reading
            after = page[-1].key
        if len(page) < _READINGS_PAGE:
            return digest.hexdigest(), digest.count, first, last


async def _snapshot(tx: Transaction, judgement: ShipmentJudgement) -> Snapshot:
    # Once retention has removed readings of the shipment, the readings still held are no longer the whole log:
    # the seal kept then stands for them (coldchain.domain.retention).
    seal = await tx.readings_seal(judgement.shipment.id)
    if seal is not None:
        readings_sha256, first, last = seal.readings_sha256, seal.first, seal.last
    else:
        readings_sha256, _, first, last = await readings_pass(tx, judgement.shipment.id)
    content = evaluation_snapshot(
        shipment_id=judgement.shipment.id,
        reference=judgement.shipment.reference,
        evaluation=judgement.evaluation,
        quarantined=judgement.quarantined,
        disposition=judgement.disposition,
        readings_sha256=readings_sha256,
    )
    text = jcs_bytes(content)
    return Snapshot(
        text=text.decode(),
        sha256=hashlib.sha256(text).hexdigest(),
        readings_sha256=readings_sha256,
        first=first,
        last=last,
    )


async def _visible(tx: Transaction, principal: Principal, shipment_id: int) -> Shipment:
    shipment = await visible_shipment(tx, principal, shipment_id)
    require(principal, "read")
    return shipment


async def _policy_requires(tx: Transaction, principal: Principal, shipment: Shipment) -> bool:
    """The second-signature rule of the deciding organisation (the shipper's, for the operator)."""
    organisation_id = principal.organisation_id or shipment.organisation_id
    return await tx.release_needs_approval(organisation_id)


# -- the worklist ------------------------------------------------------------------------------------------------


async def worklist(store: Store, principal: Principal) -> list[WorkItem]:
    """Delivered shipments of the caller's organisation awaiting a decision, most urgent first
    (:func:`coldchain.domain.decisions.work_order`)."""
    require(principal, "read")
    items: list[WorkItem] = []
    async with store.transaction(snapshot=True) as tx:
        for shipment_id, changed_at in await tx.decidable_shipments(principal.organisation_id):
            decisions = await tx.decisions_of_shipment(shipment_id)
            latest = decisions[-1] if decisions else None
            if latest is not None and decision_state(latest, latest_seq=latest.seq) == "in_effect":
                continue  # a change after signing is marked at ingest (recheck_decisions)
            shipment = await tx.get_shipment(shipment_id)
            assert shipment is not None
            judgement = await judgement_in(tx, shipment)
            reasons = waiting_reasons(
                status=shipment.status,
                evaluation=judgement.evaluation,
                quarantined=judgement.quarantined,
                recommendation=judgement.disposition.recommendation,
                latest=latest,
            )
            if not reasons:
                continue
            product = await tx.get_product(shipment.product_id)
            lot = await tx.get_lot(shipment.lot_id) if shipment.lot_id is not None else None
            since = changed_at
            if latest is not None:
                since = latest.evaluation_changed_at or latest.created_at
            items.append(
                WorkItem(
                    shipment_id=shipment.id,
                    reference=shipment.reference,
                    status=shipment.status,
                    priority=shipment.priority,
                    product_name=product.name if product is not None else f"product {shipment.product_id}",
                    lot_number=lot.lot_number if lot is not None else None,
                    recommendation=judgement.disposition.recommendation,
                    excursions=len(judgement.evaluation.excursions),
                    alarms=len(judgement.evaluation.alarms),
                    reasons=reasons,
                    waiting_since=since,
                    latest_decision=latest,
                )
            )
    return sorted(items, key=work_order)


# -- the investigation -------------------------------------------------------------------------------------------


def _bucket_s(span_s: float, points: int) -> int:
    wanted = span_s / points
    return next((bucket for bucket in _BUCKETS_S if bucket >= wanted), _BUCKETS_S[-1])


async def _chart(
    tx: Transaction,
    judgement: ShipmentJudgement,
    *,
    start: datetime,
    end: datetime,
    points: int,
    limits: list[ChartLimit],
) -> Chart:
    bucket_s = _bucket_s(max((end - start).total_seconds(), 60.0), points)
    buckets = await tx.shipment_reading_buckets(judgement.shipment.id, start=start, end=end, seconds=bucket_s)
    chart_points = [
        ChartPoint(
            at=bucket.start,
            min_c=bucket.temperature_min_c,
            mean_c=bucket.temperature_mean_c,
            max_c=bucket.temperature_max_c,
            readings=bucket.readings,
        )
        for bucket in buckets
        if bucket.temperature_min_c is not None
        and bucket.temperature_mean_c is not None
        and bucket.temperature_max_c is not None
    ]
    last = judgement.evaluation.last_reading_at or end
    shaded = [
        (max(e.start, start), min(e.end or last, end))
        for e in judgement.evaluation.excursions
        if e.metric == "temperature" and e.start < end and (e.end or last) > start
    ]
    return Chart(start=start, end=end, bucket_s=bucket_s, points=chart_points, limits=limits, shaded=shaded)


def _limits(judgement: ShipmentJudgement) -> list[ChartLimit]:
    low_c, high_c = judgement.profile.label_range_c
    limits = [
        ChartLimit(label=f"label range low {low_c:g} °C", threshold_c=low_c, direction="below"),
        ChartLimit(label=f"label range high {high_c:g} °C", threshold_c=high_c, direction="above"),
    ]
    for rule in judgement.profile.rules:
        if rule.metric != "temperature" or rule.threshold in (low_c, high_c):
            continue
        sign = {("above", True): "≥", ("above", False): ">", ("below", True): "≤", ("below", False): "<"}[
            (rule.direction, rule.inclusive)
        ]
        limits.append(
            ChartLimit(
                label=f"{rule.name} {sign} {rule.threshold:g} °C", threshold_c=rule.threshold, direction=rule.direction
            )
        )
    return limits


async def investigation(store: Store, principal: Principal, shipment_id: int, *, now: datetime) -> Investigation:
    """Everything a pharmacist investigates before deciding on a shipment, and every decision made."""
    async with store.transaction(snapshot=True) as tx:
        shipment = await _visible(tx, principal, shipment_id)
        judgement = await judgement_in(tx, shipment)
        snapshot = await _snapshot(tx, judgement)
        names: dict[int, str] = {}
        for party in sorted(shipment.parties | {e.custodian_id for e in judgement.excursions if e.custodian_id}):
            organisation = await tx.get_organisation(party)
            if organisation is not None:
                names[party] = organisation.name
        product = await tx.get_product(shipment.product_id)
        lot = await tx.get_lot(shipment.lot_id) if shipment.lot_id is not None else None
        trackers: list[TrackerView] = []
        for assignment in await tx.assignments_of_shipment(shipment_id):
            tracker = await tx.get_tracker_by_id(assignment.tracker_id)
            if tracker is None:
                continue
            until = (assignment.ends_at or now).date()
            trackers.append(
                TrackerView(
                    tracker_id=tracker.id,
                    serial=tracker.serial,
                    model=tracker.model,
                    calibration_due_on=tracker.calibration_due_on,
                    calibration_overdue=calibration_overdue(tracker.calibration_due_on, on=until),
                    starts_at=assignment.starts_at,
                    ends_at=assignment.ends_at,
                )
            )
        limits = _limits(judgement)
        evaluation = judgement.evaluation
        first_at = evaluation.first_reading_at or shipment.created_at
        last_at = evaluation.last_reading_at or first_at
        whole = await _chart(
            tx, judgement, start=first_at, end=last_at + timedelta(seconds=1), points=_WHOLE_CHART_POINTS, limits=limits
        )
        excursion_views: list[ExcursionView] = []
        for index, stored in enumerate(judgement.excursions):
            excursion = stored.excursion
            ends = excursion.end or last_at
            pad = min(max(timedelta(minutes=30), (ends - excursion.start) / 2), timedelta(hours=12))
            chart = (
                await _chart(
                    tx,
                    judgement,
                    start=excursion.start - pad,
                    end=ends + pad,
                    points=_EXCURSION_CHART_POINTS,
                    limits=limits,
                )
                if index < MAX_EXCURSION_CHARTS and excursion.metric == "temperature"
                else None
            )
            excursion_views.append(
                ExcursionView(
                    stored=stored,
                    custodian_name=names.get(stored.custodian_id) if stored.custodian_id is not None else None,
                    chart=chart,
                )
            )
        decisions = await tx.decisions_of_shipment(shipment_id)
        policy = await _policy_requires(tx, principal, shipment)
    latest = decisions[-1] if decisions else None
    legs = [
        LegView(
            leg_no=leg.leg_no, carrier_id=leg.carrier_id, carrier_name=names.get(leg.carrier_id, "?"), mode=leg.mode
        )
        for leg in shipment.legs
    ]
    return Investigation(
        identification=Identification(
            shipment_id=shipment.id,
            reference=shipment.reference,
            status=shipment.status,
            priority=shipment.priority,
            product_id=shipment.product_id,
            product_name=product.name if product is not None else f"product {shipment.product_id}",
            gtin=product.gtin if product is not None else None,
            lot_number=lot.lot_number if lot is not None else None,
            lot_expires_on=lot.expires_on if lot is not None else None,
            quantity=shipment.quantity,
            origin=shipment.origin,
            destination=shipment.destination,
            shipper_id=shipment.organisation_id,
            shipper_name=names.get(shipment.organisation_id, "?"),
            receiver_id=shipment.receiver_id,
            receiver_name=names.get(shipment.receiver_id) if shipment.receiver_id is not None else None,
            promised_at=shipment.promised_at,
            legs=legs,
        ),
        trackers=trackers,
        profile=judgement.profile,
        span=ReadingSpan(
            first_at=snapshot.first.device_time if snapshot.first else None,
            first_utc_offset_min=snapshot.first.utc_offset_min if snapshot.first else None,
            last_at=snapshot.last.device_time if snapshot.last else None,
            last_utc_offset_min=snapshot.last.utc_offset_min if snapshot.last else None,
        ),
        evaluation=evaluation,
        allowances=judgement.allowances,
        quarantined=judgement.quarantined,
        excursions=excursion_views,
        alarms=judgement.alarms,
        disposition=judgement.disposition,
        chart=whole,
        decisions=decision_views(decisions),
        waiting=waiting_reasons(
            status=shipment.status,
            evaluation=evaluation,
            quarantined=judgement.quarantined,
            recommendation=judgement.disposition.recommendation,
            latest=latest,
        ),
        integrity=Integrity(
            readings_sha256=snapshot.readings_sha256,
            snapshot_sha256=snapshot.sha256,
            generated_at=now,
            software=f"coldchain {__version__}",
        ),
        snapshot=snapshot.text,
        approval_required=needs_approval("release", excursions=len(evaluation.excursions), policy_requires=policy),
    )


async def shipment_decisions(store: Store, principal: Principal, shipment_id: int) -> list[DecisionView]:
    async with store.transaction() as tx:
        await _visible(tx, principal, shipment_id)
        return decision_views(await tx.decisions_of_shipment(shipment_id))


# -- signing -----------------------------------------------------------------------------------------------------


def _text(value: str | None, name: str) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > MAX_TEXT_CHARS:
        raise Invalid(f"{name}: at most {MAX_TEXT_CHARS} characters")
    return value.strip()


async def _signing_shipment(store: Store, principal: Principal, shipment_id: int) -> Shipment:
    """The shipment, if the caller sees it (404 otherwise) and may sign for it (403 otherwise)."""
    async with store.transaction() as tx:
        shipment = await visible_shipment(tx, principal, shipment_id)
    if principal.is_operator or principal.role != "pharmacist":
        raise Forbidden("only a pharmacist of a party of the shipment signs a decision")
    require(principal, "decide")
    return shipment


async def decide(
    store: Store,
    principal: Principal,
    shipment_id: int,
    *,
    outcome: Outcome,
    snapshot_sha256: str,
    reason: str | None,
    comment: str | None,
    email: str | None,
    password: str,
    client: str,
    limits: LoginLimits,
    now: datetime,
) -> DecisionView:
    """Record and sign a decision on the evaluation whose snapshot digest the signer saw."""
    shipment = await _signing_shipment(store, principal, shipment_id)
    reason, comment = _text(reason, "reason"), _text(comment, "comment")
    if shipment.status not in ("delivered", "closed"):
        raise Conflict(f"the shipment is {shipment.status}: a disposition is decided once it has been delivered")
    subject = f"shipment:{shipment_id}"
    first_of_session = await check_signer(
        store, principal, email=email, password=password, client=client, limits=limits, subject=subject, now=now
    )
    assert principal.user_id is not None and principal.user_name and principal.user_email
    assert principal.organisation_id is not None and principal.session_sha256 is not None
    async with store.transaction() as tx:
        await tx.lock_decisions(shipment_id)
        judgement = await judgement_in(tx, shipment)
        snapshot = await _snapshot(tx, judgement)
        if snapshot.sha256 != snapshot_sha256:
            raise Conflict(
                "the evaluation changed since it was shown (its snapshot is now "
                f"{snapshot.sha256}): review it again before signing"
            )
        earlier = await tx.decisions_of_shipment(shipment_id)
        recommendation = judgement.disposition.recommendation
        if earlier and reason is None:
            raise Invalid(f"reason: say why this decision changes decision {earlier[-1].seq}")
        if SEVERITY[outcome] < SEVERITY[recommendation] and reason is None:
            raise Invalid(f"reason: say why you decide {outcome} where the evaluation recommends {recommendation}")
        seq = len(earlier) + 1
        content = record_content(
            shipment_id=shipment_id,
            seq=seq,
            outcome=outcome,
            reason=reason,
            comment=comment,
            snapshot_sha256=snapshot.sha256,
            user_id=principal.user_id,
            name=principal.user_name,
            email=principal.user_email,
            signed_at=now,
        )
        record_sha256 = jcs_sha256(content)
        requires_approval = needs_approval(
            outcome,
            excursions=len(judgement.evaluation.excursions),
            policy_requires=await tx.release_needs_approval(principal.organisation_id),
        )
        decision_id = await tx.insert_decision(
            shipment_id=shipment_id,
            seq=seq,
            organisation_id=principal.organisation_id,
            outcome=outcome,
            reason=reason,
            comment=comment,
            recommendation=recommendation,
            snapshot_sha256=snapshot.sha256,
            snapshot=snapshot.text,
            record_sha256=record_sha256,
            requires_approval=requires_approval,
            created_at=now,
        )
        signature = Signature(
            role="decision",
            user_id=principal.user_id,
            name=principal.user_name,
            email=principal.user_email,
            meaning=MEANINGS[outcome],
            signed_at=now,
            record_sha256=record_sha256,
        )
        await tx.insert_signature(decision_id, signature)
        await tx.mark_session_signed(principal.session_sha256, now=now)
        detail = {
            "decision": decision_id,
            "seq": seq,
            "outcome": outcome,
            "meaning": MEANINGS[outcome],
            "reason": reason,
            "comment": comment,
            "recommendation": recommendation,
            "snapshot_sha256": snapshot.sha256,
            "record_sha256": record_sha256,
            "requires_approval": requires_approval,
            "supersedes": earlier[-1].id if earlier else None,
            "first_of_session": first_of_session,
        }
        await tx.append_audit(
            actor=principal.actor,
            action="decision.signed",
            subject=subject,
            detail=msgspec.json.encode(detail).decode(),
            now=now,
        )
        if requires_approval:
            await tell_decision_needed(tx, shipment, now=now)  # another pharmacist's QA approval
        return decision_views(await tx.decisions_of_shipment(shipment_id))[-1]


async def approve_decision(
    store: Store,
    principal: Principal,
    shipment_id: int,
    decision_id: int,
    *,
    email: str | None,
    password: str,
    client: str,
    limits: LoginLimits,
    now: datetime,
) -> DecisionView:
    """Give a release its second signature (QA approval): another pharmacist than the one who decided, on the
    evaluation it was decided on."""
    shipment = await _signing_shipment(store, principal, shipment_id)
    async with store.transaction() as tx:
        decision = next((d for d in await tx.decisions_of_shipment(shipment_id) if d.id == decision_id), None)
    if decision is None:
        raise NotFound(f"shipment {shipment_id} has no decision {decision_id}")
    if any(signature.user_id == principal.user_id for signature in decision.signatures):
        raise Forbidden("the second signature must be another pharmacist's: you signed this decision")
    subject = f"shipment:{shipment_id}/decision:{decision_id}"
    first_of_session = await check_signer(
        store, principal, email=email, password=password, client=client, limits=limits, subject=subject, now=now
    )
    assert principal.user_id is not None and principal.user_name and principal.user_email
    assert principal.session_sha256 is not None
    async with store.transaction() as tx:
        await tx.lock_decisions(shipment_id)
        decisions = await tx.decisions_of_shipment(shipment_id)
        current = next(d for d in decisions if d.id == decision_id)
        state = decision_state(current, latest_seq=decisions[-1].seq)
        if state != "awaiting_approval":
            raise Conflict(f"decision {current.seq} is not awaiting approval (it is {state.replace('_', ' ')})")
        snapshot = await _snapshot(tx, await judgement_in(tx, shipment))
        if snapshot.sha256 != current.snapshot_sha256:
            raise Conflict("the evaluation changed after the decision was signed: it cannot be approved")
        signature = Signature(
            role="approval",
            user_id=principal.user_id,
            name=principal.user_name,
            email=principal.user_email,
            meaning=MEANINGS["approval"],
            signed_at=now,
            record_sha256=current.record_sha256,
        )
        await tx.insert_signature(decision_id, signature)
        await tx.mark_session_signed(principal.session_sha256, now=now)
        detail = {
            "decision": decision_id,
            "seq": current.seq,
            "meaning": MEANINGS["approval"],
            "record_sha256": current.record_sha256,
            "first_of_session": first_of_session,
        }
        await tx.append_audit(
            actor=principal.actor,
            action="decision.approved",
            subject=subject,
            detail=msgspec.json.encode(detail).decode(),
            now=now,
        )
        return decision_views(await tx.decisions_of_shipment(shipment_id))[current.seq - 1]


# -- late data after a signature ---------------------------------------------------------------------------------


def touched_span(times: Sequence[datetime]) -> tuple[datetime, datetime] | None:
    """The first and last of the device times a batch brought (quarantined ones included), leaving out those that
    have no UTC form at all (such a reading is quarantined and belongs to no assignment).

    The earliest and the latest instant bound the others: when both have a UTC form, so do all, and they are the
    span (the usual batch, without converting every time)."""
    if not times:
        return None
    try:
        return min(times).astimezone(UTC), max(times).astimezone(UTC)
    except (OverflowError, ValueError, TypeError):
        pass
    usable = []
    for moment in times:
        try:
            usable.append(moment.astimezone(UTC))
        except (OverflowError, ValueError):
            continue
    return (min(usable), max(usable)) if usable else None


async def recheck_decisions(
    tx: Transaction, tracker_id: int, *, earliest: datetime, latest: datetime, now: datetime
) -> None:
    """After readings of ``tracker_id`` between ``earliest`` and ``latest`` were stored (or quarantined) in ``tx``:
    mark each signed decision whose evaluation they changed, with an audit entry; its shipment returns to the
    worklist."""
    for shipment_id in await tx.decided_shipments_of_tracker(tracker_id, earliest=earliest, latest=latest):
        shipment = await tx.get_shipment(shipment_id)
        decisions = await tx.decisions_of_shipment(shipment_id)
        if shipment is None or not decisions:
            continue
        latest_decision = decisions[-1]
        snapshot = await _snapshot(tx, await judgement_in(tx, shipment))
        if snapshot.sha256 == latest_decision.snapshot_sha256:
            continue
        await tx.mark_decision_changed(latest_decision.id, at=now, sha256=snapshot.sha256)
        detail = {
            "decision": latest_decision.id,
            "seq": latest_decision.seq,
            "signed_snapshot_sha256": latest_decision.snapshot_sha256,
            "snapshot_sha256": snapshot.sha256,
            "tracker": tracker_id,
        }
        await tx.append_audit(
            actor=EVALUATION_ACTOR,
            action="decision.evaluation_changed",
            subject=f"shipment:{shipment_id}",
            detail=msgspec.json.encode(detail).decode(),
            now=now,
        )
        await tell_decision_needed(tx, shipment, now=now)


# -- telling people a decision is needed -----------------------------------------------------------------------


async def tell_decision_needed(tx: Transaction, shipment: Shipment, *, now: datetime) -> bool:
    """Publish ``decision.needed`` to the shipment's parties when it waits for a pharmacist (the worklist's rule,
    :func:`~coldchain.domain.decisions.waiting_reasons`); whether it does. Called in the transaction that made it
    wait: the shipment delivered, the evaluation changed after a signature, a release awaiting its QA approval."""
    decisions = await tx.decisions_of_shipment(shipment.id)
    latest = decisions[-1] if decisions else None
    judgement = await judgement_in(tx, shipment)
    reasons = waiting_reasons(
        status=shipment.status,
        evaluation=judgement.evaluation,
        quarantined=judgement.quarantined,
        recommendation=judgement.disposition.recommendation,
        latest=latest,
    )
    if not reasons:
        return False
    await tx.publish(
        "decision.needed",
        organisation_ids=shipment.parties,
        subject=f"shipment:{shipment.id}",
        payload={
            "shipment_id": shipment.id,
            "reference": shipment.reference,
            "recommendation": judgement.disposition.recommendation,
            "reasons": list(reasons),
            "decision": None if latest is None else latest.seq,
        },
        now=now,
        shipment_id=shipment.id,
    )
    return True


# -- the organisation's rule ---------------------------------------------------------------------------------------


async def release_policy(store: Store, principal: Principal, organisation_id: int) -> bool:
    if not principal.acts_for(organisation_id):
        raise NotFound(f"no organisation {organisation_id}")
    async with store.transaction() as tx:
        if await tx.get_organisation(organisation_id) is None:
            raise NotFound(f"no organisation {organisation_id}")
        return await tx.release_needs_approval(organisation_id)


async def set_release_policy(
    store: Store, principal: Principal, organisation_id: int, *, required: bool, now: datetime
) -> bool:
    """Require (or stop requiring) a second signature on a release after an excursion (the organisation's admin)."""
    if not principal.acts_for(organisation_id):
        raise NotFound(f"no organisation {organisation_id}")
    require(principal, "manage")
    async with store.transaction() as tx:
        if await tx.get_organisation(organisation_id) is None:
            raise NotFound(f"no organisation {organisation_id}")
        before = await tx.release_needs_approval(organisation_id)
        await tx.set_release_needs_approval(organisation_id, required)
        detail = {"release_needs_approval": required, "before": before}
        await tx.append_audit(
            actor=principal.actor,
            action="organisation.release_policy",
            subject=f"organisation:{organisation_id}",
            detail=msgspec.json.encode(detail).decode(),
            now=now,
        )
    return required
