"""Email preferences, follows, escalation chains and the email log through the real app, on each storage engine:
a person's own preferences with their session, a user's through the organisation's admin, every change audited,
every refusal a precise 4xx in the one error shape."""

from __future__ import annotations

from coldchain.storage import open_store
from tests.factories import make_org, make_shipment
from tests.http.test_sync_api import assert_error
from tests.http.test_tenancy_api import new_token
from tests.http.test_users_sessions import Office, add_user, cookie_only, office, signed_in

__all__ = ["office"]

PREFERENCES = "/v1/users/me/notification-preferences"


async def test_a_person_saves_their_preferences_with_their_session_and_reads_them_back(office: Office) -> None:
    await add_user(office)
    session = await signed_in(office)
    before = await office.client.get(PREFERENCES, headers=cookie_only(session))
    body = {
        "kinds": ["alarm.raised", "alarm.escalated"],
        "shipments": "followed",
        "cadence": "digest",
        "digest_hour": 6,
        "time_zone": "Europe/Helsinki",
        "quiet_start": "22:00",
        "quiet_end": "06:30",
    }

    saved = await office.client.put(PREFERENCES, json=body, headers=session)
    after = await office.client.get(PREFERENCES, headers=cookie_only(session))

    assert before.status_code == 200 and before.json()["kinds"] == [] and before.json()["updated_at"] is None
    assert saved.status_code == 200, saved.text
    assert after.json() == saved.json()
    assert {k: after.json()[k] for k in body} == {**body, "kinds": ["alarm.escalated", "alarm.raised"]}
    assert after.json()["email"] == "ada@example.org" and after.json()["followed_shipments"] == []
    audit = await office.client.get("/v1/audit", headers=office.admin)
    [entry] = [e for e in audit.json()["entries"] if e["action"] == "user.notification_preferences"]
    assert entry["actor"].startswith("Ada Lovelace <ada@example.org>")
    assert '"before":null' in entry["detail"] and '"Europe/Helsinki"' in entry["detail"]


async def test_preferences_that_cannot_be_kept_are_refused_with_the_field_named(office: Office) -> None:
    await add_user(office)
    session = await signed_in(office)
    cases = [
        ({"kinds": ["alarm.escalation_step"]}, "kinds"),
        ({"kinds": [], "time_zone": "Mars/Olympus"}, "time_zone"),
        ({"kinds": [], "quiet_start": "22:00"}, "quiet_start"),
        ({"kinds": [], "quiet_start": "22:00", "quiet_end": "22:00"}, "quiet_end"),
        ({"kinds": [], "quiet_start": "24:00", "quiet_end": "06:00"}, "quiet_start"),
        ({"kinds": [], "digest_hour": 24}, "digest_hour"),
        ({"kinds": ["alarm.raised"], "colour": "red"}, "colour"),
        ({"kinds": ["no.such.kind"]}, "kinds"),
    ]
    for body, field in cases:
        assert_error(await office.client.put(PREFERENCES, json=body, headers=session), 422, "invalid", field)
    assert (await office.client.get(PREFERENCES, headers=cookie_only(session))).json()["updated_at"] is None


async def test_an_api_token_has_no_preferences_of_its_own_but_an_admin_sets_a_users(office: Office) -> None:
    user = await add_user(office)
    logistics = {"Authorization": f"Bearer {await new_token(office.client, office.org, 'logistics')}"}
    of_user = f"/v1/organisations/{office.org}/users/{user['id']}/notification-preferences"
    other = await make_other_org(office)

    assert_error(await office.client.get(PREFERENCES, headers=office.admin), 403, "forbidden", "a person's")
    assert_error(await office.client.put(PREFERENCES, json={"kinds": []}, headers=office.admin), 403, "forbidden")
    saved = await office.client.put(of_user, json={"kinds": ["eta.at_risk"]}, headers=office.admin)
    assert saved.status_code == 200 and saved.json()["kinds"] == ["eta.at_risk"]
    assert (await office.client.get(of_user, headers=office.admin)).json() == saved.json()
    assert_error(await office.client.get(of_user, headers=logistics), 403, "forbidden")
    assert_error(
        await office.client.get(
            f"/v1/organisations/{other}/users/{user['id']}/notification-preferences", headers=office.admin
        ),
        404,
        "not_found",
    )
    assert_error(
        await office.client.get(
            f"/v1/organisations/{office.org}/users/999/notification-preferences", headers=office.admin
        ),
        404,
        "not_found",
    )


async def make_other_org(office: Office) -> int:
    store = await open_store(office.database_url)
    try:
        return (await make_org(store, "Someone else")).id
    finally:
        await store.close()


async def test_a_person_follows_and_unfollows_a_shipment_of_their_organisation(office: Office) -> None:
    await add_user(office)
    store = await open_store(office.database_url)
    try:
        ours = await make_shipment(store, owner=office.org)
        theirs = await make_shipment(store, owner=(await make_org(store)).id)
    finally:
        await store.close()
    session = await signed_in(office)
    follow = f"/v1/shipments/{ours.id}/follow"

    first = await office.client.put(follow, headers=session)
    again = await office.client.put(follow, headers=session)
    followed = (await office.client.get(PREFERENCES, headers=cookie_only(session))).json()["followed_shipments"]
    ended = await office.client.delete(follow, headers=session)
    twice = await office.client.delete(follow, headers=session)

    assert (first.status_code, first.json()) == (200, {"shipment_id": ours.id, "following": True, "changed": True})
    assert again.json()["changed"] is False and followed == [ours.id]
    assert ended.json() == {"shipment_id": ours.id, "following": False, "changed": True}
    assert twice.json()["changed"] is False
    assert_error(await office.client.put(f"/v1/shipments/{theirs.id}/follow", headers=session), 404, "not_found")
    assert_error(await office.client.put(follow, headers=office.admin), 403, "forbidden", "a person's")
    assert_error(await office.client.put(follow, headers=cookie_only(session)), 403, "forbidden", "CSRF")


async def test_an_admin_sets_the_escalation_chain_in_order_of_its_delays(office: Office) -> None:
    ann = await add_user(office, "ann@example.org")
    bob = await add_user(office, "bob@example.org")
    chain = f"/v1/organisations/{office.org}/escalation-chain"
    logistics = {"Authorization": f"Bearer {await new_token(office.client, office.org, 'logistics')}"}
    steps = [{"user_id": ann["id"], "delay_min": 15}, {"user_id": bob["id"], "delay_min": 45}]

    empty = await office.client.get(chain, headers=office.admin)
    saved = await office.client.put(chain, json={"steps": steps}, headers=office.admin)

    assert empty.json() == {"organisation_id": office.org, "steps": [], "saved_at": None, "saved_by": None}
    assert saved.status_code == 200, saved.text
    assert saved.json()["steps"] == [{"step_no": n, **s} for n, s in enumerate(steps, start=1)]
    assert (await office.client.get(chain, headers=office.admin)).json() == saved.json()
    assert_error(
        await office.client.put(chain, json={"steps": steps[::-1]}, headers=office.admin), 422, "invalid", "order"
    )
    unknown = {"steps": [{"user_id": 999, "delay_min": 15}]}
    assert_error(await office.client.put(chain, json=unknown, headers=office.admin), 422, "invalid", "no active user")
    late = {"steps": [{"user_id": ann["id"], "delay_min": 7 * 24 * 60 + 1}]}
    assert_error(await office.client.put(chain, json=late, headers=office.admin), 422, "invalid", "delay_min")
    assert_error(await office.client.put(chain, json={"steps": steps}, headers=logistics), 403, "forbidden")
    assert_error(await office.client.get(chain, headers=logistics), 403, "forbidden")
    other = await make_other_org(office)
    assert_error(
        await office.client.get(f"/v1/organisations/{other}/escalation-chain", headers=office.admin), 404, "not_found"
    )


async def test_the_email_log_is_the_admins(office: Office) -> None:
    logistics = {"Authorization": f"Bearer {await new_token(office.client, office.org, 'logistics')}"}
    emails = f"/v1/organisations/{office.org}/emails"

    assert (await office.client.get(emails, headers=office.admin)).json() == []
    assert_error(await office.client.get(emails, headers=logistics), 403, "forbidden")
    assert_error(await office.client.get(f"{emails}?limit=0", headers=office.admin), 422, "invalid", "limit")
