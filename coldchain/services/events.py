"""Use cases of the live event stream: an organisation's notifications, in commit order, from a position on.

Any role of an organisation reads its own stream; the operator names the organisation. Positions are given at
commit in commit order, so a client that resumes after the last position it saw misses nothing.
"""

from __future__ import annotations

from coldchain.domain.access import Principal
from coldchain.domain.notifications import Notification
from coldchain.services.access import require
from coldchain.services.errors import Invalid, NotFound
from coldchain.storage import Store

__all__ = ["events_after", "open_stream"]


async def open_stream(store: Store, principal: Principal, organisation_id: int | None) -> tuple[int, int]:
    """The organisation whose stream the caller reads, and the position of its latest notification.

    The operator must name the organisation; anyone else reads their own (naming another answers
    :class:`NotFound`, as if it did not exist).
    """
    require(principal, "read")
    if principal.organisation_id is None:
        if organisation_id is None:
            raise Invalid("the operator names the organisation whose events to stream: ?organisation_id=")
        wanted = organisation_id
    else:
        if organisation_id is not None and organisation_id != principal.organisation_id:
            raise NotFound(f"no organisation {organisation_id}")
        wanted = principal.organisation_id
    async with store.transaction() as tx:
        if await tx.get_organisation(wanted) is None:
            raise NotFound(f"no organisation {wanted}")
        return wanted, await tx.last_notification_position(wanted)


async def events_after(store: Store, organisation_id: int, *, after: int, limit: int = 100) -> list[Notification]:
    """The organisation's notifications after position ``after``, oldest first (call :func:`open_stream` first)."""
    async with store.transaction() as tx:
        return await tx.notifications_after_position(organisation_id, after=after, limit=limit)
