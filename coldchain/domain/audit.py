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

__all__ = ["GENESIS_HASH", "AuditEntry", "entry_hash", "first_broken_entry"]

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


def first_broken_entry(entries: Iterable[AuditEntry]) -> int | None:
    """The id of the first entry that does not continue the chain, or ``None`` when the chain is intact.

    ``entries`` must be the whole trail in id order; a gap in the ids counts as a break.
    """
    prev_hash, expected_id = GENESIS_HASH, 1
    for entry in entries:
        recomputed = entry_hash(
            id=entry.id,
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            subject=entry.subject,
            detail=entry.detail,
            prev_hash=prev_hash,
        )
        if entry.id != expected_id or entry.prev_hash != prev_hash or entry.hash != recomputed:
            return entry.id
        prev_hash, expected_id = entry.hash, entry.id + 1
    return None
