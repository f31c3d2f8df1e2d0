"""Device times as float seconds since the Unix epoch, the form the evaluation's inner loop works in."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["from_epoch_s", "to_epoch_s"]


def to_epoch_s(moment: datetime) -> float:
    """Seconds since the epoch of an aware datetime; a naive one is refused (it would silently mean local
    time)."""
    if moment.tzinfo is None:
        raise ValueError(f"device time must be timezone-aware (UTC), got naive {moment.isoformat()}")
    return moment.timestamp()


def from_epoch_s(seconds: float) -> datetime:
    """The aware UTC datetime of epoch seconds (round-trips :func:`to_epoch_s` to the microsecond)."""
    return datetime.fromtimestamp(seconds, UTC)
