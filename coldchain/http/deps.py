"""Dependencies the routes ask for by name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import SkipValidation

from coldchain.domain.access import Principal
from coldchain.services.sync import SyncPolicy
from coldchain.services.trackers import TrackerCache
from coldchain.settings import Settings
from coldchain.storage import Store

__all__ = [
    "Clock",
    "Ingest",
    "IngestDep",
    "NowDep",
    "PolicyDep",
    "PrincipalDep",
    "SettingsDep",
    "StoreDep",
    "TrackersDep",
    "provide_ingest",
    "provide_now",
    "provide_policy",
    "provide_settings",
    "provide_store",
    "provide_trackers",
    "system_clock",
]

Clock = Callable[[], datetime]
"""What the routes take the time from: an aware UTC datetime per call (``create_app(settings, clock=...)``)."""


def system_clock() -> datetime:
    return datetime.now(UTC)


# Store is a typing.Protocol: Litestar must not try isinstance() on it.
StoreDep = NamedDependency[SkipValidation[Store]]
SettingsDep = NamedDependency[Settings]
TrackersDep = NamedDependency[SkipValidation[TrackerCache]]
PolicyDep = NamedDependency[SkipValidation[SyncPolicy]]
# The authenticated caller (coldchain.http.auth.provide_principal): 401 before the handler runs otherwise.
PrincipalDep = NamedDependency[SkipValidation[Principal]]
# The service's time for this request, read once from the app's clock: every route and use case takes it as ``now``.
NowDep = NamedDependency[SkipValidation[datetime]]


class Ingest(msgspec.Struct, frozen=True, kw_only=True):
    """What the sync route needs, as one dependency: Litestar resolves several dependencies of a route in a task
    group of their own (a task each, on every request), one alone in place."""

    store: Store
    settings: Settings
    trackers: TrackerCache
    policy: SyncPolicy
    now: datetime


IngestDep = NamedDependency[SkipValidation[Ingest]]


def provide_store(state: State) -> Store:
    store: Store = state.store
    return store


def provide_settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def provide_trackers(state: State) -> TrackerCache:
    trackers: TrackerCache = state.trackers
    return trackers


def provide_policy(state: State) -> SyncPolicy:
    policy: SyncPolicy = state.sync_policy
    return policy


def provide_ingest(state: State) -> Ingest:
    clock: Clock = state.clock
    return Ingest(
        store=state.store,
        settings=state.settings,
        trackers=state.trackers,
        policy=state.sync_policy,
        now=clock(),
    )


def provide_now(state: State) -> datetime:
    clock: Clock = state.clock
    return clock()
