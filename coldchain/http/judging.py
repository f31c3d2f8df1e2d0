"""The app's hook before every request: unknown query parameters refused, then, when readings are judged after
commit (:mod:`coldchain.services.judging`), what a shipment-scoped read must see judged is judged first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request

from coldchain.http.query import refuse_unknown_query
from coldchain.http.wire import MAX_ID
from coldchain.services.judging import Judge, Waiting

__all__ = ["before_request", "hand_over", "room_to_judge"]

#: Routes about every shipment of the caller that show judgements: every waiting tracker is judged first.
_ALL_SHIPMENTS = frozenset({"/v1/worklist", "/portal/worklist"})


async def before_request(request: Request[Any, Any, Any]) -> None:
    """Refuse unknown query parameters (422); then, judging after commit, judge the waiting trackers of the
    shipment the path names (or of every shipment, for a worklist), so the answer sees every stored reading
    judged. A tracker's sync itself never waits for a judgement. A path id no row can have (out of ``1..MAX_ID``)
    settles nothing: the route's own parameter check answers it."""
    await refuse_unknown_query(request)
    judge: Judge | None = request.app.state.judge
    if judge is None:
        return
    shipment_id = request.path_params.get("shipment_id")
    if isinstance(shipment_id, int):
        if 1 <= shipment_id <= MAX_ID:
            await judge.settle(shipment_id)
    elif request.url.path in _ALL_SHIPMENTS:
        await judge.settle()


def hand_over(request: Request[Any, Any, Any]) -> Callable[[Waiting], object] | None:
    """Where a batch's readings waiting to be judged go: the process's judge, when readings are judged after
    commit (``record_batch``'s ``hand_over``)."""
    judge: Judge | None = request.app.state.judge
    return None if judge is None else judge.hand_over


async def room_to_judge(request: Request[Any, Any, Any], *, timeout_s: float) -> bool:
    """Judging after commit, wait (at most ``timeout_s``) while the process's judge holds as many waiting readings
    as it may; whether a new batch may go on."""
    judge: Judge | None = request.app.state.judge
    return judge is None or await judge.room(timeout_s=timeout_s)
