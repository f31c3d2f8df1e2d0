"""The storage contract, in domain words.

A :class:`Store` hands out transactions; everything a use case reads and writes goes through one
:class:`Transaction`, which commits when its ``async with`` block ends normally and rolls back otherwise.

Exceptions::

    StorageError            anything the storage layer refuses
    ├── AlreadyExists       a unique key is taken (a second tracker with the same serial, ...)
    └── MigrationError      the schema on disk and the migration files disagree
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from typing import Literal, Protocol

import msgspec

from coldchain.domain.access import ApiToken, Role
from coldchain.domain.audit import AuditEntry
from coldchain.domain.parties import Organisation, OrganisationKind, Tracker, TrackerProtocol
from coldchain.domain.products import Lot, Product
from coldchain.domain.profiles import Profile
from coldchain.domain.readings import Reading
from coldchain.domain.shipments import Assignment, Leg, Place, Priority, Shipment, ShipmentStatus
from coldchain.domain.sync import SyncConflict, SyncState, Watched
from coldchain.storage.audit import AuditRecords
from coldchain.storage.custody import CustodyRecords
from coldchain.storage.decisions import DecisionRecords
from coldchain.storage.emails import EmailRecords
from coldchain.storage.errors import AlreadyExists, MigrationError, StorageError
from coldchain.storage.evaluation import EvaluationRecords
from coldchain.storage.notifications import NotificationRecords
from coldchain.storage.portal import PortalRecords
from coldchain.storage.retention import RetentionRecords
from coldchain.storage.users import UserRecords

__all__ = [
    "AlreadyExists",
    "ConnectionUse",
    "Engine",
    "MigrationError",
    "StorageError",
    "Store",
    "Transaction",
]

Engine = Literal["sqlite", "postgresql"]


class ConnectionUse(msgspec.Struct, frozen=True, kw_only=True):
    """A store's connections at one moment: ``in_use`` by a transaction, ``idle`` in the pool, and the most it
    may open (``max``)."""

    in_use: int
    idle: int
    max: int


class Transaction(
    AuditRecords,
    EvaluationRecords,
    CustodyRecords,
    NotificationRecords,
    UserRecords,
    PortalRecords,
    DecisionRecords,
    EmailRecords,
    RetentionRecords,
    Protocol,
):
    """One unit of work. All methods run inside the same database transaction.

    Each area with records of its own (evaluation, custody, notifications) states them in its own module.
    """

    @property
    def one_moment(self) -> bool:
        """Whether every statement of this transaction sees the database at one moment (a snapshot, or no other
        writer while it runs), so two reads can never straddle another transaction's commit."""
        ...

    async def create_organisation(self, *, name: str, kind: OrganisationKind, now: datetime) -> Organisation: ...

    async def get_organisation(self, organisation_id: int) -> Organisation | None: ...

    async def list_organisations(self) -> list[Organisation]: ...

    async def create_api_token(
        self, *, organisation_id: int, role: Role, name: str, token_sha256: str, now: datetime
    ) -> ApiToken: ...

    async def api_token(self, token_sha256: str) -> ApiToken | None:
        """The token stored under this digest (revoked or not)."""
        ...

    async def api_tokens(self, organisation_id: int) -> list[ApiToken]: ...

    async def lock_api_tokens(self, organisation_id: int) -> None:
        """Serialise changes to the organisation's tokens and to its admin users until the transaction ends (the
        rule that keeps its last admin checks both)."""
        ...

    async def revoke_api_token(self, organisation_id: int, token_id: int, *, now: datetime) -> ApiToken | None:
        """Revoke (idempotent: the first revocation time stays); ``None`` when the organisation has no such token."""
        ...

    async def create_tracker(
        self,
        *,
        serial: str,
        secret: str,
        organisation_id: int | None,
        model: str | None,
        now: datetime,
        protocol: TrackerProtocol = "hmac",
        device_id: str | None = None,
        calibration_due_on: date | None = None,
    ) -> Tracker:
        """Register a tracker; :class:`AlreadyExists` when the serial is taken."""
        ...

    async def get_tracker(self, serial: str) -> Tracker | None: ...

    async def set_tracker_calibration(self, tracker_id: int, due_on: date | None) -> None:
        """Record when the tracker's calibration runs out (after a new calibration certificate)."""
        ...

    async def get_osmand_tracker(self, device_id: str) -> Tracker | None:
        """The OsmAnd tracker with this device id (a signing tracker has none: it is never found here)."""
        ...

    async def get_tracker_by_id(self, tracker_id: int) -> Tracker | None: ...

    async def create_shipment(
        self,
        *,
        organisation_id: int,
        reference: str,
        product_id: int,
        lot_id: int | None,
        quantity: int,
        profile: Profile,
        origin: Place,
        destination: Place,
        waypoints: Sequence[tuple[float, float]],
        geofence_m: float,
        legs: Sequence[Leg],
        receiver_id: int | None,
        promised_at: datetime | None,
        priority: Priority,
        now: datetime,
    ) -> Shipment:
        """A new planned shipment pinned to ``profile``'s version; :class:`AlreadyExists` for a taken reference."""
        ...

    async def get_shipment(self, shipment_id: int) -> Shipment | None: ...

    async def shipment_ids(self, *, party: int | None, status: ShipmentStatus | None = None) -> list[int]:
        """Ids of the shipments ``party`` takes part in (shipper, carrier of a leg, receiver), or of all."""
        ...

    async def set_shipment_status(self, shipment_id: int, status: ShipmentStatus, *, now: datetime) -> None: ...

    async def assign_tracker(
        self, *, shipment_id: int, tracker_id: int, starts_at: datetime, ends_at: datetime | None, now: datetime
    ) -> Assignment: ...

    async def end_assignment(self, assignment_id: int, ends_at: datetime) -> None: ...

    async def assignments_of_tracker(self, tracker_id: int) -> list[Assignment]:
        """The tracker's assignments, by start time (locks nothing: callers lock the tracker's sync state)."""
        ...

    async def assignments_of_shipment(self, shipment_id: int) -> list[Assignment]: ...

    async def saved_eta(self, shipment_id: int) -> tuple[datetime, bool, bytes] | None:
        """The last stored estimate: when it was computed, whether it was at risk, and its JSON."""
        ...

    async def save_eta(self, shipment_id: int, *, computed_at: datetime, at_risk: bool, estimate: bytes) -> None: ...

    async def insert_readings(
        self, tracker_id: int, readings: Sequence[Reading], *, received_at: datetime
    ) -> list[int]:
        """Store readings in bulk; a reading whose (tracker, seq) is already held is ignored, and of two copies of
        one number in ``readings`` the first is stored (the careful path: every number is looked up).

        The caller holds the tracker's lock (:meth:`sync_state`): on PostgreSQL readings are partitioned by device
        time, so the database cannot refuse a second row of a number by itself. Returns the sequence numbers that
        were new, in no particular order.
        """
        ...

    async def append_readings(self, tracker_id: int, readings: Sequence[Reading], *, received_at: datetime) -> None:
        """Store readings known to be new (the fast path: COPY straight into ``readings`` on PostgreSQL, no look-up).

        The caller holds the tracker's lock (:meth:`sync_state`) and has made sure that no number of ``readings``
        is held and none is repeated; a reading breaking that rule fails the transaction where the engine's keys
        can tell (the same number and device time), and is stored twice where they cannot.
        """
        ...

    async def count_readings(self, tracker_id: int | None = None) -> int: ...

    async def quarantine_readings(
        self, tracker_id: int, refused: Sequence[tuple[Reading, str]], *, received_at: datetime
    ) -> list[int]:
        """Keep refused readings aside with their reasons; a (tracker, seq) already held is ignored.

        Returns the sequence numbers that were new.
        """
        ...

    async def quarantined_readings(self, tracker_id: int) -> list[tuple[Reading, str]]:
        """A tracker's quarantined readings with their reasons, by sequence number."""
        ...

    async def held_seqs(self, tracker_id: int, *, after_seq: int, up_to_seq: int) -> list[int]:
        """Sequence numbers held (stored or quarantined) in ``(after_seq, up_to_seq]``, ascending."""
        ...

    async def held_readings(self, tracker_id: int, seqs: Sequence[int]) -> dict[int, tuple[Reading, str | None]]:
        """The readings held under these sequence numbers: each with ``None`` when stored, or with its reason when
        quarantined. Numbers not held are absent."""
        ...

    async def record_sync_conflict(self, tracker_id: int, conflict: SyncConflict) -> bool:
        """Keep a conflicting copy beside the held reading; false when the same copy was recorded before."""
        ...

    async def sync_conflicts(self, tracker_id: int, *, limit: int = 100) -> list[SyncConflict]:
        """The tracker's recorded conflicts, newest first."""
        ...

    async def sync_state(self, tracker_id: int) -> SyncState:
        """The tracker's sync state, locked until the transaction ends (batches of one tracker serialise)."""
        ...

    async def sync_state_watched(self, tracker_id: int) -> tuple[SyncState, Watched | None]:
        """:meth:`sync_state`, and in the same statement the span its assignments cover (``None``: the tracker
        was never assigned) and whether a shipment of them has a signed decision not yet marked changed. Assigning
        a tracker and signing a decision take its sync-state lock, so both hold while it is held."""
        ...

    async def save_sync_state(self, state: SyncState) -> None: ...

    async def trackers_waiting_for_judgement(
        self, *, shipment_id: int | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[int]:
        """Trackers with stored readings not judged yet (judging after commit), of the assignments of
        ``shipment_id`` (``None``: of any shipment), waiting since before ``since`` (``None``: however short),
        lowest id first, at most ``limit``."""
        ...

    async def sync_states(self, organisation_id: int | None = None) -> list[tuple[str, SyncState]]:
        """Every tracker's serial and sync state (of one organisation's trackers, when given), by serial."""
        ...

    async def readings_between(self, tracker_id: int, start: datetime, end: datetime) -> list[Reading]:
        """Readings with ``start <= device_time < end``, in device-time order."""
        ...

    async def save_profile_version(self, profile: Profile, *, now: datetime) -> tuple[Profile, bool]:
        """Store ``profile`` as the next version of its id, unless the latest version holds the same document.

        The profile's own ``version`` is ignored: the store numbers versions 1, 2, 3, ... per id. Returns the
        profile as stored (with its version) and whether this call stored it. :class:`AlreadyExists` when a
        concurrent transaction took the same version number first.
        """
        ...

    async def latest_profile(self, profile_id: str) -> Profile | None: ...

    async def profile_version(self, profile_id: str, version: int) -> Profile | None: ...

    async def list_profiles(self) -> list[Profile]:
        """The latest version of every profile, by id."""
        ...

    async def create_product(
        self, *, organisation_id: int, name: str, gtin: str | None, profile_id: str | None, now: datetime
    ) -> Product:
        """:class:`AlreadyExists` when the organisation already has a product of that name."""
        ...

    async def get_product(self, product_id: int) -> Product | None: ...

    async def list_products(self, organisation_id: int | None = None) -> list[Product]:
        """Products of one organisation, or of every organisation when ``None``, by id."""
        ...

    async def create_lot(self, *, product_id: int, lot_number: str, expires_on: date | None, now: datetime) -> Lot:
        """:class:`AlreadyExists` when the product already has a lot with that number."""
        ...

    async def get_lot(self, lot_id: int) -> Lot | None: ...

    async def list_lots(self, product_id: int) -> list[Lot]:
        """A product's lots, by id."""
        ...

    async def append_audit(self, *, actor: str, action: str, subject: str, detail: str, now: datetime) -> None:
        """Add an entry to the audit trail when this transaction commits: entries are chained (id, previous
        hash, hash) in commit order, in one step just before the commit, so a transaction holds the chain's lock
        only while it commits. Reading the trail in the same transaction sees its own entries."""
        ...

    async def audit_entries(self, *, after_id: int = 0, limit: int = 1000) -> list[AuditEntry]: ...

    async def audit_head(self) -> tuple[int, str] | None:
        """The id and hash of the audit trail's last entry (``None`` while it is empty)."""
        ...


class Store(Protocol):
    """A database holding coldchain's records."""

    @property
    def engine(self) -> Engine: ...

    def transaction(self, *, snapshot: bool = False) -> AbstractAsyncContextManager[Transaction]:
        """A unit of work. ``snapshot``: a read-only one whose statements all see the database as it was when the
        first of them ran (PostgreSQL: REPEATABLE READ READ ONLY; a write is refused). Without it, each statement
        on PostgreSQL sees what committed before it began (READ COMMITTED); SQLite's transactions hold the write
        lock from their start, so every one of them sees one moment."""
        ...

    async def migrate(self) -> list[str]:
        """Apply pending migrations (safe to repeat, safe from two processes); names those it applied."""
        ...

    async def ping(self) -> bool:
        """Whether the database answers a trivial query right now."""
        ...

    async def pending_migrations(self) -> list[str]:
        """The migrations this version knows that the database has not applied (all of them on an empty database);
        ``MigrationError`` when the two disagree (an applied file changed, or one this version does not know)."""
        ...

    def connections(self) -> ConnectionUse:
        """The database connections this store holds now, without touching the database."""
        ...

    async def close(self) -> None: ...
