"""Alarms on each engine: told to the shipment's parties, acknowledged once with a comment by those allowed to,
escalated once when nobody acknowledges them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coldchain.domain.access import OPERATOR, Principal, Role
from coldchain.domain.findings import StoredAlarm
from coldchain.domain.readings import Reading
from coldchain.services.access import authenticate
from coldchain.services.alarms import LATE_AFTER, acknowledge_alarm, escalate_unacknowledged
from coldchain.services.errors import Conflict, Forbidden, Invalid, NotFound
from coldchain.storage import Store
from tests.factories import make_org, make_token
from tests.services.test_evaluation_ingest import TRIP, World, alarms_of, at, log, make_world, shipment_of, sync

NOW = at(300)


async def principal_of(store: Store, organisation_id: int, role: Role) -> Principal:
    found = await authenticate(store, await make_token(store, organisation_id, role), operator_token=None)
    assert found is not None
    return found


async def world_with_alarms(store: Store) -> tuple[World, list[StoredAlarm]]:
    world = await make_world(store)
    await sync(store, world, log(TRIP), now=NOW)
    return world, await alarms_of(store, world.shipment.id)


async def kinds_told(store: Store, organisation_id: int) -> list[str]:
    async with store.transaction() as tx:
        return [n.kind for n in await tx.notifications(organisation_id)]


async def test_a_raised_alarm_is_told_to_every_party_of_the_shipment_and_nobody_else(store: Store) -> None:
    outsider = await make_org(store, kind="carrier")
    world, alarms = await world_with_alarms(store)

    for party in (world.shipper, world.carrier, world.receiver):
        assert await kinds_told(store, party) == ["alarm.raised"] * len(alarms)
    assert await kinds_told(store, outsider.id) == []
    async with store.transaction() as tx:
        (note, *_) = await tx.notifications(world.receiver)
    assert note.shipment_id == world.shipment.id
    assert note.payload["alarm_id"] in {a.id for a in alarms}
    assert {"began_at", "met_at", "detected_at", "late"} <= set(note.payload)


async def test_an_acknowledgement_keeps_who_when_and_why_and_is_told_and_audited(store: Store) -> None:
    world, (alarm, *_) = await world_with_alarms(store)
    pharmacist = await principal_of(store, world.receiver, "pharmacist")

    acknowledged = await acknowledge_alarm(
        store, pharmacist, world.shipment.id, alarm.id, comment="  Moved to quarantine fridge 3.  ", now=at(400)
    )

    assert (acknowledged.acknowledged_at, acknowledged.acknowledged_by) == (at(400), pharmacist.actor)
    assert acknowledged.acknowledgement == "Moved to quarantine fridge 3."
    assert (await kinds_told(store, world.carrier))[-1] == "alarm.acknowledged"
    async with store.transaction() as tx:
        assert (await tx.get_alarm(alarm.id)) == acknowledged
        entry = (await tx.audit_entries())[-1]
    assert (entry.action, entry.subject, entry.actor) == ("alarm.acknowledged", f"alarm:{alarm.id}", pharmacist.actor)


async def test_a_second_acknowledgement_is_refused_and_changes_nothing(store: Store) -> None:
    world, (alarm, *_) = await world_with_alarms(store)
    first = await acknowledge_alarm(store, OPERATOR, world.shipment.id, alarm.id, comment="checked", now=at(400))

    with pytest.raises(Conflict, match="already acknowledged"):
        await acknowledge_alarm(store, OPERATOR, world.shipment.id, alarm.id, comment="again", now=at(500))

    async with store.transaction() as tx:
        assert await tx.get_alarm(alarm.id) == first


@pytest.mark.parametrize("role", ["carrier", "auditor"])
async def test_roles_that_may_not_acknowledge_are_refused(store: Store, role: Role) -> None:
    world, (alarm, *_) = await world_with_alarms(store)
    caller = await principal_of(store, world.carrier, role)

    with pytest.raises(Forbidden):
        await acknowledge_alarm(store, caller, world.shipment.id, alarm.id, comment="seen", now=at(400))

    async with store.transaction() as tx:
        assert (await tx.get_alarm(alarm.id)) == alarm


async def test_an_organisation_outside_the_shipment_finds_no_alarm_to_acknowledge(store: Store) -> None:
    world, (alarm, *_) = await world_with_alarms(store)
    stranger = await principal_of(store, (await make_org(store, kind="shipper")).id, "admin")

    with pytest.raises(NotFound):
        await acknowledge_alarm(store, stranger, world.shipment.id, alarm.id, comment="mine?", now=at(400))


async def test_an_alarm_is_acknowledged_only_through_its_own_shipment(store: Store) -> None:
    world, (alarm, *_) = await world_with_alarms(store)
    other = await shipment_of(store, owner=world.shipper, carrier=world.carrier, receiver=None, profile=world.profile)

    with pytest.raises(NotFound, match=f"no alarm {alarm.id}"):
        await acknowledge_alarm(store, OPERATOR, other.id, alarm.id, comment="wrong shipment", now=at(400))


async def test_an_empty_comment_is_refused(store: Store) -> None:
    world, (alarm, *_) = await world_with_alarms(store)

    with pytest.raises(Invalid, match="comment"):
        await acknowledge_alarm(store, OPERATOR, world.shipment.id, alarm.id, comment="   ", now=at(400))


async def test_a_withdrawn_alarm_cannot_be_acknowledged(store: Store) -> None:
    world = await make_world(store)
    await sync(store, world, log([5.0, 26.0, 5.0]), now=at(30))  # above 25 °C from minute 10
    (alarm,) = [a for a in await alarms_of(store, world.shipment.id) if a.alarm.rule == "above 25"]
    # A buffered reading shows the excursion began at minute 5: the alarm is that excursion's, not minute 10's.
    await sync(store, world, [Reading(seq=1_000, device_time=at(5), temperature_c=30.0)], now=at(40))
    async with store.transaction() as tx:
        withdrawn = await tx.get_alarm(alarm.id)
    assert withdrawn is not None and withdrawn.withdrawn_at == at(40)

    with pytest.raises(Conflict, match="withdrawn"):
        await acknowledge_alarm(store, OPERATOR, world.shipment.id, alarm.id, comment="ok", now=at(400))

    async with store.transaction() as tx:
        assert await tx.get_alarm(alarm.id) == withdrawn


async def test_unacknowledged_alarms_are_escalated_once_after_the_delay(store: Store) -> None:
    world, alarms = await world_with_alarms(store)
    handled, *waiting = alarms
    await acknowledge_alarm(store, OPERATOR, world.shipment.id, handled.id, comment="handled", now=NOW)
    after = timedelta(minutes=30)

    assert await escalate_unacknowledged(store, now=NOW + after, after=after) == 0  # not longer than 30 min yet
    assert await escalate_unacknowledged(store, now=NOW + after + timedelta(seconds=1), after=after) == len(waiting)
    assert await escalate_unacknowledged(store, now=NOW + timedelta(days=1), after=after) == 0

    escalated = {a.id: a.escalated_at for a in await alarms_of(store, world.shipment.id)}
    assert escalated == {
        handled.id: None,
        **{a.id: NOW + after + timedelta(seconds=1) for a in waiting},
    }
    told = await kinds_told(store, world.receiver)
    assert told.count("alarm.escalated") == len(waiting)


async def test_the_late_mark_is_decided_by_the_time_between_condition_met_and_detection(store: Store) -> None:
    world = await make_world(store)
    readings = log([5.0, 26.0, 5.0, 26.0, 5.0])  # above 25 °C at minute 10 and minute 30

    await sync(store, world, readings[:2], now=at(10) + LATE_AFTER)  # exactly the limit: still on time
    await sync(store, world, readings[2:], now=at(30) + LATE_AFTER + timedelta(seconds=1))

    late = {a.alarm.began_at: a.late for a in await alarms_of(store, world.shipment.id) if a.alarm.rule == "above 25"}
    assert late == {at(10): False, at(30): True}
