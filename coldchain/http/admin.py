"""The bootstrap admin API: register trackers and see how their syncs go."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody

from coldchain.domain.sync import SyncState
from coldchain.http.auth import require_admin
from coldchain.http.deps import StoreDep
from coldchain.http.errors import ApiError
from coldchain.http.wire import TrackerCreatedOut, TrackerIn, TrackerOut, TrackerStatusOut
from coldchain.services.trackers import UnknownOrganisation, register_tracker, sync_overview, tracker_status
from coldchain.storage import AlreadyExists

__all__ = ["TrackerAdmin"]


def _status(state: SyncState) -> TrackerStatusOut:
    return TrackerStatusOut(
        acked_through=state.acked_through,
        max_seq=state.max_seq,
        readings_new=state.readings_new,
        readings_duplicate=state.readings_duplicate,
        readings_quarantined=state.readings_quarantined,
        batches=state.batches,
        last_sync_at=state.last_sync_at,
        clock_offset_s=state.clock_offset_s,
        clock_flagged=state.clock_flagged,
    )


class TrackerAdmin(Controller):
    path = "/v1/trackers"
    guards = [require_admin]  # noqa: RUF012 (Litestar reads it as a class attribute)
    tags = ["admin"]  # noqa: RUF012

    @post("/", status_code=201, summary="Register a tracker; its secret is returned once")
    async def register(self, data: JSONBody[TrackerIn], store: StoreDep) -> TrackerCreatedOut:
        try:
            tracker, secret = await register_tracker(
                store,
                serial=data.serial,
                model=data.model,
                organisation_id=data.organisation_id,
                actor="admin",
                now=datetime.now(UTC),
            )
        except AlreadyExists as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        except UnknownOrganisation as exc:
            raise ApiError(422, "invalid", str(exc)) from None
        return TrackerCreatedOut(tracker_id=tracker.serial, secret=secret)

    @get("/", summary="Every tracker with its sync state")
    async def list_trackers(self, store: StoreDep) -> list[TrackerOut]:
        return [TrackerOut(tracker_id=serial, sync=_status(state)) for serial, state in await sync_overview(store)]

    @get("/{serial:str}", summary="One tracker with its sync state")
    async def show(self, serial: FromPath[str], store: StoreDep) -> TrackerOut:
        state = await tracker_status(store, serial)
        if state is None:
            raise ApiError(404, "not_found", f"no tracker {serial!r}")
        return TrackerOut(tracker_id=serial, sync=_status(state))
