"""What both engines share: the named statements of ``sql/queries/`` and the row mapping around them."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import aiosql
import msgspec

from coldchain.domain.access import ApiToken, Role
from coldchain.domain.audit import GENESIS_HASH, AuditEntry, entry_hash
from coldchain.domain.canonical import canonical_text
from coldchain.domain.parties import Organisation, OrganisationKind, Tracker, TrackerProtocol
from coldchain.domain.products import Lot, Product
from coldchain.domain.profiles import Profile
from coldchain.domain.readings import Reading
from coldchain.domain.shipments import Assignment, Leg, Mode, Place, Priority, Shipment, ShipmentStatus
from coldchain.domain.sync import SyncConflict, SyncState, Watched
from coldchain.storage._sqlbase import SqlBase
from coldchain.storage.audit import AuditSql
from coldchain.storage.custody import CustodySql
from coldchain.storage.decisions import DecisionsSql
from coldchain.storage.emails import EmailsSql
from coldchain.storage.errors import AlreadyExists
from coldchain.storage.evaluation import EvaluationSql
from coldchain.storage.notifications import NotificationsSql
from coldchain.storage.portal import PortalSql
from coldchain.storage.retention import RetentionSql
from coldchain.storage.users import UsersSql

__all__ = ["SqlTransaction", "load_queries", "sql_dir"]

_reading_json = msgspec.json.Encoder()
_ANY_TIME_BEFORE = datetime(9999, 12, 31, tzinfo=UTC)
"""A bound every stored time is before."""
# Sorted keys: the same profile always encodes to the same text, so "unchanged" is a string comparison.


def _profile_document(profile: Profile) -> str:
    """The profile as canonical JSON, without its version (the row's key carries the version)."""
    fields = msgspec.to_builtins(profile)
    del fields["version"]
    return canonical_text(fields)


def _mode(value: str) -> Mode:
    mode: Mode = value  # type: ignore[assignment]  # the table's CHECK admits only the four modes
    return mode


def sql_dir() -> Path:
    """The ``sql/`` folder: packaged inside ``coldchain`` in a wheel, at the repository root otherwise."""
    packaged = Path(__file__).resolve().parent.parent / "sql"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "sql"


@cache
def load_queries(driver: str) -> Any:
    """Every named statement of ``sql/queries/*.sql`` (one file per area, one namespace for all), read once per
    process and driver (the statements do not change while it runs; every store of the driver shares them)."""
    return aiosql.from_path(sql_dir() / "queries", driver)


class SqlTransaction(
    AuditSql,
    PortalSql,
    EvaluationSql,
    CustodySql,
    NotificationsSql,
    UsersSql,
    DecisionsSql,
    EmailsSql,
    RetentionSql,
    SqlBase,
):
    """The :class:`~coldchain.storage.base.Transaction` methods whose SQL both engines share.

    Subclasses say how a time crosses the driver, how readings are written in bulk and looked up by a list of
    sequence numbers, and how the readings' months are made and removed (see :class:`SqlBase`).
    """

    @abc.abstractmethod
    async def _readings_numbered(self, tracker_id: int, seqs: Sequence[int]) -> list[Any]:
        """The tracker's stored readings with these sequence numbers, as rows, in one statement."""

    @abc.abstractmethod
    async def _quarantined_numbered(self, tracker_id: int, seqs: Sequence[int]) -> list[Any]:
        """The tracker's quarantined readings with these sequence numbers, as rows, in one statement."""

    @abc.abstractmethod
    async def _insert_quarantined(
        self, tracker_id: int, rows: Sequence[tuple[int, str, str]], *, received_at: datetime
    ) -> list[int]:
        """Keep ``(seq, reason, reading JSON)`` rows in quarantine in one statement, ignoring held numbers (and of
        two rows of one number, the second); the numbers kept."""

    def _organisation(self, row: Any) -> Organisation:
        kind: OrganisationKind = row["kind"]
        return Organisation(id=row["id"], name=row["name"], kind=kind, created_at=self._time_out(row["created_at"]))

    def _tracker(self, row: Any) -> Tracker:
        protocol: TrackerProtocol = row["protocol"]
        return Tracker(
            id=row["id"],
            serial=row["serial"],
            secret=row["secret"],
            organisation_id=row["organisation_id"],
            model=row["model"],
            created_at=self._time_out(row["created_at"]),
            protocol=protocol,
            device_id=row["device_id"],
            calibration_due_on=None if row["calibration_due_on"] is None else self._date_out(row["calibration_due_on"]),
        )

    def _audit_entry(self, row: Any) -> AuditEntry:
        return AuditEntry(
            id=row["id"],
            at=self._time_out(row["at"]),
            actor=row["actor"],
            action=row["action"],
            subject=row["subject"],
            detail=row["detail"],
            prev_hash=row["prev_hash"],
            hash=row["hash"],
        )

    def _profile(self, row: Any) -> Profile:
        profile = msgspec.json.decode(row["document"], type=Profile)
        return msgspec.structs.replace(profile, version=row["version"])

    def _product(self, row: Any) -> Product:
        return Product(
            id=row["id"],
            organisation_id=row["organisation_id"],
            name=row["name"],
            gtin=row["gtin"],
            profile_id=row["profile_id"],
            created_at=self._time_out(row["created_at"]),
        )

    def _lot(self, row: Any) -> Lot:
        return Lot(
            id=row["id"],
            product_id=row["product_id"],
            lot_number=row["lot_number"],
            expires_on=None if row["expires_on"] is None else self._date_out(row["expires_on"]),
            created_at=self._time_out(row["created_at"]),
        )

    async def create_organisation(self, *, name: str, kind: OrganisationKind, now: datetime) -> Organisation:
        row = await self._q.insert_organisation(self._conn, name=name, kind=kind, created_at=self._time_in(now))
        if row is None:
            raise AlreadyExists(f"an organisation named {name!r} already exists")
        return self._organisation(row)

    async def get_organisation(self, organisation_id: int) -> Organisation | None:
        row = await self._q.get_organisation(self._conn, id=organisation_id)
        return None if row is None else self._organisation(row)

    async def list_organisations(self) -> list[Organisation]:
        return [self._organisation(row) async for row in self._q.list_organisations(self._conn)]

    def _api_token(self, row: Any) -> ApiToken:
        role: Role = row["role"]
        return ApiToken(
            id=row["id"],
            organisation_id=row["organisation_id"],
            role=role,
            name=row["name"],
            created_at=self._time_out(row["created_at"]),
            revoked_at=None if row["revoked_at"] is None else self._time_out(row["revoked_at"]),
        )

    async def lock_api_tokens(self, organisation_id: int) -> None:
        await self._lock(f"api_tokens:{organisation_id}")

    async def create_api_token(
        self, *, organisation_id: int, role: Role, name: str, token_sha256: str, now: datetime
    ) -> ApiToken:
        row = await self._q.insert_api_token(
            self._conn,
            organisation_id=organisation_id,
            role=role,
            name=name,
            token_sha256=token_sha256,
            created_at=self._time_in(now),
        )
        return self._api_token(row)

    async def api_token(self, token_sha256: str) -> ApiToken | None:
        row = await self._q.api_token_by_sha256(self._conn, token_sha256=token_sha256)
        return None if row is None else self._api_token(row)

    async def api_tokens(self, organisation_id: int) -> list[ApiToken]:
        rows = self._q.api_tokens_of_organisation(self._conn, organisation_id=organisation_id)
        return [self._api_token(row) async for row in rows]

    async def revoke_api_token(self, organisation_id: int, token_id: int, *, now: datetime) -> ApiToken | None:
        row = await self._q.revoke_api_token(
            self._conn, id=token_id, organisation_id=organisation_id, revoked_at=self._time_in(now)
        )
        return None if row is None else self._api_token(row)

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
        row = await self._q.insert_tracker(
            self._conn,
            organisation_id=organisation_id,
            serial=serial,
            model=model,
            secret=secret,
            protocol=protocol,
            device_id=device_id,
            created_at=self._time_in(now),
            calibration_due_on=None if calibration_due_on is None else self._date_in(calibration_due_on),
        )
        if row is None:
            raise AlreadyExists(f"a tracker with serial {serial!r} already exists")
        await self._q.insert_sync_state(self._conn, tracker_id=row["id"])
        return self._tracker(row)

    async def set_tracker_calibration(self, tracker_id: int, due_on: date | None) -> None:
        await self._q.set_tracker_calibration(
            self._conn, id=tracker_id, due_on=None if due_on is None else self._date_in(due_on)
        )

    async def get_tracker(self, serial: str) -> Tracker | None:
        row = await self._q.get_tracker_by_serial(self._conn, serial=serial)
        return None if row is None else self._tracker(row)

    async def get_osmand_tracker(self, device_id: str) -> Tracker | None:
        row = await self._q.get_tracker_by_device_id(self._conn, device_id=device_id)
        return None if row is None else self._tracker(row)

    async def get_tracker_by_id(self, tracker_id: int) -> Tracker | None:
        row = await self._q.get_tracker_by_id(self._conn, id=tracker_id)
        return None if row is None else self._tracker(row)

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
        shipment_id = await self._q.insert_shipment(
            self._conn,
            organisation_id=organisation_id,
            reference=reference,
            product_id=product_id,
            lot_id=lot_id,
            quantity=quantity,
            profile_id=profile.id,
            profile_version=profile.version,
            origin_name=origin.name,
            origin_lat=origin.lat,
            origin_lon=origin.lon,
            destination_name=destination.name,
            destination_lat=destination.lat,
            destination_lon=destination.lon,
            geofence_m=geofence_m,
            waypoints=_reading_json.encode([list(point) for point in waypoints]).decode(),
            receiver_id=receiver_id,
            promised_at=None if promised_at is None else self._time_in(promised_at),
            priority=priority,
            status="planned",
            created_at=self._time_in(now),
        )
        if shipment_id is None:
            raise AlreadyExists(f"organisation {organisation_id} already has a shipment {reference!r}")
        for leg in legs:
            await self._q.insert_leg(
                self._conn, shipment_id=shipment_id, leg_no=leg.leg_no, carrier_id=leg.carrier_id, mode=leg.mode
            )
        shipment = await self.get_shipment(shipment_id)
        assert shipment is not None
        return shipment

    async def get_shipment(self, shipment_id: int) -> Shipment | None:
        row = await self._q.get_shipment(self._conn, id=shipment_id)
        if row is None:
            return None
        legs = [
            Leg(leg_no=leg["leg_no"], carrier_id=leg["carrier_id"], mode=_mode(leg["mode"]))
            async for leg in self._q.legs_of_shipment(self._conn, shipment_id=shipment_id)
        ]
        status: ShipmentStatus = row["status"]
        priority: Priority = row["priority"]
        return Shipment(
            id=row["id"],
            organisation_id=row["organisation_id"],
            reference=row["reference"],
            product_id=row["product_id"],
            lot_id=row["lot_id"],
            quantity=row["quantity"],
            profile_id=row["profile_id"],
            profile_version=row["profile_version"],
            origin=Place(name=row["origin_name"], lat=row["origin_lat"], lon=row["origin_lon"]),
            destination=Place(name=row["destination_name"], lat=row["destination_lat"], lon=row["destination_lon"]),
            waypoints=[
                (lat, lon) for lat, lon in msgspec.json.decode(row["waypoints"], type=list[tuple[float, float]])
            ],
            geofence_m=row["geofence_m"],
            receiver_id=row["receiver_id"],
            promised_at=None if row["promised_at"] is None else self._time_out(row["promised_at"]),
            priority=priority,
            status=status,
            legs=legs,
            created_at=self._time_out(row["created_at"]),
            updated_at=self._time_out(row["updated_at"]),
        )

    async def shipment_ids(self, *, party: int | None, status: ShipmentStatus | None = None) -> list[int]:
        if party is None:
            rows = self._q.all_shipment_ids(self._conn, status=status)
        else:
            rows = self._q.shipment_ids_of_party(self._conn, organisation_id=party, status=status)
        return [row["id"] async for row in rows]

    async def set_shipment_status(self, shipment_id: int, status: ShipmentStatus, *, now: datetime) -> None:
        await self._q.set_shipment_status(self._conn, id=shipment_id, status=status, updated_at=self._time_in(now))

    def _assignment(self, row: Any) -> Assignment:
        return Assignment(
            id=row["id"],
            shipment_id=row["shipment_id"],
            tracker_id=row["tracker_id"],
            starts_at=self._time_out(row["starts_at"]),
            ends_at=None if row["ends_at"] is None else self._time_out(row["ends_at"]),
            created_at=self._time_out(row["created_at"]),
        )

    async def assign_tracker(
        self, *, shipment_id: int, tracker_id: int, starts_at: datetime, ends_at: datetime | None, now: datetime
    ) -> Assignment:
        row = await self._q.insert_assignment(
            self._conn,
            shipment_id=shipment_id,
            tracker_id=tracker_id,
            starts_at=self._time_in(starts_at),
            ends_at=None if ends_at is None else self._time_in(ends_at),
            created_at=self._time_in(now),
        )
        return self._assignment(row)

    async def end_assignment(self, assignment_id: int, ends_at: datetime) -> None:
        await self._q.end_assignment(self._conn, id=assignment_id, ends_at=self._time_in(ends_at))

    async def assignments_of_tracker(self, tracker_id: int) -> list[Assignment]:
        rows = self._q.assignments_of_tracker(self._conn, tracker_id=tracker_id)
        return [self._assignment(row) async for row in rows]

    async def assignments_of_shipment(self, shipment_id: int) -> list[Assignment]:
        rows = self._q.assignments_of_shipment(self._conn, shipment_id=shipment_id)
        return [self._assignment(row) async for row in rows]

    async def saved_eta(self, shipment_id: int) -> tuple[datetime, bool, bytes] | None:
        row = await self._q.get_eta(self._conn, shipment_id=shipment_id)
        if row is None:
            return None
        return self._time_out(row["computed_at"]), bool(row["at_risk"]), row["estimate"].encode()

    async def save_eta(self, shipment_id: int, *, computed_at: datetime, at_risk: bool, estimate: bytes) -> None:
        await self._q.upsert_eta(
            self._conn,
            shipment_id=shipment_id,
            computed_at=self._time_in(computed_at),
            at_risk=at_risk,
            estimate=estimate.decode(),
        )

    async def count_readings(self, tracker_id: int | None = None) -> int:
        if tracker_id is None:
            count = await self._q.count_readings(self._conn)
        else:
            count = await self._q.count_readings_of_tracker(self._conn, tracker_id=tracker_id)
        return int(count)

    async def readings_between(self, tracker_id: int, start: datetime, end: datetime) -> list[Reading]:
        rows = self._q.readings_between(
            self._conn, tracker_id=tracker_id, start=self._time_in(start), end=self._time_in(end)
        )
        return [self._reading(row) async for row in rows]

    async def quarantine_readings(
        self, tracker_id: int, refused: Sequence[tuple[Reading, str]], *, received_at: datetime
    ) -> list[int]:
        if not refused:
            return []
        rows = [(reading.seq, reason, _reading_json.encode(reading).decode()) for reading, reason in refused]
        return await self._insert_quarantined(tracker_id, rows, received_at=received_at)

    async def quarantined_readings(self, tracker_id: int) -> list[tuple[Reading, str]]:
        rows = self._q.quarantined_of_tracker(self._conn, tracker_id=tracker_id)
        return [(msgspec.json.decode(row["reading"], type=Reading), row["reason"]) async for row in rows]

    async def held_seqs(self, tracker_id: int, *, after_seq: int, up_to_seq: int) -> list[int]:
        rows = self._q.held_seqs(self._conn, tracker_id=tracker_id, after_seq=after_seq, up_to_seq=up_to_seq)
        return [row["seq"] async for row in rows]

    async def held_readings(self, tracker_id: int, seqs: Sequence[int]) -> dict[int, tuple[Reading, str | None]]:
        # Two statements whatever the numbers: on PostgreSQL each looks in every partition of readings, since a
        # copy with another device time would sit in another partition.
        wanted = sorted(set(seqs))
        held: dict[int, tuple[Reading, str | None]] = {}
        if not wanted:
            return held
        for row in await self._readings_numbered(tracker_id, wanted):
            held.setdefault(row["seq"], (self._reading(row), None))
        for row in await self._quarantined_numbered(tracker_id, wanted):
            held[row["seq"]] = (msgspec.json.decode(row["reading"], type=Reading), row["reason"])
        return held

    async def record_sync_conflict(self, tracker_id: int, conflict: SyncConflict) -> bool:
        row = await self._q.insert_sync_conflict(
            self._conn,
            tracker_id=tracker_id,
            seq=conflict.seq,
            received_at=self._time_in(conflict.received_at),
            held_as=conflict.held_as,
            held=_reading_json.encode(conflict.held).decode(),
            sent=_reading_json.encode(conflict.sent).decode(),
            sent_reason=conflict.sent_reason,
        )
        return row is not None

    async def sync_conflicts(self, tracker_id: int, *, limit: int = 100) -> list[SyncConflict]:
        rows = self._q.sync_conflicts_of_tracker(self._conn, tracker_id=tracker_id, limit=limit)
        return [
            SyncConflict(
                seq=row["seq"],
                received_at=self._time_out(row["received_at"]),
                held_as=row["held_as"],
                held=msgspec.json.decode(row["held"], type=Reading),
                sent=msgspec.json.decode(row["sent"], type=Reading),
                sent_reason=row["sent_reason"],
            )
            async for row in rows
        ]

    def _sync_state(self, row: Any) -> SyncState:
        return SyncState(
            tracker_id=row["tracker_id"],
            acked_through=row["acked_through"],
            max_seq=row["max_seq"],
            readings_new=row["readings_new"],
            readings_duplicate=row["readings_duplicate"],
            readings_quarantined=row["readings_quarantined"],
            readings_conflicting=row["readings_conflicting"],
            batches=row["batches"],
            last_sync_at=None if row["last_sync_at"] is None else self._time_out(row["last_sync_at"]),
            last_sent_at=None if row["last_sent_at"] is None else self._time_out(row["last_sent_at"]),
            clock_offset_s=row["clock_offset_s"],
            clock_flagged=bool(row["clock_flagged"]),
            max_refused_seq=row["max_refused_seq"],
            judge_from=None if row["judge_from"] is None else self._time_out(row["judge_from"]),
            judge_until=None if row["judge_until"] is None else self._time_out(row["judge_until"]),
            judge_since=None if row["judge_since"] is None else self._time_out(row["judge_since"]),
            judge_count=row["judge_count"],
            judge_round=row["judge_round"],
        )

    async def sync_state(self, tracker_id: int) -> SyncState:
        return (await self.sync_state_watched(tracker_id))[0]

    async def sync_state_watched(self, tracker_id: int) -> tuple[SyncState, Watched | None]:
        row = await self._locked_sync_state_row(tracker_id)
        if row is None:
            raise LookupError(f"no tracker with id {tracker_id}")
        watched = None
        if row["watched_from"] is not None:
            ends_at = None if row["watched_to"] is None else self._time_out(row["watched_to"])
            watched = Watched(
                starts_at=self._time_out(row["watched_from"]), ends_at=ends_at, decided=bool(row["decided"])
            )
        return self._sync_state(row), watched

    async def save_sync_state(self, state: SyncState) -> None:
        await self._q.save_sync_state(
            self._conn,
            tracker_id=state.tracker_id,
            acked_through=state.acked_through,
            max_seq=state.max_seq,
            readings_new=state.readings_new,
            readings_duplicate=state.readings_duplicate,
            readings_quarantined=state.readings_quarantined,
            readings_conflicting=state.readings_conflicting,
            batches=state.batches,
            last_sync_at=None if state.last_sync_at is None else self._time_in(state.last_sync_at),
            last_sent_at=None if state.last_sent_at is None else self._time_in(state.last_sent_at),
            clock_offset_s=state.clock_offset_s,
            clock_flagged=state.clock_flagged,
            max_refused_seq=state.max_refused_seq,
            judge_from=None if state.judge_from is None else self._time_in(state.judge_from),
            judge_until=None if state.judge_until is None else self._time_in(state.judge_until),
            judge_since=None if state.judge_since is None else self._time_in(state.judge_since),
            judge_count=state.judge_count,
            judge_round=state.judge_round,
        )

    async def trackers_waiting_for_judgement(
        self, *, shipment_id: int | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[int]:
        rows = self._q.trackers_waiting_for_judgement(
            self._conn,
            shipment_id=shipment_id,
            since=self._time_in(_ANY_TIME_BEFORE if since is None else since),
            limit=limit,
        )
        return [row["tracker_id"] async for row in rows]

    async def sync_states(self, organisation_id: int | None = None) -> list[tuple[str, SyncState]]:
        rows = self._q.sync_states(self._conn, organisation_id=organisation_id)
        return [(row["serial"], self._sync_state(row)) async for row in rows]

    async def append_audit(self, *, actor: str, action: str, subject: str, detail: str, now: datetime) -> None:
        # Kept until the transaction commits (see chain_audit): holding the chain's lock from here to the commit
        # would serialise every transaction that audits anything for the rest of its work.
        self._audit_pending.append((now.astimezone(UTC), actor, action, subject, detail))

    async def chain_audit(self) -> list[AuditEntry]:
        """Chain the entries this transaction appended and insert them, in one step: take the chain's lock,
        read the head once, hash each entry onto the one before, insert them all in one statement.

        The store calls this just before COMMIT, so the lock (the audit chain is one sequence across the whole
        database) is held only from here to the commit, and entries get their ids in commit order, gap-free: a
        transaction that rolls back never took an id. Reading the trail inside the transaction chains what is
        pending first, so a transaction sees its own entries as before."""
        pending, self._audit_pending = self._audit_pending, []
        if not pending:
            return []
        await self._lock_audit_chain()
        last = await self._q.last_audit_entry(self._conn)
        entry_id, prev_hash = (0, GENESIS_HASH) if last is None else (int(last["id"]), last["hash"])
        entries: list[AuditEntry] = []
        for at, actor, action, subject, detail in pending:
            entry_id += 1
            fields: dict[str, Any] = {
                "id": entry_id,
                "at": at,
                "actor": actor,
                "action": action,
                "subject": subject,
                "detail": detail,
                "prev_hash": prev_hash,
            }
            prev_hash = entry_hash(**fields)
            entries.append(AuditEntry(**fields, hash=prev_hash))
        await self._q.insert_audit_entries(
            self._conn,
            [{**msgspec.structs.asdict(entry), "at": self._time_in(entry.at)} for entry in entries],
        )
        return entries

    async def audit_head(self) -> tuple[int, str] | None:
        await self.chain_audit()
        row = await self._q.last_audit_entry(self._conn)
        return None if row is None else (int(row["id"]), row["hash"])

    async def audit_entries(self, *, after_id: int = 0, limit: int = 1000) -> list[AuditEntry]:
        await self.chain_audit()
        rows = self._q.audit_entries(self._conn, after_id=after_id, limit=limit)
        return [self._audit_entry(row) async for row in rows]

    async def save_profile_version(self, profile: Profile, *, now: datetime) -> tuple[Profile, bool]:
        document = _profile_document(profile)
        latest = await self._q.latest_profile(self._conn, profile_id=profile.id)
        if latest is not None and latest["document"] == document:
            return self._profile(latest), False
        version = 1 if latest is None else latest["version"] + 1
        row = await self._q.insert_profile_version(
            self._conn,
            profile_id=profile.id,
            version=version,
            name=profile.name,
            document=document,
            created_at=self._time_in(now),
        )
        if row is None:
            raise AlreadyExists(f"version {version} of profile {profile.id!r} was stored concurrently")
        return self._profile(row), True

    async def latest_profile(self, profile_id: str) -> Profile | None:
        row = await self._q.latest_profile(self._conn, profile_id=profile_id)
        return None if row is None else self._profile(row)

    async def profile_version(self, profile_id: str, version: int) -> Profile | None:
        row = await self._q.profile_version(self._conn, profile_id=profile_id, version=version)
        return None if row is None else self._profile(row)

    async def list_profiles(self) -> list[Profile]:
        return [self._profile(row) async for row in self._q.latest_profiles(self._conn)]

    async def create_product(
        self, *, organisation_id: int, name: str, gtin: str | None, profile_id: str | None, now: datetime
    ) -> Product:
        row = await self._q.insert_product(
            self._conn,
            organisation_id=organisation_id,
            gtin=gtin,
            name=name,
            profile_id=profile_id,
            created_at=self._time_in(now),
        )
        if row is None:
            raise AlreadyExists(f"organisation {organisation_id} already has a product named {name!r}")
        return self._product(row)

    async def get_product(self, product_id: int) -> Product | None:
        row = await self._q.get_product(self._conn, id=product_id)
        return None if row is None else self._product(row)

    async def list_products(self, organisation_id: int | None = None) -> list[Product]:
        if organisation_id is None:
            rows = self._q.all_products(self._conn)
        else:
            rows = self._q.products_of_organisation(self._conn, organisation_id=organisation_id)
        return [self._product(row) async for row in rows]

    async def create_lot(self, *, product_id: int, lot_number: str, expires_on: date | None, now: datetime) -> Lot:
        row = await self._q.insert_lot(
            self._conn,
            product_id=product_id,
            lot_number=lot_number,
            expires_on=None if expires_on is None else self._date_in(expires_on),
            created_at=self._time_in(now),
        )
        if row is None:
            raise AlreadyExists(f"product {product_id} already has a lot {lot_number!r}")
        return self._lot(row)

    async def get_lot(self, lot_id: int) -> Lot | None:
        row = await self._q.get_lot(self._conn, id=lot_id)
        return None if row is None else self._lot(row)

    async def list_lots(self, product_id: int) -> list[Lot]:
        return [self._lot(row) async for row in self._q.lots_of_product(self._conn, product_id=product_id)]
