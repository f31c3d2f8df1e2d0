"""The audit trail for auditors: ``GET /v1/audit`` (a page by id, filtered by shipment, actor and time),
``GET /v1/audit/export`` (the same filter as JSON lines or CSV, streamed) and ``GET /v1/audit/verify`` (the whole
chain recomputed). Admins and auditors read their organisation's part of the trail; the operator reads all
(:mod:`coldchain.services.audit`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get
from litestar.openapi import ResponseSpec
from litestar.params import QueryParameter
from litestar.response import Stream

from coldchain.domain.audit import AuditEntry, AuditFilter
from coldchain.http.deps import PrincipalDep, StoreDep
from coldchain.http.openapi import BEARER, errors
from coldchain.http.portal_api import TimeQuery, moment
from coldchain.http.wire import MAX_ID, QueryId
from coldchain.services import audit as use_cases

__all__ = ["AuditApi", "AuditEntryOut", "AuditPageOut", "AuditVerdictOut"]

ActorQuery = Annotated[
    str | None, QueryParameter(min_length=1, max_length=200, description="entries whose actor contains this text")
]
AfterQuery = Annotated[int, QueryParameter(ge=0, le=MAX_ID, description="the `next` of the previous page")]
LimitQuery = Annotated[int, QueryParameter(ge=1, le=use_cases.MAX_AUDIT_PAGE)]
FormatQuery = Annotated[Literal["jsonl", "csv"], QueryParameter(description="jsonl (default) or csv")]


class AuditEntryOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: str
    prev_hash: str
    hash: str


class AuditPageOut(msgspec.Struct, frozen=True, kw_only=True):
    entries: list[AuditEntryOut]
    next: int | None
    """The `after` of the next page; null on the last."""


class AuditVerdictOut(msgspec.Struct, frozen=True, kw_only=True):
    intact: bool
    checked: int
    """Entries read: the whole trail."""
    first_broken_id: int | None
    head_id: int | None
    head_hash: str | None


def _out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(**msgspec.structs.asdict(entry))


def _filter(shipment: int | None, actor: str | None, since: str | None, until: str | None) -> AuditFilter:
    return AuditFilter(shipment_id=shipment, actor=actor, since=moment("since", since), until=moment("until", until))


class AuditApi(Controller):
    path = "/v1/audit"
    tags = ["audit"]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get(
        "/",
        summary="A page of the audit trail: the organisation's entries, filtered by shipment, actor and time",
        security=BEARER,
        responses=errors(401, 403, 404, 422),
    )
    async def page(
        self,
        store: StoreDep,
        principal: PrincipalDep,
        shipment: QueryId = None,
        actor: ActorQuery = None,
        since: TimeQuery = None,
        until: TimeQuery = None,
        after: AfterQuery = 0,
        limit: LimitQuery = 100,
    ) -> AuditPageOut:
        """Entries by id after `after`. An organisation's admins and auditors see the entries about its records:
        the shipments it takes part in (their alarms and decisions too), itself, its users, tokens, trackers,
        webhooks, products and lots; the operator sees all. `shipment` keeps one shipment's entries (404 for a
        shipment the caller does not take part in); `actor` the entries whose actor contains the text; `since`
        and `until` bound the entry time (`since <= at < until`)."""
        found = await use_cases.audit_page(
            store, principal, _filter(shipment, actor, since, until), after=after, limit=limit
        )
        return AuditPageOut(entries=[_out(entry) for entry in found.entries], next=found.next)

    @get(
        "/export",
        summary="The audit trail (the same filters) as JSON lines or CSV, streamed",
        security=BEARER,
        responses={
            200: ResponseSpec(
                bytes,
                description="JSON lines (one canonical entry per line) or CSV (RFC 4180, CRLF).",
                media_type="application/jsonl",
            ),
            **errors(401, 403, 404, 422),
        },
    )
    async def export(
        self,
        store: StoreDep,
        principal: PrincipalDep,
        shipment: QueryId = None,
        actor: ActorQuery = None,
        since: TimeQuery = None,
        until: TimeQuery = None,
        format: FormatQuery = "jsonl",
    ) -> Stream:
        """Each JSON line holds exactly what the entry's hash covers plus the hash, keys sorted; each CSV row the
        columns id, at_utc, actor, action, subject, detail, prev_hash, hash. The whole filtered trail, by id."""
        chunks = await use_cases.audit_export(store, principal, _filter(shipment, actor, since, until), format=format)
        media_type = "application/jsonl" if format == "jsonl" else "text/csv"
        name = f"audit.{format}"
        return Stream(chunks, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @get(
        "/verify",
        summary="Recompute the audit trail's hash chain: intact, or the first broken entry",
        security=BEARER,
        responses=errors(401, 403),
    )
    async def verify(self, store: StoreDep, principal: PrincipalDep) -> AuditVerdictOut:
        """The whole trail is recomputed, whoever asks (a chain is only meaningful whole); the answer carries only
        the verdict, the number of entries checked, the id of the first entry that does not continue the chain,
        and the stored head."""
        verdict = await use_cases.verify_audit(store, principal)
        return AuditVerdictOut(**msgspec.structs.asdict(verdict))
