"""Trackers: register them (the secret is shown once) and see how their syncs go; scoped to the caller's
organisation (the operator sees all)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody

from coldchain.domain.sync import SyncConflict, SyncState
from coldchain.http.deps import NowDep, PrincipalDep, StoreDep
from coldchain.http.openapi import BEARER, errors
from coldchain.http.wire import (
    ConflictOut,
    TrackerCreatedOut,
    TrackerDetailOut,
    TrackerIn,
    TrackerOut,
    TrackerStatusOut,
)
from coldchain.services.trackers import register_tracker, sync_overview, tracker_status

__all__ = ["TrackerAdmin"]


def _status(state: SyncState) -> TrackerStatusOut:
    return TrackerStatusOut(
        acked_through=state.acked_through,
        max_seq=state.max_seq,
        readings_new=state.readings_new,
        readings_duplicate=state.readings_duplicate,
        readings_quarantined=state.readings_quarantined,
        readings_conflicting=state.readings_conflicting,
        batches=state.batches,
        last_sync_at=state.last_sync_at,
        clock_offset_s=state.clock_offset_s,
        clock_flagged=state.clock_flagged,
    )


def _conflict(conflict: SyncConflict) -> ConflictOut:
    return ConflictOut(
        seq=conflict.seq,
        received_at=conflict.received_at,
        held_as=conflict.held_as,
        held=conflict.held,
        sent=conflict.sent,
        sent_reason=conflict.sent_reason,
    )


class TrackerAdmin(Controller):
    path = "/v1/trackers"
    tags = ["trackers"]  # noqa: RUF012 (Litestar reads it as a class attribute)
    security = BEARER

    @post(
        "/",
        status_code=201,
        summary="Register a tracker; its secret (or OsmAnd device id) is returned once",
        responses=errors(401, 403, 409, 422),
    )
    async def register(
        self, data: JSONBody[TrackerIn], store: StoreDep, principal: PrincipalDep, now: NowDep
    ) -> TrackerCreatedOut:
        tracker, secret = await register_tracker(
            store,
            principal,
            serial=data.serial,
            model=data.model,
            organisation_id=data.organisation_id,
            now=now,
            protocol=data.protocol,
            calibration_due_on=data.calibration_due_on,
        )
        if tracker.protocol == "osmand":
            return TrackerCreatedOut(tracker_id=tracker.serial, protocol=tracker.protocol, device_id=tracker.device_id)
        return TrackerCreatedOut(tracker_id=tracker.serial, protocol=tracker.protocol, secret=secret)

    @get(
        "/",
        summary="Every tracker with its sync state",
        responses=errors(401, 403),
    )
    async def list_trackers(self, store: StoreDep, principal: PrincipalDep) -> list[TrackerOut]:
        overview = await sync_overview(store, principal)
        return [TrackerOut(tracker_id=serial, sync=_status(state)) for serial, state in overview]

    @get(
        "/{serial:str}",
        summary="One tracker with its sync state and its latest conflicts",
        responses=errors(401, 403, 404),
    )
    async def show(self, serial: FromPath[str], store: StoreDep, principal: PrincipalDep) -> TrackerDetailOut:
        view = await tracker_status(store, principal, serial)
        return TrackerDetailOut(
            tracker_id=serial,
            protocol=view.tracker.protocol,
            device_id=view.tracker.device_id,
            sync=_status(view.state),
            conflicts=[_conflict(c) for c in view.conflicts],
        )
