"""Use cases of the shipment certificate: assemble it, and give its JSON content.

The certificate is the investigation (:func:`coldchain.services.decisions.investigation`), the chain of custody
(verified), and the heads of the custody chain and the audit trail, read in one transaction after the
investigation's, so the heads cover at least everything the investigation shows. Signing is the caller's (the
edge holds the keys): the JSON form with :func:`coldchain.keys.sign_json`, the PDF with PAdES.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.certificate import CERTIFICATE_TYPE, Certificate, CertificateIntegrity, CustodyStep
from coldchain.domain.custody import CustodyEvent, Signer, verify_chain
from coldchain.domain.decisions import DECIDABLE_STATUSES
from coldchain.services import decisions
from coldchain.services.access import require, visible_shipment
from coldchain.storage import Store

__all__ = ["certificate", "certificate_content"]


def _signer_words(signer: Signer, names: dict[int, str]) -> str:
    organisation = (
        names.get(signer.organisation_id, f"organisation {signer.organisation_id}") if signer.organisation_id else None
    )
    if signer.by == "user":
        return f"{signer.name} <{signer.email}>, {organisation}"
    if signer.by == "token":
        return f"{organisation}, API token {signer.token_id}"
    if signer.by == "geofence":
        return f"the service, on tracker {signer.tracker_id}'s position inside the destination's geofence"
    return "the platform operator"


def _step(event: CustodyEvent, names: dict[int, str]) -> CustodyStep:
    # The recorder of a hand-over or a delivery is the one giving the shipment away; of a pick-up or a receipt,
    # the one taking it (coldchain.domain.custody): the step shows who held it before and after.
    giving = event.kind in ("handed_over", "delivered")
    after, before = (event.counterparty_id, event.party_id) if giving else (event.party_id, event.counterparty_id)
    return CustodyStep(
        seq=event.seq,
        kind=event.kind,
        party=names.get(after) if after is not None else None,
        counterparty=names.get(before) if before is not None else None,
        place=event.place,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        signers=[_signer_words(signer, names) for signer in event.signers],
        note=event.note,
        hash=event.hash,
    )


async def certificate(
    store: Store, principal: Principal, shipment_id: int, *, now: datetime, key_id: str | None
) -> Certificate:
    """The shipment's certificate as of ``now`` (a draft while the shipment is not delivered)."""
    found = await decisions.investigation(store, principal, shipment_id, now=now)
    async with store.transaction() as tx:
        shipment = await visible_shipment(tx, principal, shipment_id)
        require(principal, "read")
        events = await tx.custody_events(shipment_id)
        head = await tx.custody_head(shipment_id)
        verdict = verify_chain(shipment_id, events, head)
        audit_head = await tx.audit_head()
        names: dict[int, str] = {}
        for party in sorted(
            {p for e in events for p in (e.party_id, e.counterparty_id) if p is not None}
            | {s.organisation_id for e in events for s in e.signers if s.organisation_id}
        ):
            organisation = await tx.get_organisation(party)
            if organisation is not None:
                names[party] = organisation.name
    return Certificate(
        certificate_id=f"{shipment_id}-{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}",
        draft=shipment.status not in DECIDABLE_STATUSES,
        investigation=found,
        custody=[_step(event, names) for event in events],
        integrity=CertificateIntegrity(
            readings_sha256=found.integrity.readings_sha256,
            readings=found.evaluation.readings,
            custody_head_seq=None if head is None else head.seq,
            custody_head_sha256=None if head is None else head.hash,
            custody_intact=verdict.intact,
            audit_head_id=None if audit_head is None else audit_head[0],
            audit_head_sha256=None if audit_head is None else audit_head[1],
            snapshot_sha256=found.integrity.snapshot_sha256,
            generated_at=now,
            software=found.integrity.software,
            key_id=key_id,
        ),
    )


def certificate_content(issued: Certificate) -> dict[str, Any]:
    """The JSON form's ``certificate`` member: plain JSON values (the charts left out: they are drawn from the
    readings export the integrity block names)."""
    inv = issued.investigation
    plain = msgspec.to_builtins
    return {
        "type": CERTIFICATE_TYPE,
        "certificate_id": issued.certificate_id,
        "draft": issued.draft,
        "identification": plain(inv.identification),
        "trackers": plain(inv.trackers),
        "profile": plain(inv.profile),
        "data": {
            "span": plain(inv.span),
            "readings": inv.evaluation.readings,
            "temperature_min_c": inv.evaluation.temperature_min_c,
            "temperature_max_c": inv.evaluation.temperature_max_c,
            "temperature_mean_c": inv.evaluation.temperature_mean_c,
            "gaps": plain(inv.evaluation.gaps),
            "mkt": plain(inv.evaluation.mkt),
        },
        "rules": plain(inv.evaluation.rules),
        "allowances": inv.allowances,
        "budgets": plain(inv.evaluation.budgets),
        "excursions": [
            {
                **plain(view.stored.excursion),
                "custodian": view.custodian_name,
                "withdrawn_at": plain(view.stored.withdrawn_at),
            }
            for view in inv.excursions
        ],
        "alarms": [
            {
                **plain(stored.alarm),
                "detected_at": plain(stored.detected_at),
                "late": stored.late,
                "acknowledged_at": plain(stored.acknowledged_at),
                "acknowledged_by": stored.acknowledged_by,
                "acknowledgement": stored.acknowledgement,
            }
            for stored in inv.alarms
        ],
        "faults": plain(inv.evaluation.faults),
        "quarantined": plain(inv.quarantined),
        "recommendation": plain(inv.disposition),
        "decisions": [
            {
                **{k: v for k, v in plain(view.decision).items() if k != "snapshot"},
                "meaning": view.decision.meaning,
                "state": view.state,
            }
            for view in inv.decisions
        ],
        "custody": plain(issued.custody),
        "integrity": plain(issued.integrity),
    }
