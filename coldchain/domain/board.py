"""How the board labels a shipment in transit: one state, told in words and by shape as well as colour.

In order of what needs a person first: ``alarm`` (an unacknowledged alarm detected live), ``at_risk`` (the
arrival estimate comes after the promised time or the stability budget's end), ``late_data`` (unacknowledged
alarms that were all detected late, from a tracker's buffer: an account of the past), ``silent`` (no tracker of
the shipment has synced for the silence limit), ``ok``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

__all__ = ["BOARD_STATES", "BoardState", "board_state"]

BoardState = Literal["alarm", "at_risk", "late_data", "silent", "ok"]
BOARD_STATES: tuple[BoardState, ...] = ("alarm", "at_risk", "late_data", "silent", "ok")


def board_state(
    *,
    open_alarms: int,
    late_alarms: int,
    at_risk: bool,
    last_sync_at: datetime | None,
    now: datetime,
    silent_after: timedelta,
) -> BoardState:
    if open_alarms > late_alarms:
        return "alarm"
    if at_risk:
        return "at_risk"
    if late_alarms:
        return "late_data"
    if last_sync_at is None or now - last_sync_at > silent_after:
        return "silent"
    return "ok"
