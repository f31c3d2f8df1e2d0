"""The audit trail for auditors, and the scheduled verification of every hash chain.

Reading: a page of the trail by id, filtered in SQL; an export of the same filter as JSON lines or CSV, streamed a
page at a time (each page in its own short transaction: the trail is append-only, so paging by id misses and
repeats nothing); and the verification of the whole chain. An organisation's admins and auditors read the entries
about its own records (:class:`coldchain.domain.audit.AuditFilter` says which); the operator reads all.
Verification always walks the whole trail, since a chain is only meaningful whole, and tells an organisation
only the verdict, the head and the id of the first broken entry, never the entries of others.

Scheduled (:func:`check_chains`, the ``chain-verification`` job): the audit trail and every shipment's custody
chain are verified, the result kept per chain (``chain_checks``), and a break is notified once: when it is first
seen, and again only if a different entry breaks later. A broken custody chain is told to the shipment's parties
(``custody.broken``); a broken audit trail, which holds everyone's records, to every organisation
(``audit.broken``) and to the operator in the service log at ERROR.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Literal

import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.audit import AUDIT_CHAIN, AuditEntry, AuditFilter, ChainCheck, ChainWalk
from coldchain.domain.custody import verify_chain
from coldchain.domain.exports import AUDIT_HEADER, audit_line, audit_row
from coldchain.services.access import require, visible_shipment
from coldchain.services.errors import Invalid
from coldchain.storage import Store, Transaction

__all__ = [
    "MAX_AUDIT_PAGE",
    "AuditPage",
    "AuditVerdict",
    "ChainsReport",
    "audit_export",
    "audit_page",
    "check_chains",
    "verify_audit",
]

log = logging.getLogger("coldchain.audit")

MAX_AUDIT_PAGE = 1000
"""The most entries one page holds."""
_EXPORT_PAGE = 1000
_VERIFY_PAGE = 5000

ExportFormat = Literal["jsonl", "csv"]


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    entries: list[AuditEntry]
    next: int | None
    """The ``after`` of the next page; ``None`` on the last."""


class AuditVerdict(msgspec.Struct, frozen=True, kw_only=True):
    intact: bool
    checked: int
    first_broken_id: int | None
    head_id: int | None
    head_hash: str | None


class ChainsReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a scheduled verification found: chains verified, the broken ones, and the notifications it wrote."""

    chains: int
    broken: list[str]
    notified: list[int]


async def _scope(store: Store, principal: Principal, where: AuditFilter) -> AuditFilter:
    """The filter with the caller's scope; a shipment named must be one the caller takes part in (404 otherwise)."""
    require(principal, "audit")
    if where.since is not None and where.until is not None and where.until <= where.since:
        raise Invalid("until: must come after since")
    if where.actor is not None and (where.actor == "" or "\x00" in where.actor):
        raise Invalid("actor: must be text without NUL characters, not empty")
    if where.shipment_id is not None:
        async with store.transaction() as tx:
            await visible_shipment(tx, principal, where.shipment_id)
    return msgspec.structs.replace(where, organisation_id=principal.organisation_id)


async def audit_page(store: Store, principal: Principal, where: AuditFilter, *, after: int, limit: int) -> AuditPage:
    """The caller's entries that ``where`` keeps, with ids after ``after``, by id."""
    if not 1 <= limit <= MAX_AUDIT_PAGE:
        raise Invalid(f"limit must be between 1 and {MAX_AUDIT_PAGE}, got {limit}")
    scoped = await _scope(store, principal, where)
    async with store.transaction() as tx:
        found = await tx.audit_page(scoped, after_id=after, limit=limit + 1)
    page = found[:limit]
    return AuditPage(entries=page, next=page[-1].id if len(found) > limit else None)


async def audit_export(
    store: Store, principal: Principal, where: AuditFilter, *, format: ExportFormat
) -> AsyncIterator[bytes]:
    """Every entry the caller's ``audit_page`` would give, as JSON lines (:func:`audit_line`) or CSV
    (:func:`audit_row`, after its header), in chunks of a page; refusals are raised before the first chunk."""
    scoped = await _scope(store, principal, where)
    return _export_chunks(store, scoped, format)


async def _export_chunks(store: Store, where: AuditFilter, format: ExportFormat) -> AsyncIterator[bytes]:
    line = audit_line if format == "jsonl" else audit_row
    if format == "csv":
        yield AUDIT_HEADER.encode()
    after = 0
    while True:
        async with store.transaction() as tx:
            page = await tx.audit_page(where, after_id=after, limit=_EXPORT_PAGE)
        if page:
            yield "".join(line(entry) for entry in page).encode()
            after = page[-1].id
        if len(page) < _EXPORT_PAGE:
            return


async def _walk_audit(store: Store) -> ChainWalk:
    walk, after = ChainWalk(), 0
    while True:
        async with store.transaction() as tx:
            page = await tx.audit_entries(after_id=after, limit=_VERIFY_PAGE)
        for entry in page:
            walk.add(entry)
        if len(page) < _VERIFY_PAGE:
            return walk
        after = page[-1].id


async def verify_audit(store: Store, principal: Principal) -> AuditVerdict:
    """Recompute the whole chain: intact, or the id of the first entry that does not continue it."""
    require(principal, "audit")
    walk = await _walk_audit(store)
    return AuditVerdict(
        intact=walk.intact,
        checked=walk.checked,
        first_broken_id=walk.broken_at,
        head_id=walk.head_id,
        head_hash=walk.head_hash,
    )


async def _record(
    tx: Transaction, chain: str, *, intact: bool, checked: int, broken_at: int | None, head: str | None, now: datetime
) -> bool:
    """Keep the result; whether it is a break not reported before."""
    before = await tx.chain_check(chain)
    reported = None if before is None else before.reported_break
    new_break = broken_at is not None and broken_at != reported
    await tx.save_chain_check(
        ChainCheck(
            chain=chain,
            checked_at=now,
            intact=intact,
            checked=checked,
            broken_at=broken_at,
            head_hash=head,
            reported_break=broken_at if new_break else reported,
        )
    )
    return new_break


async def check_chains(store: Store, *, now: datetime) -> ChainsReport:
    """Verify the audit trail and every shipment's custody chain; record each result and notify new breaks."""
    broken: list[str] = []
    notified: list[int] = []
    walk = await _walk_audit(store)
    async with store.transaction() as tx:
        if walk.broken_at is not None:
            broken.append(AUDIT_CHAIN)
        head = walk.head_hash
        if await _record(
            tx, AUDIT_CHAIN, intact=walk.intact, checked=walk.checked, broken_at=walk.broken_at, head=head, now=now
        ):
            log.error("the audit trail's hash chain is broken at entry %d", walk.broken_at)
            recipients = [organisation.id for organisation in await tx.list_organisations()]
            notified += await tx.publish(
                "audit.broken",
                organisation_ids=recipients,
                subject=f"audit:{walk.broken_at}",
                payload={"first_broken_id": walk.broken_at, "checked": walk.checked, "head_id": walk.head_id},
                now=now,
            )
        shipment_ids = await tx.shipment_ids(party=None)
    for shipment_id in shipment_ids:
        async with store.transaction() as tx:
            await tx.lock_custody(shipment_id, appending=False)
            events = await tx.custody_events(shipment_id)
            chain_head = await tx.custody_head(shipment_id)
            verdict = verify_chain(shipment_id, events, chain_head)
            chain = f"custody:{shipment_id}"
            if not verdict.intact:
                broken.append(chain)
            if await _record(
                tx,
                chain,
                intact=verdict.intact,
                checked=verdict.checked,
                broken_at=verdict.broken_at_seq,
                head=None if chain_head is None else chain_head.hash,
                now=now,
            ):
                shipment = await tx.get_shipment(shipment_id)
                assert shipment is not None
                log.warning(
                    "the custody chain of shipment %d is broken at event %s", shipment_id, verdict.broken_at_seq
                )
                notified += await tx.publish(
                    "custody.broken",
                    organisation_ids=shipment.parties,
                    subject=f"shipment:{shipment_id}",
                    payload={
                        "shipment_id": shipment_id,
                        "broken_at_seq": verdict.broken_at_seq,
                        "problem": verdict.problem,
                    },
                    now=now,
                    shipment_id=shipment_id,
                )
    return ChainsReport(chains=1 + len(shipment_ids), broken=broken, notified=notified)
