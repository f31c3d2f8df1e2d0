"""The email records' contract, the same on both engines: preferences as saved, follows, escalation chains, the
outbox's keys (never twice per notification and address, a digest once a day) and its leases."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from coldchain.domain.emails import EmailPreferences, EscalationStep, QuietHours
from coldchain.domain.users import User
from coldchain.storage import Store
from tests.factories import make_org, make_shipment

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def user_of(store: Store, organisation_id: int, name: str) -> User:
    async with store.transaction() as tx:
        return await tx.create_user(
            organisation_id=organisation_id,
            role="logistics",
            name=name,
            email=f"{name}@example.org",
            password_hash="-",
            now=T0,
        )


async def notified(store: Store, organisation_id: int, shipment_id: int | None = None) -> int:
    async with store.transaction() as tx:
        [notification_id] = await tx.publish(
            "alarm.raised",
            organisation_ids=[organisation_id],
            subject="alarm:1",
            payload={},
            now=T0,
            shipment_id=shipment_id,
        )
    return notification_id


async def test_preferences_are_read_back_as_saved_and_replaced_whole(store: Store) -> None:
    org = await make_org(store)
    ann = await user_of(store, org.id, "ann")
    saved = EmailPreferences(
        user_id=ann.id,
        kinds=["alarm.escalated", "alarm.raised"],
        shipments="followed",
        cadence="digest",
        digest_hour=6,
        time_zone="Europe/Helsinki",
        quiet_hours=QuietHours(start=time(22, 0), end=time(6, 30)),
    )
    async with store.transaction() as tx:
        assert await tx.notification_preferences(ann.id) is None
        await tx.save_notification_preferences(saved, now=T0)
        first = await tx.notification_preferences(ann.id)
        await tx.save_notification_preferences(EmailPreferences(user_id=ann.id, kinds=["eta.at_risk"]), now=T0)
        second = await tx.notification_preferences(ann.id)
        of_org = await tx.preferences_of_organisation(org.id)

    assert first is not None and first.updated_at == T0
    assert (first.kinds, first.shipments, first.cadence, first.digest_hour) == (saved.kinds, "followed", "digest", 6)
    assert (first.time_zone, first.quiet_hours) == ("Europe/Helsinki", saved.quiet_hours)
    assert second is not None and (second.kinds, second.quiet_hours, second.cadence) == (
        ["eta.at_risk"],
        None,
        "immediate",
    )
    assert of_org == {ann.id: second}


async def test_a_follow_is_kept_once_and_ends_once(store: Store) -> None:
    org = await make_org(store)
    ann = await user_of(store, org.id, "ann")
    shipment = await make_shipment(store, owner=org.id)
    async with store.transaction() as tx:
        made = [await tx.follow_shipment(ann.id, shipment.id, now=T0) for _ in range(2)]
        followers = await tx.followers(shipment.id)
        followed = await tx.followed_shipments(ann.id)
        ended = [await tx.unfollow_shipment(ann.id, shipment.id) for _ in range(2)]
        after = await tx.followers(shipment.id)
    assert (made, followers, followed, ended, after) == ([True, False], {ann.id}, [shipment.id], [True, False], set())


async def test_a_chain_is_replaced_whole_and_a_step_is_recorded_once_per_alarm(store: Store) -> None:
    org = await make_org(store)
    ann, bob = await user_of(store, org.id, "ann"), await user_of(store, org.id, "bob")
    steps = [
        EscalationStep(step_no=1, user_id=ann.id, delay_min=10),
        EscalationStep(step_no=2, user_id=bob.id, delay_min=30),
    ]
    async with store.transaction() as tx:
        empty = await tx.escalation_chain(org.id)
        await tx.save_escalation_chain(org.id, steps, by="admin", now=T0)
        await tx.save_escalation_chain(org.id, steps[1:], by="admin 2", now=T0 + timedelta(hours=1))
        chain = await tx.escalation_chain(org.id)
        with_chains = await tx.organisations_with_chains()
    assert (empty.steps, empty.saved_at) == ([], None)
    assert (chain.steps, chain.saved_at, chain.saved_by) == (steps[1:], T0 + timedelta(hours=1), "admin 2")
    assert with_chains == [org.id]


async def test_an_email_is_kept_once_per_notification_and_address(store: Store) -> None:
    org = await make_org(store)
    ann = await user_of(store, org.id, "ann")
    notification_id = await notified(store, org.id)
    async with store.transaction() as tx:
        ids = [
            await tx.insert_email(
                user_id=ann.id,
                address=ann.email,
                notification_id=notification_id,
                status="pending",
                send_at=T0,
                held_until=None,
                now=T0,
            )
            for _ in range(2)
        ]
    assert ids[0] is not None and ids[1] is None


async def test_a_taken_email_is_leased_so_nobody_takes_it_again_before_the_lease_ends(store: Store) -> None:
    org = await make_org(store)
    ann = await user_of(store, org.id, "ann")
    notification_id = await notified(store, org.id)
    async with store.transaction() as tx:
        await tx.insert_email(
            user_id=ann.id, address=ann.email, notification_id=notification_id, status="pending", send_at=T0,
            held_until=None, now=T0,
        )  # fmt: skip
    lease = T0 + timedelta(minutes=1)
    async with store.transaction() as tx:
        [taken] = await tx.take_due_emails(now=T0, lease_until=lease, worker="a", limit=10)
    async with store.transaction() as tx:
        during = await tx.take_due_emails(now=lease - timedelta(seconds=1), lease_until=lease, worker="b", limit=10)
        [again] = await tx.take_due_emails(now=lease, lease_until=lease + timedelta(minutes=1), worker="b", limit=10)
    assert (taken.attempt, taken.address, [n.id for n in taken.notifications]) == (1, ann.email, [notification_id])
    assert during == [] and again.attempt == 2


async def test_a_digest_is_made_once_per_local_day_and_takes_what_waited(store: Store) -> None:
    org = await make_org(store)
    ann = await user_of(store, org.id, "ann")
    waiting = [await notified(store, org.id) for _ in range(2)]
    async with store.transaction() as tx:
        await tx.save_notification_preferences(
            EmailPreferences(user_id=ann.id, kinds=["alarm.raised"], cadence="digest"), now=T0
        )
        for notification_id in waiting:
            await tx.insert_email(
                user_id=ann.id, address=ann.email, notification_id=notification_id, status="waiting_digest",
                send_at=None, held_until=None, now=T0,
            )  # fmt: skip
        day = date(2026, 3, 1)
        marks = [await tx.mark_digest_day(ann.id, day, now=T0), await tx.mark_digest_day(ann.id, day, now=T0)]
        digest = await tx.open_digest(user_id=ann.id, address=ann.email, digest_on=day, since=None, now=T0)
        twice = await tx.open_digest(user_id=ann.id, address=ann.email, digest_on=day, since=None, now=T0)
        candidates = await tx.digest_candidates()
        [taken] = await tx.take_due_emails(now=T0, lease_until=T0 + timedelta(minutes=1), worker="a", limit=10)
    assert marks == [True, False] and digest is not None and twice is None
    assert candidates == [(ann.id, day)]
    assert (taken.id, taken.digest_on, [n.id for n in taken.notifications]) == (digest, day, waiting)
