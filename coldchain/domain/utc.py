"""Times written into sentences for people (the reasons of an ETA, a disposition): in UTC, with the date and the
zone named, ``2026-11-27 05:40 UTC``.

A sentence is read in the portal beside times shown in the reader's own zone, in a webhook, or in a report days
later: a bare ``05:40`` could be taken for local time or for another day. The exact time travels beside the
sentence in a structured field (``at``, ``eta``, ``budget_runs_out_at``), so minutes are enough here.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utc_text"]


def utc_text(moment: datetime) -> str:
    """``2026-11-27 05:40 UTC``: the moment in UTC to the minute (seconds dropped), date and zone always stated."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a time written for people must be timezone-aware, got {moment!r}")
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
