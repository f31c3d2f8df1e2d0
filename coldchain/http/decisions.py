"""The pharmacist's investigation and decision: the worklist, the investigation as JSON, decisions with their
electronic signatures, the organisation's second-signature rule and trackers' calibration.

A decision is signed by a person: the signing routes take a portal session (``POST /v1/session`` signs in and
gives the CSRF token), never an API token (403). The body carries the password, and at the session's first
signing the email too (21 CFR 11.200), and the ``snapshot_sha256`` of the investigation the signer read: when the
evaluation has changed since, nothing is signed (409).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from coldchain.documents.report import report_pdf
from coldchain.domain.decisions import (
    Decision,
    DecisionState,
    Outcome,
    Signature,
    SignatureRole,
    WaitingReason,
    WorkItem,
    decision_state,
    signature_manifest,
)
from coldchain.domain.disposition import Recommendation
from coldchain.domain.investigation import (
    Chart,
    DecisionView,
    Identification,
    Integrity,
    Investigation,
    ReadingSpan,
    TrackerView,
)
from coldchain.domain.profiles import Profile
from coldchain.domain.shipments import Priority, ShipmentStatus
from coldchain.domain.users import LoginLimits
from coldchain.http.deps import NowDep, PrincipalDep, SettingsDep, StoreDep
from coldchain.http.evaluation import ExcursionOut, ShipmentStatusOut, excursion_out, status_parts_out
from coldchain.http.limits import client_address
from coldchain.http.openapi import BEARER, BUSY, SESSION, errors
from coldchain.http.wire import BodyIn, PathId
from coldchain.services import decisions as use_cases
from coldchain.services import trackers
from coldchain.settings import Settings

__all__ = ["DecisionApi", "InvestigationOut", "decision_out", "login_limits", "pdf_response", "worklist"]

Sha256 = Annotated[str, Meta(pattern="^[0-9a-f]{64}$", description="a SHA-256 digest in lower-case hex")]
Text = Annotated[str, Meta(max_length=use_cases.MAX_TEXT_CHARS)]
Password = Annotated[str, Meta(min_length=1, max_length=256)]
Email = Annotated[str, Meta(min_length=3, max_length=254)]


class DecisionIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    outcome: Outcome
    snapshot_sha256: Sha256
    """``integrity.snapshot_sha256`` of the investigation the signer read."""
    reason: Text | None = None
    """Required when the decision changes an earlier one, or is less strict than the recommendation."""
    comment: Text | None = None
    password: Password
    """The signer's password, entered again at every signing (21 CFR 11.200)."""
    email: Email | None = None
    """The signer's email (user id): required at the first signing of a session."""


class ApprovalIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    password: Password
    email: Email | None = None
    """The signer's email (user id): required at the first signing of a session."""


class ReleasePolicyIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    release_needs_approval: bool


class ReleasePolicyOut(msgspec.Struct, frozen=True, kw_only=True):
    organisation_id: int
    release_needs_approval: bool
    """A release after an excursion takes effect only with a second pharmacist's QA approval."""


class CalibrationIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    due_on: date | None
    """When the new calibration certificate runs out (null: unknown)."""
    certificate: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    """The certificate's number or reference, kept in the audit trail."""


class CalibrationOut(msgspec.Struct, frozen=True, kw_only=True):
    tracker_id: str
    calibration_due_on: date | None


class SignatureOut(msgspec.Struct, frozen=True, kw_only=True):
    role: SignatureRole
    user_id: int
    name: str
    """The signer's printed name."""
    email: str
    meaning: str
    signed_at: datetime
    record_sha256: str
    """The digest of the decision record the signature covers."""
    manifest: str
    """Name, date and time with UTC offset, and meaning in one line (21 CFR 11.50)."""


class DecisionOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    shipment_id: int
    seq: int
    outcome: Outcome
    meaning: str
    state: DecisionState
    reason: str | None
    comment: str | None
    recommendation: Recommendation
    snapshot_sha256: str
    record_sha256: str
    requires_approval: bool
    created_at: datetime
    evaluation_changed_at: datetime | None
    evaluation_changed_sha256: str | None
    signatures: list[SignatureOut]


class WorkItemOut(msgspec.Struct, frozen=True, kw_only=True):
    shipment_id: int
    reference: str
    status: ShipmentStatus
    priority: Priority
    product_name: str
    lot_number: str | None
    recommendation: Recommendation
    excursions: int
    alarms: int
    reasons: list[WaitingReason]
    waiting_since: datetime
    latest_decision: DecisionOut | None


class ExcursionDetailOut(msgspec.Struct, frozen=True, kw_only=True):
    excursion: ExcursionOut
    custodian_name: str | None
    chart: Chart | None


class InvestigationOut(msgspec.Struct, frozen=True, kw_only=True):
    identification: Identification
    trackers: list[TrackerView]
    profile: Profile
    span: ReadingSpan
    judgement: ShipmentStatusOut
    excursions: list[ExcursionDetailOut]
    chart: Chart
    decisions: list[DecisionOut]
    waiting: list[WaitingReason]
    """Why the shipment is on the worklist (empty: it is not)."""
    approval_required: bool
    """A release signed now would need a second signature."""
    integrity: Integrity
    snapshot: dict[str, Any]
    """The evaluation snapshot a decision signed now covers; its RFC 8785 bytes hash to
    ``integrity.snapshot_sha256``."""


def login_limits(settings: Settings) -> LoginLimits:
    return LoginLimits(
        per_account=settings.login_max_failures,
        per_client=settings.login_max_failures_per_client,
        window=timedelta(seconds=settings.login_failure_window_s),
    )


def _signature_out(signature: Signature) -> SignatureOut:
    return SignatureOut(
        role=signature.role,
        user_id=signature.user_id,
        name=signature.name,
        email=signature.email,
        meaning=signature.meaning,
        signed_at=signature.signed_at,
        record_sha256=signature.record_sha256,
        manifest=signature_manifest(signature),
    )


def decision_out(view: DecisionView) -> DecisionOut:
    decision = view.decision
    return DecisionOut(
        id=decision.id,
        shipment_id=decision.shipment_id,
        seq=decision.seq,
        outcome=decision.outcome,
        meaning=decision.meaning,
        state=view.state,
        reason=decision.reason,
        comment=decision.comment,
        recommendation=decision.recommendation,
        snapshot_sha256=decision.snapshot_sha256,
        record_sha256=decision.record_sha256,
        requires_approval=decision.requires_approval,
        created_at=decision.created_at,
        evaluation_changed_at=decision.evaluation_changed_at,
        evaluation_changed_sha256=decision.evaluation_changed_sha256,
        signatures=[_signature_out(signature) for signature in decision.signatures],
    )


def _latest_view(latest: Decision) -> DecisionView:
    return DecisionView(decision=latest, state=decision_state(latest, latest_seq=latest.seq))


def _work_item_out(item: WorkItem) -> WorkItemOut:
    latest = item.latest_decision
    return WorkItemOut(
        shipment_id=item.shipment_id,
        reference=item.reference,
        status=item.status,
        priority=item.priority,
        product_name=item.product_name,
        lot_number=item.lot_number,
        recommendation=item.recommendation,
        excursions=item.excursions,
        alarms=item.alarms,
        reasons=item.reasons,
        waiting_since=item.waiting_since,
        latest_decision=None
        if latest is None
        else decision_out(DecisionView(decision=latest, state=decision_state(latest, latest_seq=latest.seq))),
    )


def investigation_out(found: Investigation) -> InvestigationOut:
    identification = found.identification
    return InvestigationOut(
        identification=identification,
        trackers=found.trackers,
        profile=found.profile,
        span=found.span,
        judgement=status_parts_out(
            shipment_id=identification.shipment_id,
            reference=identification.reference,
            status=identification.status,
            profile=found.profile,
            streams=len(found.trackers),
            evaluation=found.evaluation,
            allowances=found.allowances,
            quarantined=found.quarantined,
            excursions=[view.stored for view in found.excursions],
            alarms=found.alarms,
            disposition=found.disposition,
        ),
        excursions=[
            ExcursionDetailOut(
                excursion=excursion_out(view.stored), custodian_name=view.custodian_name, chart=view.chart
            )
            for view in found.excursions
        ],
        chart=found.chart,
        decisions=[decision_out(view) for view in found.decisions],
        waiting=found.waiting,
        approval_required=found.approval_required,
        integrity=found.integrity,
        snapshot=msgspec.json.decode(found.snapshot),
    )


def pdf_response(content: bytes, found: Investigation) -> Response[bytes]:
    """A PDF report as an answer, named after the shipment."""
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in found.identification.reference)
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="excursion-report-{name}.pdf"'},
    )


@get(
    "/v1/worklist",
    summary="Delivered shipments awaiting a pharmacist's decision, most urgent first",
    tags=["decisions"],
    security=BEARER,
    responses=errors(401),
)
async def worklist(store: StoreDep, principal: PrincipalDep) -> list[WorkItemOut]:
    """Shipments of the caller's organisation that were delivered with an excursion, a quarantine or reject
    recommendation, or faults, and have no decision in effect: none yet, one awaiting its QA approval, or one
    whose evaluation changed after it was signed. Most urgent first: a changed or half-signed decision, then the
    strictest recommendation, then urgent shipments, then the longest waiting."""
    return [_work_item_out(item) for item in await use_cases.worklist(store, principal)]


class DecisionApi(Controller):
    path = "/v1"
    tags = ["decisions"]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get(
        "/shipments/{shipment_id:int}/investigation",
        summary="Everything a pharmacist investigates before deciding, and every decision made",
        security=BEARER,
        responses=errors(401, 404),
    )
    async def investigation(
        self, shipment_id: PathId, store: StoreDep, principal: PrincipalDep, now: NowDep
    ) -> InvestigationOut:
        return investigation_out(await use_cases.investigation(store, principal, shipment_id, now=now))

    @get(
        "/shipments/{shipment_id:int}/excursion-report",
        summary="The excursion report as PDF: the investigation, the decisions and their signatures",
        security=BEARER,
        media_type="application/pdf",
        responses={
            200: ResponseSpec(bytes, description="The report (application/pdf).", media_type="application/pdf"),
            **errors(401, 404),
        },
    )
    async def excursion_report(
        self, shipment_id: PathId, store: StoreDep, principal: PrincipalDep, now: NowDep
    ) -> Response[bytes]:
        """The same content as the investigation, rendered for print: page x of y, generation time, software
        version and the SHA-256 of the raw readings on every page; every signature with its signer's printed name,
        date and time with UTC offset, and meaning (21 CFR 11.50)."""
        found = await use_cases.investigation(store, principal, shipment_id, now=now)
        return pdf_response(await asyncio.to_thread(report_pdf, found), found)

    @get(
        "/shipments/{shipment_id:int}/decisions",
        summary="The shipment's decisions with their signatures, oldest first",
        security=BEARER,
        responses=errors(401, 404),
    )
    async def decisions(self, shipment_id: PathId, store: StoreDep, principal: PrincipalDep) -> list[DecisionOut]:
        return [decision_out(view) for view in await use_cases.shipment_decisions(store, principal, shipment_id)]

    @post(
        "/shipments/{shipment_id:int}/decisions",
        summary="Decide release, quarantine or reject, with the signer's electronic signature",
        status_code=201,
        security=SESSION,
        responses=errors(401, 403, 404, 409, 422, 503, why={503: BUSY}),
    )
    async def decide(
        self,
        request: Request[Any, Any, Any],
        shipment_id: PathId,
        data: JSONBody[DecisionIn],
        store: StoreDep,
        principal: PrincipalDep,
        settings: SettingsDep,
        now: NowDep,
    ) -> DecisionOut:
        """Signed by a pharmacist of a party of the shipment, signed in to the portal (403 for other roles and for
        API tokens; 404 outside the parties). A wrong password is refused with 403 and recorded in the audit
        trail; 409 when the evaluation changed since ``snapshot_sha256`` or the shipment is not delivered yet."""
        view = await use_cases.decide(
            store,
            principal,
            shipment_id,
            outcome=data.outcome,
            snapshot_sha256=data.snapshot_sha256,
            reason=data.reason,
            comment=data.comment,
            email=data.email,
            password=data.password,
            client=client_address(request),
            limits=login_limits(settings),
            now=now,
        )
        return decision_out(view)

    @post(
        "/shipments/{shipment_id:int}/decisions/{decision_id:int}/approval",
        summary="Give a release its second signature (QA approval by another pharmacist)",
        status_code=200,
        security=SESSION,
        responses=errors(401, 403, 404, 409, 422, 503, why={503: BUSY}),
    )
    async def approve(
        self,
        request: Request[Any, Any, Any],
        shipment_id: PathId,
        decision_id: PathId,
        data: JSONBody[ApprovalIn],
        store: StoreDep,
        principal: PrincipalDep,
        settings: SettingsDep,
        now: NowDep,
    ) -> DecisionOut:
        view = await use_cases.approve_decision(
            store,
            principal,
            shipment_id,
            decision_id,
            email=data.email,
            password=data.password,
            client=client_address(request),
            limits=login_limits(settings),
            now=now,
        )
        return decision_out(view)

    @get(
        "/organisations/{organisation_id:int}/release-policy",
        summary="Whether a release after an excursion needs a second signature",
        security=BEARER,
        responses=errors(401, 404),
    )
    async def release_policy(
        self, organisation_id: PathId, store: StoreDep, principal: PrincipalDep
    ) -> ReleasePolicyOut:
        required = await use_cases.release_policy(store, principal, organisation_id)
        return ReleasePolicyOut(organisation_id=organisation_id, release_needs_approval=required)

    @put(
        "/organisations/{organisation_id:int}/release-policy",
        summary="Require (or stop requiring) a second signature on a release after an excursion",
        security=BEARER,
        responses=errors(401, 403, 404, 422),
    )
    async def set_release_policy(
        self,
        organisation_id: PathId,
        data: JSONBody[ReleasePolicyIn],
        store: StoreDep,
        principal: PrincipalDep,
        now: NowDep,
    ) -> ReleasePolicyOut:
        required = await use_cases.set_release_policy(
            store, principal, organisation_id, required=data.release_needs_approval, now=now
        )
        return ReleasePolicyOut(organisation_id=organisation_id, release_needs_approval=required)

    @put(
        "/trackers/{serial:str}/calibration",
        summary="Record a tracker's new calibration: when its certificate runs out",
        security=BEARER,
        responses=errors(401, 403, 404, 422),
    )
    async def calibration(
        self,
        serial: FromPath[str],
        data: JSONBody[CalibrationIn],
        store: StoreDep,
        principal: PrincipalDep,
        now: NowDep,
    ) -> CalibrationOut:
        tracker = await trackers.record_calibration(
            store, principal, serial, due_on=data.due_on, certificate=data.certificate, now=now
        )
        return CalibrationOut(tracker_id=tracker.serial, calibration_due_on=tracker.calibration_due_on)
