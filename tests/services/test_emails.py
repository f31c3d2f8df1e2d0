"""Email notifications on each engine, sent to a real SMTP server on 127.0.0.1 (aiosmtpd): one email per person and
notification, retries after the server refuses, nothing sent twice by two processes, preferences and quiet hours
honoured, digests holding what happened since the last one, escalation chains walked in order."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta
from typing import Any

import pytest

from coldchain.documents.email import email_subject, render_email
from coldchain.domain.access import OPERATOR, Principal
from coldchain.domain.custody import Location
from coldchain.domain.emails import EmailDelivery
from coldchain.domain.notifications import NotificationKind
from coldchain.domain.users import User
from coldchain.services import custody, emails, escalation, shipments
from coldchain.services.alarms import acknowledge_alarm
from coldchain.services.emails import EmailPolicy, EmailRound, PreferencesChange
from coldchain.services.errors import Forbidden, Invalid
from coldchain.storage import Store, open_store
from tests.mail import SmtpSink
from tests.services.test_evaluation_ingest import TRIP, alarms_of, at, log, make_world, sync

NOW = at(300)  # 2026-02-01 11:00 UTC
LATER = timedelta(minutes=5)
"""Longer than any retry delay of POLICY."""
POLICY = EmailPolicy(
    sender="coldchain <alerts@coldchain.test>",
    public_url="https://coldchain.test",
    max_attempts=3,
    retry_s=10.0,
    retry_max_s=60.0,
    timeout_s=5.0,
)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def person(
    store: Store,
    organisation_id: int,
    name: str,
    kinds: Sequence[NotificationKind] | None = ("alarm.raised",),
    **preferences: Any,
) -> User:
    """A user of the organisation with these preferences (none at all when ``kinds`` is ``None``)."""
    async with store.transaction() as tx:
        user = await tx.create_user(
            organisation_id=organisation_id,
            role="logistics",
            name=name,
            email=f"{name.lower().replace(' ', '.')}@org{organisation_id}.test",
            password_hash="not a hash: these users never sign in",
            now=NOW,
        )
    if kinds is not None:
        change = PreferencesChange(kinds=list(kinds), **preferences)
        await emails.save_preferences(
            store, OPERATOR, change, organisation_id=organisation_id, user_id=user.id, now=at(-60)
        )
    return user


async def deliver(sink: SmtpSink, store: Store, clock: Callable[[], datetime], worker: str = "test") -> EmailRound:
    return await emails.deliver_due_emails(
        store, sink.transport(), render=render_email, clock=clock, worker=worker, policy=POLICY, rng=random.Random(3)
    )


async def plan_and_deliver(sink: SmtpSink, store: Store, now: datetime) -> EmailRound:
    await emails.plan_emails(store, now=now)
    return await deliver(sink, store, Clock(now))


async def start_planning(store: Store) -> None:
    """The planner's first run starts at the newest notification: what came before is never mailed."""
    assert await emails.plan_emails(store, now=at(-60)) == 0


async def outbox(store: Store, organisation_id: int) -> list[EmailDelivery]:
    return await emails.email_log(store, OPERATOR, organisation_id, limit=500)


async def name_of(store: Store, organisation_id: int) -> str:
    async with store.transaction() as tx:
        found = await tx.get_organisation(organisation_id)
    assert found is not None
    return found.name


async def test_each_person_who_chose_alarms_gets_one_email_per_alarm_with_what_to_act_on(store: Store) -> None:
    world = await make_world(store)
    ann = await person(store, world.receiver, "Ann", time_zone="Europe/Helsinki")
    bob = await person(store, world.receiver, "Bob")
    cid = await person(store, world.receiver, "Cid", kinds=None)  # never chose: no email
    dora = await person(store, world.shipper, "Dora")
    where = Location(lat=47.56, lon=7.59, name="Basel")
    await custody.record_event(
        store, OPERATOR, world.shipment.id, kind="packed", place=where, occurred_at=at(0), now=at(0)
    )
    await start_planning(store)
    await custody.record_event(
        store, OPERATOR, world.shipment.id, kind="picked_up", place=where, occurred_at=at(5), now=at(5)
    )
    await sync(store, world, log(TRIP), now=NOW)
    alarms = await alarms_of(store, world.shipment.id)

    async with SmtpSink() as sink:
        first = await plan_and_deliver(sink, store, NOW)
        again = await plan_and_deliver(sink, store, NOW + LATER)

    assert len(alarms) == 3 and (first.sent, again.attempted) == (9, 0)
    assert {user.email: len(sink.to(user.email)) for user in (ann, bob, cid, dora)} == {
        ann.email: 3,
        bob.email: 3,
        cid.email: 0,
        dora.email: 3,
    }
    [reject] = [a for a in alarms if a.alarm.rule == "above 25"]
    [mail] = [r for r in sink.to(ann.email) if "above 25" in r.subject]
    assert mail.subject == f"[coldchain] Alarm raised on {world.shipment.reference}: above 25 (reject)"
    assert mail.to == f"Ann <{ann.email}>"
    assert mail.message["From"] == POLICY.sender
    assert mail.message["List-Unsubscribe"] == "<https://coldchain.test/portal/preferences>"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    text, html = mail.part("plain"), mail.part("html")
    carrier = await name_of(store, world.carrier)
    for part in (text, html):
        assert "26.0 °C at 2026-02-01 10:00 UTC+02:00 (Europe/Helsinki)" in part  # the reading, Ann's clock
        assert carrier in part  # who held the shipment when the alarm's condition was met
        assert f"https://coldchain.test/portal/shipments/{world.shipment.id}" in part
        assert f"https://coldchain.test/portal/shipments/{world.shipment.id}#alarm-{reject.id}" in part
        assert "https://coldchain.test/portal/preferences" in part
    assert "token" not in text.lower() and "session" not in text.lower()  # the links carry no secret
    log_of_receiver = await outbox(store, world.receiver)
    assert {(e.address, e.status, e.attempts) for e in log_of_receiver} == {
        (ann.email, "sent", 1),
        (bob.email, "sent", 1),
    }
    assert all(e.log[0].reply_code == 250 and e.log[0].worker == "test" for e in log_of_receiver)


async def test_an_email_the_server_refuses_for_now_is_sent_again_after_a_backoff(store: Store) -> None:
    world = await make_world(store)
    ann = await person(store, world.receiver, "Ann")
    await start_planning(store)
    await sync(store, world, log([5.0, 5.0, 26.0]), now=NOW)  # one alarm: above 25 °C

    async with SmtpSink(["451 4.3.0 mailbox busy, try again later"]) as sink:
        first = await plan_and_deliver(sink, store, NOW)
        early = await deliver(sink, store, Clock(NOW + timedelta(seconds=1)))  # the retry is not due yet
        [pending] = await outbox(store, world.receiver)
        second = await deliver(sink, store, Clock(NOW + LATER))

    assert (first.retrying, early.attempted, second.sent) == (1, 0, 1)
    assert pending.status == "pending" and pending.next_attempt_at is not None
    assert NOW + timedelta(seconds=5) <= pending.next_attempt_at <= NOW + timedelta(seconds=10)  # equal jitter
    assert len(sink.to(ann.email)) == 1 and sink.refusals == ["451 4.3.0 mailbox busy, try again later"]
    [sent] = await outbox(store, world.receiver)
    assert (sent.status, sent.attempts, sent.sent_at) == ("sent", 2, NOW + LATER)
    assert [(a.attempt, a.reply_code, a.started_at) for a in sent.log] == [(1, 451, NOW), (2, 250, NOW + LATER)]
    assert sent.log[0].error == "the server answered 451: 4.3.0 mailbox busy, try again later"


async def test_a_permanent_refusal_fails_the_email_at_once_and_retries_stop_after_the_last_attempt(
    store: Store,
) -> None:
    world = await make_world(store)
    await person(store, world.receiver, "Ann")
    await person(store, world.shipper, "Dora")
    await start_planning(store)
    await sync(store, world, log([5.0, 5.0, 26.0]), now=NOW)

    refusals = ["550 5.1.1 no such mailbox"] + ["421 4.3.2 shutting down"] * POLICY.max_attempts
    async with SmtpSink(refusals) as sink:
        clock = Clock(NOW)
        await emails.plan_emails(store, now=NOW)
        for attempt in range(POLICY.max_attempts + 1):
            clock.now = NOW + attempt * LATER
            await deliver(sink, store, clock)

    failed = await outbox(store, world.receiver) + await outbox(store, world.shipper)
    assert sorted((e.status, e.attempts) for e in failed) == [("failed", 1), ("failed", POLICY.max_attempts)]
    assert sink.received == []


async def test_two_processes_sending_at_once_send_each_email_exactly_once(database_url: str) -> None:
    first, second = await open_store(database_url, pool_size=4), await open_store(database_url, pool_size=4)
    try:
        world = await make_world(first)
        people = [await person(first, party, f"P{n}") for n in range(4) for party in (world.receiver, world.shipper)]
        await start_planning(first)
        await sync(first, world, log(TRIP), now=NOW)
        async with SmtpSink() as sink:
            made = await asyncio.gather(emails.plan_emails(first, now=NOW), emails.plan_emails(second, now=NOW))
            rounds: list[EmailRound] = []
            for _ in range(3):
                rounds += await asyncio.gather(
                    deliver(sink, first, Clock(NOW), worker="first"), deliver(sink, second, Clock(NOW), worker="second")
                )
    finally:
        await first.close()
        await second.close()

    assert sum(made) == 3 * len(people)  # one planner made them all, the other found nothing new
    keys = Counter((r.recipients[0], r.subject) for r in sink.received)
    assert len(keys) == 3 * len(people) and set(keys.values()) == {1}
    assert sum(r.sent for r in rounds) == 3 * len(people)
    assert {r.sent > 0 for r in rounds[:2]} == {True}  # both processes took a share


async def test_quiet_hours_hold_a_quarantine_alarm_until_they_end_but_never_a_reject_alarm(store: Store) -> None:
    world = await make_world(store)
    ann = await person(store, world.receiver, "Ann", quiet_start=time(10, 0), quiet_end=time(12, 30))  # UTC
    await start_planning(store)
    await sync(store, world, log(TRIP), now=NOW)  # 11:00 UTC: quiet

    async with SmtpSink() as sink:
        await plan_and_deliver(sink, store, NOW)
        during = sorted(r.subject.rsplit(": ", 1)[1] for r in sink.to(ann.email))
        held = [e for e in await outbox(store, world.receiver) if e.status == "pending"]
        await plan_and_deliver(sink, store, at(389))  # 12:29
        still = len(sink.to(ann.email))
        await plan_and_deliver(sink, store, at(390))  # 12:30: the quiet hours end
        after = sorted(r.subject.rsplit(": ", 1)[1] for r in sink.to(ann.email))

    assert during == ["above 25 (reject)", "budget (reject)"]
    assert [(e.held_until, e.next_attempt_at) for e in held] == [(at(390), at(390))]
    assert still == 2
    assert after == ["above 25 (reject)", "budget (reject)", "heat (quarantine)"]


async def test_preferences_choose_kinds_and_shipments_and_a_disabled_person_gets_nothing(store: Store) -> None:
    world = await make_world(store)
    etas_only = await person(store, world.receiver, "Eta Only", kinds=["eta.at_risk"])
    follower = await person(store, world.receiver, "Fay", shipments="followed")
    stranger = await person(store, world.receiver, "Gus", shipments="followed")
    leaver = await person(store, world.receiver, "Hal")
    me = Principal(organisation_id=world.receiver, role="logistics", token_id=None, user_id=follower.id)
    assert await emails.follow_shipment(store, me, world.shipment.id, now=NOW)
    assert not await emails.follow_shipment(store, me, world.shipment.id, now=NOW)  # idempotent
    async with store.transaction() as tx:
        await tx.set_user_disabled(leaver.id, NOW, now=NOW)
    await start_planning(store)
    await sync(store, world, log([5.0, 5.0, 26.0]), now=NOW)

    async with SmtpSink() as sink:
        await plan_and_deliver(sink, store, NOW)

    assert [r.recipients for r in sink.received] == [[follower.email]]
    assert [e.address for e in await outbox(store, world.receiver)] == [follower.email]
    assert {etas_only.email, stranger.email, leaver.email}.isdisjoint(r.recipients[0] for r in sink.received)
    async with store.transaction() as tx:
        audit = [(e.action, e.subject) for e in await tx.audit_entries()]
    assert ("shipment.followed", f"shipment:{world.shipment.id}") in audit
    assert audit.count(("user.notification_preferences", f"user:{follower.id}")) == 1


async def test_a_digest_holds_what_happened_since_the_last_one_and_comes_once_a_day(store: Store) -> None:
    world = await make_world(store)
    dora = await person(
        store, world.shipper, "Dora", kinds=["alarm.raised", "alarm.acknowledged"], cadence="digest", digest_hour=12
    )
    await start_planning(store)
    await sync(store, world, log([5.0, 5.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0]), now=NOW)  # heat: quarantine
    [alarm] = await alarms_of(store, world.shipment.id)
    day_two = NOW + timedelta(days=1)

    async with SmtpSink() as sink:
        await plan_and_deliver(sink, store, NOW)
        before_the_hour = len(sink.received)
        made = [await emails.make_digests(store, now=at(359))]  # 11:59
        made.append(await emails.make_digests(store, now=at(360)))  # 12:00
        await deliver(sink, store, Clock(at(360)))
        made.append(await emails.make_digests(store, now=at(420)))  # the same day: no second digest
        await acknowledge_alarm(store, OPERATOR, world.shipment.id, alarm.id, comment="moved", now=at(480))
        await plan_and_deliver(sink, store, at(480))
        made.append(await emails.make_digests(store, now=at(600)))  # still the same day
        made.append(await emails.make_digests(store, now=day_two + timedelta(hours=1)))  # the next day, 12:00
        await deliver(sink, store, Clock(day_two + timedelta(hours=1)))

    assert before_the_hour == 0 and made == [0, 1, 0, 0, 1]
    first, second = sink.to(dora.email)
    assert first.subject == "[coldchain] Daily digest 2026-02-01: 1 notification"
    assert "Alarm raised" in first.part("plain") and "heat" in first.part("plain")
    assert second.subject == "[coldchain] Daily digest 2026-02-02: 1 notification"
    assert "Alarm acknowledged" in second.part("plain") and "Alarm raised" not in second.part("plain")
    assert "since your last digest (2026-02-01 12:00 UTC+00:00 (UTC))" in second.part("plain")
    digests = [e for e in await outbox(store, world.shipper) if e.digest_on is not None]
    carried = [e for e in await outbox(store, world.shipper) if e.digest_on is None]
    assert sorted(str(e.digest_on) for e in digests) == ["2026-02-01", "2026-02-02"]
    assert {e.status for e in carried} == {"in_digest"} and len(carried) == 2


async def test_back_from_the_digest_what_waited_goes_out_at_once(store: Store) -> None:
    world = await make_world(store)
    dora = await person(store, world.shipper, "Dora", cadence="digest", digest_hour=23)
    await start_planning(store)
    await sync(store, world, log([5.0, 5.0, 26.0]), now=NOW)
    await emails.plan_emails(store, now=NOW)

    await emails.save_preferences(
        store,
        OPERATOR,
        PreferencesChange(kinds=["alarm.raised"]),
        organisation_id=world.shipper,
        user_id=dora.id,
        now=NOW,
    )
    async with SmtpSink() as sink:
        await deliver(sink, store, Clock(NOW))

    assert [r.subject.split(": ", 1)[1] for r in sink.to(dora.email)] == ["above 25 (reject)"]


async def test_an_escalation_chain_tells_its_people_in_order_until_someone_acknowledges(store: Store) -> None:
    world = await make_world(store)
    ann = await person(store, world.receiver, "Ann", kinds=None)
    bob = await person(store, world.receiver, "Bob", kinds=None)
    cid = await person(store, world.receiver, "Cid", kinds=None)
    chain = await escalation.save_escalation_chain(
        store, OPERATOR, world.receiver, [(ann.id, 10), (bob.id, 30), (cid.id, 60)], now=at(-60)
    )
    await start_planning(store)
    await sync(store, world, log([5.0, 5.0, 26.0]), now=NOW)
    [alarm] = await alarms_of(store, world.shipment.id)

    async with SmtpSink() as sink:
        walked = []
        for minutes in (5, 10, 10, 29, 30):
            walked.append(await escalation.walk_escalation_chains(store, now=NOW + timedelta(minutes=minutes)))
            await plan_and_deliver(sink, store, NOW + timedelta(minutes=minutes))
        await acknowledge_alarm(store, OPERATOR, world.shipment.id, alarm.id, comment="fridge fixed", now=at(340))
        walked.append(await escalation.walk_escalation_chains(store, now=NOW + timedelta(minutes=60)))
        await plan_and_deliver(sink, store, NOW + timedelta(minutes=60))

    assert [s.user_id for s in chain.steps] == [ann.id, bob.id, cid.id]
    assert walked == [0, 1, 0, 0, 1, 0]
    assert [r.recipients for r in sink.received] == [[ann.email], [bob.email]]
    assert (
        sink.received[0].subject
        == f"[coldchain] Alarm not acknowledged on {world.shipment.reference}: above 25 (reject)"
    )
    assert "Step:" in sink.received[1].part("plain") and "2, 30 min after it was raised" in sink.received[1].part(
        "plain"
    )
    async with store.transaction() as tx:
        notices = await tx.escalation_notices(alarm.id)
        steps_audited = [e for e in await tx.audit_entries() if e.action == "alarm.escalation_step"]
        told = [n.kind for n in await tx.notifications(world.receiver)]
    assert [(n.step_no, n.user_id, n.notified_at) for n in notices] == [
        (1, ann.id, NOW + timedelta(minutes=10)),
        (2, bob.id, NOW + timedelta(minutes=30)),
    ]
    assert all(n.notification_id is not None for n in notices)
    assert [e.subject for e in steps_audited] == [f"alarm:{alarm.id}"] * 2
    assert told.count("alarm.escalation_step") == 2


async def test_a_chain_saved_after_an_alarm_tells_nobody_about_steps_whose_time_had_passed(store: Store) -> None:
    world = await make_world(store)
    ann = await person(store, world.receiver, "Ann", kinds=None)
    bob = await person(store, world.receiver, "Bob", kinds=None)
    await sync(store, world, log([5.0, 5.0, 26.0]), now=NOW)
    await escalation.save_escalation_chain(
        store, OPERATOR, world.receiver, [(ann.id, 10), (bob.id, 120)], now=NOW + timedelta(minutes=60)
    )

    assert await escalation.walk_escalation_chains(store, now=NOW + timedelta(minutes=90)) == 0
    assert await escalation.walk_escalation_chains(store, now=NOW + timedelta(minutes=120)) == 1
    async with store.transaction() as tx:
        entries = [e for e in await tx.audit_entries() if e.action == "organisation.escalation_chain"]
    assert len(entries) == 1 and f'"user_id":{bob.id}' in entries[0].detail


async def test_a_chain_is_the_admins_to_save_and_names_its_own_active_people(store: Store) -> None:
    world = await make_world(store)
    ann = await person(store, world.receiver, "Ann", kinds=None)
    outsider = await person(store, world.shipper, "Dora", kinds=None)
    logistics = Principal(organisation_id=world.receiver, role="logistics", token_id=1)

    with pytest.raises(Forbidden):
        await escalation.save_escalation_chain(store, logistics, world.receiver, [(ann.id, 10)], now=NOW)
    with pytest.raises(Invalid, match="no active user"):
        await escalation.save_escalation_chain(store, OPERATOR, world.receiver, [(outsider.id, 10)], now=NOW)
    assert (await escalation.escalation_chain(store, OPERATOR, world.receiver)).steps == []


async def test_a_delivered_shipment_waiting_for_a_pharmacist_tells_its_parties_a_decision_is_needed(
    store: Store,
) -> None:
    world = await make_world(store)
    await sync(store, world, log(TRIP), now=NOW)
    await shipments.change_status(store, OPERATOR, world.shipment.id, "in_transit", now=NOW)

    await shipments.change_status(store, OPERATOR, world.shipment.id, "delivered", now=NOW)

    async with store.transaction() as tx:
        [needed] = [n for n in await tx.notifications(world.receiver) if n.kind == "decision.needed"]
    assert needed.payload["recommendation"] == "reject"
    assert needed.payload["reasons"] == ["undecided", "excursions", "quarantine_recommended"]


async def test_preferences_are_a_persons_and_refuse_what_cannot_be_kept(store: Store) -> None:
    world = await make_world(store)
    ann = await person(store, world.receiver, "Ann", kinds=None)
    token = Principal(organisation_id=world.receiver, role="admin", token_id=1)
    me = Principal(organisation_id=world.receiver, role="logistics", token_id=None, user_id=ann.id)

    with pytest.raises(Forbidden, match="a person's"):
        await emails.notification_preferences(store, token)
    for change, field in (
        (PreferencesChange(kinds=["alarm.escalation_step"]), "kinds"),
        (PreferencesChange(kinds=[], time_zone="Mars/Olympus"), "time_zone"),
        (PreferencesChange(kinds=[], quiet_start=time(22, 0)), "quiet_start"),
        (PreferencesChange(kinds=[], quiet_start=time(22, 0), quiet_end=time(22, 0)), "quiet_end"),
        (PreferencesChange(kinds=[], digest_hour=24), "digest_hour"),
    ):
        with pytest.raises(Invalid, match=field):
            await emails.save_preferences(store, me, change, now=NOW)
    _, saved, follows = await emails.notification_preferences(store, me)
    assert (saved.kinds, saved.updated_at, follows) == ([], None, [])


async def test_the_email_log_tells_each_emails_subject_as_it_was_sent_digests_included(store: Store) -> None:
    world = await make_world(store)
    ann = await person(store, world.receiver, "Ann", time_zone="Europe/Helsinki")
    dora = await person(store, world.shipper, "Dora", cadence="digest", digest_hour=12)
    await start_planning(store)
    await sync(store, world, log(TRIP), now=NOW)

    async with SmtpSink() as sink:
        await plan_and_deliver(sink, store, NOW)
        assert await emails.make_digests(store, now=at(360)) == 1
        await deliver(sink, store, Clock(at(360)))
    told = [
        *await emails.email_log_told(store, OPERATOR, world.receiver),
        *await emails.email_log_told(store, OPERATOR, world.shipper),
    ]

    sent = {r.message["Message-ID"]: r.subject for r in sink.received}
    shown = {
        f"<email-{entry.delivery.id}@coldchain.test>": email_subject(entry.items, entry.delivery.digest_on)
        for entry in told
        if entry.delivery.status == "sent"
    }
    # Three alarms to Ann; to Dora the reject alarms at once and the quarantine alarm in her digest.
    assert len(sent) == 6 and shown == sent
    assert {entry.recipient for entry in told} == {ann.name, dora.name}
    [digest] = [entry for entry in told if entry.delivery.digest_on is not None]
    assert [item.severity for item in digest.items] == ["quarantine"]
    assert shown[f"<email-{digest.delivery.id}@coldchain.test>"].startswith("[coldchain] Daily digest 2026-02-01")
    assert all(entry.items[0].reading is None for entry in told)  # the log reads no readings
