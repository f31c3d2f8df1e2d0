"""Who is emailed about a notification and when: preferences, quiet hours, digests and escalation chains, as pure
rules (properties over any moment, time zone and quiet hours)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from coldchain.domain.emails import (
    DIRECT_KIND,
    EmailPreferences,
    EscalationChain,
    EscalationStep,
    QuietHours,
    Recipient,
    chain_problem,
    digest_day,
    due_steps,
    known_time_zone,
    plan_emails,
    quiet_until,
    release_at,
)
from coldchain.domain.notifications import Notification, NotificationKind
from coldchain.domain.users import User

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ZONES = ("UTC", "Europe/Helsinki", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")

moments = st.datetimes(datetime(2025, 1, 1), datetime(2028, 1, 1), timezones=st.just(UTC))  # noqa: DTZ001
clock_times = st.times().map(lambda t: t.replace(second=0, microsecond=0))
quiet_hours = (
    st.tuples(clock_times, clock_times)
    .filter(lambda se: se[0] != se[1])
    .map(lambda se: QuietHours(start=se[0], end=se[1]))
)


def preferences(user_id: int = 1, **fields: Any) -> EmailPreferences:
    return EmailPreferences(user_id=user_id, kinds=fields.pop("kinds", ["alarm.raised"]), **fields)


def user(user_id: int, organisation_id: int = 1, *, active: bool = True) -> User:
    return User(
        id=user_id,
        organisation_id=organisation_id,
        role="logistics",
        name=f"User {user_id}",
        email=f"user{user_id}@example.org",
        disabled_at=None if active else T0,
        created_at=T0,
    )


def notification(
    kind: NotificationKind = "alarm.raised", *, action: str = "quarantine", shipment_id: int | None = 7, **payload: Any
) -> Notification:
    return Notification(
        id=1,
        organisation_id=1,
        kind=kind,
        shipment_id=shipment_id,
        subject="alarm:1",
        payload={"alarm_id": 1, "action": action, **payload},
        created_at=T0,
    )


@given(moment=moments, quiet=quiet_hours, zone=st.sampled_from(ZONES))
def test_an_email_held_by_quiet_hours_goes_out_when_they_end_and_never_inside_them(
    moment: datetime, quiet: QuietHours, zone: str
) -> None:
    prefs = preferences(quiet_hours=quiet, time_zone=zone)
    released = release_at(prefs, moment, urgent=False)
    wall = moment.astimezone(ZoneInfo(zone)).time()

    assert released >= moment
    if not quiet.covers(wall):
        assert released == moment  # outside quiet hours nothing waits
    else:
        assert released > moment
        assert not quiet.covers(released.astimezone(ZoneInfo(zone)).time())
        # It is the first moment out: a minute earlier the wall clock was still quiet (or the clock jumped).
        before = (released - timedelta(minutes=1)).astimezone(ZoneInfo(zone)).time()
        assert quiet.covers(before) or released - moment <= timedelta(hours=1)
        assert released - moment <= timedelta(hours=25)


@given(moment=moments, quiet=quiet_hours, zone=st.sampled_from(ZONES))
def test_an_urgent_email_is_never_held(moment: datetime, quiet: QuietHours, zone: str) -> None:
    assert release_at(preferences(quiet_hours=quiet, time_zone=zone), moment, urgent=True) == moment


def test_quiet_hours_over_midnight_end_the_next_morning_in_the_users_zone() -> None:
    prefs = preferences(quiet_hours=QuietHours(start=time(22, 0), end=time(7, 0)), time_zone="Europe/Helsinki")
    late_evening = datetime(2026, 3, 1, 21, 30, tzinfo=UTC)  # 23:30 in Helsinki (UTC+02:00)

    assert quiet_until(prefs, late_evening) == datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 07:00 Helsinki
    assert quiet_until(prefs, datetime(2026, 3, 2, 5, 0, tzinfo=UTC)) is None
    assert quiet_until(prefs, datetime(2026, 3, 1, 19, 59, tzinfo=UTC)) is None  # 21:59 Helsinki


recipients_of = st.lists(
    st.builds(
        lambda uid, org, active, kinds, scope, cadence, follows: Recipient(
            user=user(uid, org, active=active),
            preferences=preferences(uid, kinds=kinds, shipments=scope, cadence=cadence),
            follows=follows,
        ),
        st.integers(1, 6),
        st.sampled_from([1, 1, 2]),
        st.booleans(),
        st.lists(st.sampled_from(["alarm.raised", "alarm.escalated", "eta.at_risk"]), unique=True),
        st.sampled_from(["all", "followed"]),
        st.sampled_from(["immediate", "digest"]),
        st.booleans(),
    ),
    max_size=8,
)


@given(
    recipients=recipients_of,
    kind=st.sampled_from(["alarm.raised", "alarm.escalated", "eta.at_risk"]),
    action=st.sampled_from(["warn", "quarantine", "reject"]),
)
def test_a_notification_makes_at_most_one_email_per_address_and_only_to_those_who_chose_it(
    recipients: list[Recipient], kind: NotificationKind, action: str
) -> None:
    told = notification(kind, action=action)
    planned = plan_emails(told, recipients, now=T0)

    assert len({p.address for p in planned}) == len(planned)
    for email in planned:
        chosen = [
            r
            for r in recipients
            if r.user.id == email.user_id and r.user.active and r.user.organisation_id == told.organisation_id
        ]
        assert chosen, "only active users of the notification's organisation"
        assert any(kind in r.preferences.kinds and (r.preferences.shipments == "all" or r.follows) for r in chosen), (
            "only those whose preferences take the kind and the shipment"
        )
    urgent = kind in ("alarm.raised", "alarm.escalated") and action == "reject"
    if urgent:
        assert all(not p.waits_for_digest and p.send_at == T0 and p.held_until is None for p in planned)


def test_a_reject_alarm_skips_the_digest_and_quiet_hours_a_quarantine_one_does_not() -> None:
    quiet = QuietHours(start=time(11, 0), end=time(13, 0))  # T0 is 12:00 UTC
    sleeper = Recipient(user=user(1), preferences=preferences(1, quiet_hours=quiet))
    digester = Recipient(user=user(2), preferences=preferences(2, cadence="digest"))

    [held, waits] = plan_emails(notification(action="quarantine"), [sleeper, digester], now=T0)
    [now_1, now_2] = plan_emails(notification(action="reject"), [sleeper, digester], now=T0)

    assert (held.send_at, held.held_until, waits.waits_for_digest) == (T0 + timedelta(hours=1),) * 2 + (True,)
    assert (now_1.send_at, now_1.held_until, now_2.waits_for_digest) == (T0, None, False)


def test_followed_shipments_only_means_notifications_of_a_shipment_the_user_follows() -> None:
    follower = Recipient(user=user(1), preferences=preferences(1, shipments="followed"), follows=True)
    other = Recipient(user=user(2), preferences=preferences(2, shipments="followed"), follows=False)

    assert [p.user_id for p in plan_emails(notification(), [follower, other], now=T0)] == [1]
    assert plan_emails(notification(shipment_id=None), [follower, other], now=T0) == []


def test_an_escalation_step_goes_to_the_person_it_names_whatever_their_preferences() -> None:
    step = notification(DIRECT_KIND, user_id=2)
    named = Recipient(user=user(2), preferences=preferences(2, kinds=[], cadence="digest"))
    subscribed = Recipient(user=user(1), preferences=preferences(1, kinds=["alarm.raised"]))

    [planned] = plan_emails(step, [subscribed, named], now=T0)

    assert (planned.user_id, planned.send_at, planned.waits_for_digest) == (2, T0, False)


def test_a_user_without_preferences_is_not_emailed() -> None:
    assert plan_emails(notification(), [Recipient(user=user(1), preferences=preferences(1, kinds=[]))], now=T0) == []


@given(moment=moments, hour=st.integers(0, 23), zone=st.sampled_from(ZONES))
def test_a_digest_is_due_on_the_users_local_day_once_its_hour_has_come(moment: datetime, hour: int, zone: str) -> None:
    local = moment.astimezone(ZoneInfo(zone))
    due = digest_day(preferences(digest_hour=hour, time_zone=zone), moment)
    assert due == (local.date() if local.hour >= hour else None)


steps_of = st.lists(st.integers(1, 600), min_size=1, max_size=5).map(
    lambda delays: [
        EscalationStep(step_no=n, user_id=10 + n, delay_min=d) for n, d in enumerate(sorted(delays), start=1)
    ]
)


@given(
    steps=steps_of,
    saved_after_min=st.integers(-600, 600),
    walks=st.lists(st.integers(0, 800), min_size=1, max_size=10).map(sorted),
)
def test_a_chain_is_walked_in_order_each_step_once_and_never_for_a_time_before_it_was_saved(
    steps: list[EscalationStep], saved_after_min: int, walks: list[int]
) -> None:
    detected = T0
    chain = EscalationChain(
        organisation_id=1, steps=steps, saved_at=T0 + timedelta(minutes=saved_after_min), saved_by="admin"
    )
    walked: list[EscalationStep] = []
    for minute in walks:
        now = T0 + timedelta(minutes=minute)
        due = due_steps(chain, detected_at=detected, done=[s.step_no for s in walked], now=now)
        assert all(detected + timedelta(minutes=s.delay_min) <= now for s in due)
        walked += due

    assert [s.step_no for s in walked] == sorted({s.step_no for s in walked})
    assert all(detected + timedelta(minutes=s.delay_min) >= chain.saved_at for s in walked if chain.saved_at)
    expected = [
        s.step_no
        for s in steps
        if chain.saved_at is not None
        and chain.saved_at <= detected + timedelta(minutes=s.delay_min) <= T0 + timedelta(minutes=walks[-1])
    ]
    assert [s.step_no for s in walked] == expected


def test_a_chain_names_active_users_once_each_in_order_of_their_delays() -> None:
    members = [user(1), user(2), user(3, active=False)]

    def problem(*pairs: tuple[int, int]) -> str | None:
        return chain_problem(
            [EscalationStep(step_no=n, user_id=u, delay_min=d) for n, (u, d) in enumerate(pairs, 1)], members
        )

    assert problem((1, 15), (2, 45)) is None
    assert problem() is None
    assert "no active user" in (problem((3, 15)) or "")
    assert "no active user" in (problem((9, 15)) or "")
    assert "told once" in (problem((1, 15), (1, 45)) or "")
    assert "in order" in (problem((1, 45), (2, 15)) or "")
    assert "between 1 and" in (problem((1, 0)) or "")


def test_time_zones_are_iana_names_this_machine_knows() -> None:
    assert known_time_zone("Europe/Helsinki") and known_time_zone("UTC")
    assert not any(known_time_zone(name) for name in ("Mars/Olympus", "", "../etc/passwd", "/etc/localtime"))
