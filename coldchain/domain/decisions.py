"""A pharmacist's decision on a shipment and its electronic signatures (21 CFR Part 11, REFERENCE §5).

A decision disposes of a shipment: ``release``, ``quarantine`` or ``reject``. It is signed by a pharmacist of a
party of the shipment and covers the SHA-256 of the **evaluation snapshot**, the canonical content decided on:
the readings' digest, the profile version, the excursions, MKT, budgets, faults and the recommendation with its
reasons (:func:`evaluation_snapshot`). The signature itself covers the **record**: the decision, its reason and
comment, the signer and the snapshot's digest (:func:`record_sha256`), so a signature cannot be moved to another
shipment, another evaluation or another decision (§11.70). Both are computed over RFC 8785 (JCS) bytes, which
anyone can recompute.

Every signature shows the printed name, the date and time with its UTC offset, and the meaning (§11.50):

===================  ==========================================
signed as            meaning
===================  ==========================================
release              approved for release
quarantine           placed in quarantine
reject               rejected
approval (second)    QA approval of the release
===================  ==========================================

Nothing is overwritten: a later change is a new decision with a reason, which supersedes the earlier one; the
earlier one stays, marked superseded. When data arriving after a signature changes the evaluation (late
readings, a quarantined reading), the decision is marked "evaluation changed after signing" and the shipment
returns to the worklist. An organisation may require a second signature (QA approval by another pharmacist)
before a release after an excursion takes effect; the same person cannot sign both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Literal

import msgspec
import rfc8785

from coldchain.domain.disposition import SEVERITY, Disposition, Recommendation
from coldchain.domain.evaluation import Evaluation
from coldchain.domain.quarantine import QuarantineFault
from coldchain.domain.shipments import Priority, ShipmentStatus

__all__ = [
    "DECIDABLE_STATUSES",
    "MEANINGS",
    "Decision",
    "DecisionState",
    "Outcome",
    "Signature",
    "SignatureRole",
    "WaitingReason",
    "WorkItem",
    "calibration_overdue",
    "decision_state",
    "evaluation_snapshot",
    "in_effect",
    "jcs_bytes",
    "jcs_sha256",
    "needs_approval",
    "record_content",
    "record_sha256",
    "signature_manifest",
    "waiting_reasons",
    "work_order",
]

Outcome = Literal["release", "quarantine", "reject"]
SignatureRole = Literal["decision", "approval"]
DecisionState = Literal["awaiting_approval", "in_effect", "superseded", "evaluation_changed"]
WaitingReason = Literal[
    "undecided", "evaluation_changed", "awaiting_approval", "excursions", "quarantine_recommended", "faults"
]

#: What each signature means, shown beside the signer's name and time wherever the record is shown (§11.50).
MEANINGS: dict[Outcome | Literal["approval"], str] = {
    "release": "approved for release",
    "quarantine": "placed in quarantine",
    "reject": "rejected",
    "approval": "QA approval of the release",
}

#: A shipment is decided on once it has reached its receiver: delivered (or closed after delivery).
DECIDABLE_STATUSES: frozenset[ShipmentStatus] = frozenset({"delivered", "closed"})

#: Decimal places the snapshot keeps of a measured quantity: well below any sensor's resolution, and far above
#: the last bits in which two equal evaluations reached by different routes (incremental, replayed) may differ.
_PLACES = 3


class Signature(msgspec.Struct, frozen=True, kw_only=True):
    """One electronic signature: who (the person's id, printed name and email), when, as what, and over which
    record digest."""

    role: SignatureRole
    user_id: int
    name: str
    email: str
    meaning: str
    signed_at: datetime
    record_sha256: str


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """A stored decision with its signatures (the deciding one first; an approval, when given, second)."""

    id: int
    shipment_id: int
    seq: int
    """1 for the shipment's first decision, then 2, 3, ...: a later decision supersedes the earlier ones."""
    outcome: Outcome
    reason: str | None
    """Why: required when the decision changes an earlier one, or differs from the recommendation."""
    comment: str | None
    recommendation: Recommendation
    """What the service recommended from the evaluation signed."""
    snapshot_sha256: str
    snapshot: str
    """The evaluation snapshot's canonical JSON (RFC 8785), as signed."""
    record_sha256: str
    requires_approval: bool
    signatures: list[Signature]
    created_at: datetime
    evaluation_changed_at: datetime | None
    """When data arriving after the signature changed the evaluation (``None``: it has not)."""
    evaluation_changed_sha256: str | None
    """The snapshot digest the evaluation had then."""

    @property
    def meaning(self) -> str:
        return MEANINGS[self.outcome]

    @property
    def approved(self) -> bool:
        return any(signature.role == "approval" for signature in self.signatures)


class WorkItem(msgspec.Struct, frozen=True, kw_only=True):
    """A shipment awaiting a decision, with what makes it wait and how urgent it is."""

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
    """When the shipment started to wait: its delivery, or the change that sent it back."""
    latest_decision: Decision | None


def jcs_bytes(value: Any) -> bytes:
    """``value``'s RFC 8785 (JCS) canonical JSON; ``value`` may hold Structs, datetimes, dates."""
    return rfc8785.dumps(_plain(value))


def jcs_sha256(value: Any) -> str:
    """SHA-256 (hex) of :func:`jcs_bytes`."""
    return hashlib.sha256(jcs_bytes(value)).hexdigest()


def _plain(value: Any) -> Any:
    return msgspec.to_builtins(value, builtin_types=())


def _num(value: float | None) -> float | None:
    return None if value is None else round(value, _PLACES)


def _at(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def evaluation_snapshot(
    *,
    shipment_id: int,
    reference: str,
    evaluation: Evaluation,
    quarantined: Sequence[QuarantineFault],
    disposition: Disposition,
    readings_sha256: str,
) -> dict[str, Any]:
    """The canonical content a decision is made on, as plain JSON values (times in UTC with microseconds,
    measured values to three decimals). What the lot did after this shipment (``lot_spent_min``) is left out:
    a later shipment of the same lot does not change what this one was."""
    mkt = evaluation.mkt
    return {
        "shipment": {"id": shipment_id, "reference": reference},
        "profile": {"id": evaluation.profile_id, "version": evaluation.profile_version},
        "readings": {
            "count": evaluation.readings,
            "first": _at(evaluation.first_reading_at),
            "last": _at(evaluation.last_reading_at),
            "sha256": readings_sha256,
        },
        "temperature_c": {
            "min": _num(evaluation.temperature_min_c),
            "max": _num(evaluation.temperature_max_c),
            "mean": _num(evaluation.temperature_mean_c),
        },
        "excursions": [
            {
                "rule": e.rule,
                "start": _at(e.start),
                "end": _at(e.end),
                "duration_min": _num(e.duration_min),
                "peak": _num(e.peak),
                "degree_min": _num(e.degree_min),
            }
            for e in evaluation.excursions
        ],
        "rules": [
            {"rule": r.rule, "status": r.status, "beyond_min": _num(r.beyond_min), "alarms": r.alarms}
            for r in evaluation.rules
        ],
        "mkt": {
            "activation_energy_kj_mol": mkt.activation_energy_kj_mol,
            "window": mkt.window,
            "limit_c": mkt.limit_c,
            "shipment_mkt_c": _num(mkt.shipment_mkt_c),
            "window_mkt_c": _num(mkt.window_mkt_c),
            "window_start": _at(mkt.window_start),
            "window_end": _at(mkt.window_end),
            "covered_min": _num(mkt.covered_min),
            "verdict": mkt.verdict,
        },
        "budgets": [
            {
                "rule": b.rule,
                "allowed_min": _num(b.allowed_min),
                "consumed_min": _num(b.consumed_min),
                "remaining_min": _num(b.remaining_min),
                "overrun_min": _num(b.overrun_min),
            }
            for b in evaluation.budgets
        ],
        "gaps": [{"start": _at(g.start), "end": _at(g.end)} for g in evaluation.gaps],
        "faults": [
            {"metric": f.metric, "reason": f.reason, "start": _at(f.start), "readings": f.readings}
            for f in evaluation.faults
        ],
        "quarantined": [
            {"kind": q.kind, "first": _at(q.first_at), "last": _at(q.last_at), "readings": q.readings}
            for q in quarantined
        ],
        "recommendation": {
            "outcome": disposition.recommendation,
            "reasons": [{"calls_for": r.calls_for, "code": r.code, "message": r.message} for r in disposition.reasons],
        },
    }


def record_content(
    *,
    shipment_id: int,
    seq: int,
    outcome: Outcome,
    reason: str | None,
    comment: str | None,
    snapshot_sha256: str,
    user_id: int,
    name: str,
    email: str,
    signed_at: datetime,
) -> dict[str, Any]:
    """What the deciding signature covers: the decision and who made it, bound to the snapshot's digest."""
    return {
        "shipment_id": shipment_id,
        "seq": seq,
        "outcome": outcome,
        "meaning": MEANINGS[outcome],
        "reason": reason,
        "comment": comment,
        "snapshot_sha256": snapshot_sha256,
        "signer": {"user_id": user_id, "name": name, "email": email},
        "signed_at": _at(signed_at),
    }


def record_sha256(content: dict[str, Any]) -> str:
    return jcs_sha256(content)


def signature_manifest(signature: Signature) -> str:
    """The signature as one line a person reads (§11.50): printed name, date and time with UTC offset, meaning."""
    moment = signature.signed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC+00:00")
    return f"{signature.name} <{signature.email}>, {moment}: {signature.meaning}"


def needs_approval(outcome: Outcome, *, excursions: int, policy_requires: bool) -> bool:
    """Whether a decision needs a second signature before it takes effect: a release after an excursion, where
    the organisation asks for QA approval."""
    return policy_requires and outcome == "release" and excursions > 0


def decision_state(decision: Decision, *, latest_seq: int) -> DecisionState:
    """Where one decision stands among the shipment's decisions (the latest has ``latest_seq``)."""
    if decision.seq < latest_seq:
        return "superseded"
    if decision.evaluation_changed_at is not None:
        return "evaluation_changed"
    if decision.requires_approval and not decision.approved:
        return "awaiting_approval"
    return "in_effect"


def in_effect(decisions: Sequence[Decision]) -> Decision | None:
    """The decision that disposes of the shipment now, if any."""
    if not decisions:
        return None
    latest = max(decisions, key=lambda decision: decision.seq)
    return latest if decision_state(latest, latest_seq=latest.seq) == "in_effect" else None


def waiting_reasons(
    *,
    status: ShipmentStatus,
    evaluation: Evaluation,
    quarantined: Sequence[QuarantineFault],
    recommendation: Recommendation,
    latest: Decision | None,
) -> list[WaitingReason]:
    """Why the shipment waits for a pharmacist (empty: it does not). A delivered shipment waits when it had an
    excursion, a quarantine (or reject) recommendation or faults, and no decision is in effect: none yet, one
    waiting for its QA approval, or one whose evaluation changed after it was signed."""
    if status not in DECIDABLE_STATUSES:
        return []
    if latest is not None:
        state = decision_state(latest, latest_seq=latest.seq)
        if state == "evaluation_changed":
            return ["evaluation_changed"]
        if state == "awaiting_approval":
            return ["awaiting_approval"]
        return []
    found: list[WaitingReason] = []
    if evaluation.excursions:
        found.append("excursions")
    if recommendation != "release":
        found.append("quarantine_recommended")
    if evaluation.faults or evaluation.gaps or quarantined:
        found.append("faults")
    return ["undecided", *found] if found else []


def work_order(item: WorkItem) -> tuple[int, int, int, datetime, int]:
    """Sort key, most urgent first: a changed or half-signed decision, then the strictest recommendation, then
    urgent shipments, then the longest waiting."""
    returned = 0 if {"evaluation_changed", "awaiting_approval"} & set(item.reasons) else 1
    return (
        returned,
        -SEVERITY[item.recommendation],
        0 if item.priority == "urgent" else 1,
        item.waiting_since,
        item.shipment_id,
    )


def calibration_overdue(due_on: date | None, *, on: date) -> bool:
    """Whether a tracker's calibration was due before ``on`` (EU GDP ch. 9: at least yearly)."""
    return due_on is not None and due_on < on
