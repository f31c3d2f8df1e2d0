"""The portal's email preferences page and the follow button through the real app (no browser): the form works
without JavaScript, a refused form comes back with the problem at the top, beside the field, and the values kept."""

from __future__ import annotations

from coldchain.storage import open_store
from tests.factories import make_shipment
from tests.http.test_portal_pages import Site, csrf_of, sign_in, site

__all__ = ["site"]


async def test_the_preferences_form_saves_what_a_person_ticks_and_shows_it_again(site: Site) -> None:
    await sign_in(site)
    page = await site.client.get("/portal/preferences")
    form = {
        "csrf_token": csrf_of(page),
        "kind_alarm.raised": "on",
        "kind_decision.needed": "on",
        "shipments": "all",
        "cadence": "digest",
        "digest_hour": "6",
        "time_zone": "Europe/Helsinki",
        "quiet_start": "22:00",
        "quiet_end": "06:30",
    }

    saved = await site.client.post("/portal/preferences", data=form, follow_redirects=False)
    shown = await site.client.get(saved.headers["location"])
    api = await site.client.get("/v1/users/me/notification-preferences")

    assert page.status_code == 200 and "Email notifications" in page.text
    assert "sends no email yet" in page.text  # this service has no SMTP server set
    assert (saved.status_code, saved.headers["location"]) == (303, "/portal/preferences?saved=1")
    assert "Your email preferences are saved." in shown.text
    assert 'name="kind_alarm.raised" checked' in shown.text and 'name="kind_eta.at_risk" >' in shown.text
    assert 'value="22:00"' in shown.text and 'value="Europe/Helsinki"' in shown.text
    assert api.json()["kinds"] == ["alarm.raised", "decision.needed"]
    assert (api.json()["cadence"], api.json()["digest_hour"], api.json()["quiet_end"]) == ("digest", 6, "06:30")


async def test_a_refused_preferences_form_says_what_is_wrong_beside_the_field_and_keeps_the_values(site: Site) -> None:
    await sign_in(site)
    page = await site.client.get("/portal/preferences")
    form = {
        "csrf_token": csrf_of(page),
        "kind_alarm.raised": "on",
        "shipments": "followed",
        "cadence": "immediate",
        "digest_hour": "7",
        "time_zone": "Mars/Olympus",
        "quiet_start": "",
        "quiet_end": "",
    }

    refused = await site.client.post("/portal/preferences", data=form)
    half_quiet = await site.client.post(
        "/portal/preferences", data={**form, "time_zone": "UTC", "quiet_start": "22:00"}
    )
    api = await site.client.get("/v1/users/me/notification-preferences")

    assert refused.status_code == 422
    assert "There is a problem" in refused.text and 'href="#time_zone"' in refused.text
    assert 'id="time_zone-error">Error: ' in refused.text and "Mars/Olympus" in refused.text
    assert 'value="followed" checked' in refused.text and 'name="kind_alarm.raised" checked' in refused.text
    assert half_quiet.status_code == 422 and 'id="quiet_start-error"' in half_quiet.text
    assert api.json()["updated_at"] is None  # nothing was saved


async def test_the_follow_button_on_a_shipment_page_follows_and_unfollows_it(site: Site) -> None:
    store = await open_store(site.database_url)
    try:
        shipment = await make_shipment(store, owner=site.org)
    finally:
        await store.close()
    await sign_in(site)
    page = await site.client.get(f"/portal/shipments/{shipment.id}")
    form = {"csrf_token": csrf_of(page), "follow": "1"}

    followed = await site.client.post(f"/portal/shipments/{shipment.id}/follow", data=form, follow_redirects=False)
    after = await site.client.get(f"/portal/shipments/{shipment.id}")
    preferences = await site.client.get("/portal/preferences")
    ended = await site.client.post(
        f"/portal/shipments/{shipment.id}/follow",
        data={**form, "follow": "0", "back": "preferences"},
        follow_redirects=False,
    )
    without_token = await site.client.post(f"/portal/shipments/{shipment.id}/follow", data={"follow": "1"})

    assert ">Follow</button>" in page.text
    assert (followed.status_code, followed.headers["location"]) == (303, f"/portal/shipments/{shipment.id}")
    assert "✓ Following" in after.text and "Stop following" in after.text
    assert f'href="/portal/shipments/{shipment.id}">{shipment.reference}</a>' in preferences.text
    assert (ended.status_code, ended.headers["location"]) == (303, "/portal/preferences#followed")
    assert without_token.status_code == 403
    assert (await site.client.get("/v1/users/me/notification-preferences")).json()["followed_shipments"] == []
