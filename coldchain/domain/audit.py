"""The audit trail: append-only entries, each bound to the one before by a SHA-256 hash.

21 CFR 11.10(e) asks for a secure, time-stamped trail of every create, modify and delete in which a change never
obscures what was recorded before. Chaining each entry to its predecessor makes a removed, altered or reordered
entry detectable by recomputing the chain (:func:`first_broken_entry`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

import msgspec

from coldchain.domain.canonical import canonical_json

__all__ = [
    "AUDIT_CHAIN",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditFilter",
    "ChainCheck",
    "ChainWalk",
    "entry_hash",
    "first_broken_entry",
]

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first entry."""


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: str
    prev_hash: str
    hash: str


def entry_hash(*, id: int, at: datetime, actor: str, action: str, subject: str, detail: str, prev_hash: str) -> str:
    """SHA-256 (hex) of the entry's canonical JSON: sorted keys, UTC time with microseconds."""
    content = {
        "id": id,
        "at": at.isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject": subject,
        "detail": detail,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(content)).hexdigest()


class ChainWalk:
    """Verifies the trail as it is fed, page by page, in id order (so it never has to be held whole): the first
    entry that does not continue the chain is ``broken_at``; a gap in the ids counts as a break. The head is the
    last entry fed, as stored."""

    def __init__(self) -> None:
        self._prev_hash, self._expected_id = GENESIS_HASH, 1
        self.checked = 0
        self.broken_at: int | None = None
        self.head_id: int | None = None
        self.head_hash: str | None = None

    def add(self, entry: AuditEntry) -> None:
        self.checked += 1
        self.head_id, self.head_hash = entry.id, entry.hash
        if self.broken_at is not None:
            return
        recomputed = entry_hash(
            id=entry.id,
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            subject=entry.subject,
            detail=entry.detail,
            prev_hash=self._prev_hash,
        )
        if entry.id != self._expected_id or entry.prev_hash != self._prev_hash or entry.hash != recomputed:
            self.broken_at = entry.id
            return
        self._prev_hash, self._expected_id = entry.hash, entry.id + 1

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def first_broken_entry(entries: Iterable[AuditEntry]) -> int | None:
    """The id of the first entry that does not continue the chain, or ``None`` when the chain is intact.

    ``entries`` must be the whole trail in id order; a gap in the ids counts as a break.
    """
    walk = ChainWalk()
    for entry in entries:
        walk.add(entry)
        if walk.broken_at is not None:
            return walk.broken_at
    return None


class AuditFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What part of the trail a reader asks for; every field narrows it, ``None`` leaves it open.

    ``organisation_id`` is the scope, set from the caller (``None``: the operator, the whole trail). An
    organisation's part of the trail is the entries whose subject is one of its records: a shipment it takes part
    in (as shipper, carrier of a leg or receiver), that shipment's alarms and decisions, the organisation itself,
    and its users, tokens, trackers, webhooks, products and lots. The actor is not used for scoping: it is text
    that names the caller (a person's name and email among it), so it cannot prove whose an entry is.
    ``shipment_id`` keeps the entries about that shipment (its alarms and decisions included); ``actor`` the
    entries whose actor contains the text (case-sensitive); ``since <= at < until``.
    """

    organisation_id: int | None = None
    shipment_id: int | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


AUDIT_CHAIN = "audit"
"""The name of the audit trail among the verified chains (a shipment's custody chain is ``custody:<id>``)."""


class ChainCheck(msgspec.Struct, frozen=True, kw_only=True):
    """The latest scheduled verification of one hash chain, and the break last reported (notified once)."""

    chain: str
    checked_at: datetime
    intact: bool
    checked: int
    broken_at: int | None
    head_hash: str | None
    reported_break: int | None
