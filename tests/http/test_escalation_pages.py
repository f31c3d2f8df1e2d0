"""The portal's escalation page through the real app (no browser), on each engine: an organisation's admin reads
and replaces its escalation chain with a form that works without JavaScript (the same use case as
``PUT /v1/organisations/{id}/escalation-chain``, audited), a refused chain comes back with the problem at the top,
beside its row, and the values kept, and the email log lists every email with its attempts."""

from __future__ import annotations

import functools
import json
import random
from datetime import UTC, datetime, timedelta

from coldchain.documents.email import render_email
from coldchain.domain.access import OPERATOR
from coldchain.services import emails
from coldchain.services.emails import EmailPolicy, PreferencesChange
from coldchain.storage import open_store
from tests.factories import OPERATOR_HEADERS
from tests.http.test_portal_pages import PASSWORD, Site, csrf_of, sign_in, site
from tests.mail import SmtpSink

__all__ = ["site"]


async def _users(site: Site) -> dict[str, int]:
    """The organisation's people by email, with a third, Lena (logistics)."""
    lena = {"role": "logistics", "name": "Lena Fischer", "email": "lena@example.org", "password": PASSWORD}
    created = await site.client.post(f"/v1/organisations/{site.org}/users", json=lena, headers=OPERATOR_HEADERS)
    assert created.status_code == 201, created.text
    listed = await site.client.get(f"/v1/organisations/{site.org}/users", headers=OPERATOR_HEADERS)
    return {user["email"]: user["id"] for user in listed.json()}


def _at(moment: datetime) -> datetime:
    return moment


async def _chain(site: Site) -> dict[str, object]:
    found = await site.client.get(f"/v1/organisations/{site.org}/escalation-chain", headers=OPERATOR_HEADERS)
    assert found.status_code == 200, found.text
    body: dict[str, object] = found.json()
    return body


async def test_an_admin_saves_a_chain_with_the_form_and_sees_it_in_order_with_what_it_means(site: Site) -> None:
    users = await _users(site)
    await sign_in(site)
    page = await site.client.get("/portal/escalation")
    form = {
        "csrf_token": csrf_of(page),
        "step-1-user": str(users["lena@example.org"]),
        "step-1-delay": "30",
        "step-2-user": "",
        "step-2-delay": "",  # an empty row is no step
        "step-3-user": str(users["admin@example.org"]),
        "step-3-delay": "90",
        "action": "save",
    }

    saved = await site.client.post("/portal/escalation", data=form, follow_redirects=False)
    shown = await site.client.get(saved.headers["location"])
    audit = await site.client.get("/v1/audit", params={"actor": "admin@example.org"}, headers=OPERATOR_HEADERS)

    assert page.status_code == 200 and "<h1>Escalation chain</h1>" in page.text
    assert 'href="/portal/escalation" aria-current="page">Escalation</a>' in page.text
    assert "No chain: nobody is told person by person" in page.text
    assert (saved.status_code, saved.headers["location"]) == (303, "/portal/escalation?saved=1")
    assert "The escalation chain is saved." in shown.text
    assert "If nobody has acknowledged an alarm 30 minutes after it was raised, Lena Fischer is emailed." in shown.text
    assert "1 hour 30 minutes after it was raised, Admin User is emailed, after the people above." in shown.text
    assert shown.text.index("Lena Fischer") < shown.text.index("Admin User is emailed")
    assert f'<option value="{users["lena@example.org"]}" selected>' in shown.text
    assert (await _chain(site))["steps"] == [
        {"step_no": 1, "user_id": users["lena@example.org"], "delay_min": 30},
        {"step_no": 2, "user_id": users["admin@example.org"], "delay_min": 90},
    ]
    [entry] = [e for e in audit.json()["entries"] if e["action"] == "organisation.escalation_chain"]
    assert entry["subject"] == f"organisation:{site.org}"
    assert json.loads(entry["detail"])["after"] == [
        {"user_id": users["lena@example.org"], "delay_min": 30},
        {"user_id": users["admin@example.org"], "delay_min": 90},
    ]


async def test_adding_and_removing_a_row_shows_the_form_again_and_saves_nothing(site: Site) -> None:
    users = await _users(site)
    await sign_in(site)
    page = await site.client.get("/portal/escalation")
    form = {"csrf_token": csrf_of(page), "step-1-user": str(users["lena@example.org"]), "step-1-delay": "15"}

    added = await site.client.post("/portal/escalation", data={**form, "action": "add"})
    removed = await site.client.post(
        "/portal/escalation", data={**form, "step-2-user": "", "step-2-delay": "45", "remove": "1"}
    )

    assert added.status_code == 200
    assert 'id="step-2-user"' in added.text and 'id="step-3-user"' not in added.text
    assert 'id="step-1-delay" name="step-1-delay" type="text" inputmode="numeric" size="6" value="15"' in added.text
    assert removed.status_code == 200
    assert 'id="step-2-user"' not in removed.text and 'value="45"' in removed.text  # the second row moved up
    assert (await _chain(site))["saved_at"] is None


async def test_a_refused_chain_says_what_is_wrong_beside_its_row_and_keeps_the_values(site: Site) -> None:
    users = await _users(site)
    await sign_in(site)
    page = await site.client.get("/portal/escalation")
    base = {"csrf_token": csrf_of(page), "action": "save", "step-1-user": str(users["lena@example.org"])}

    too_soon = await site.client.post(
        "/portal/escalation",
        data={**base, "step-1-delay": "20", "step-2-user": str(users["admin@example.org"]), "step-2-delay": "0"},
    )
    not_a_number = await site.client.post("/portal/escalation", data={**base, "step-1-delay": "soon"})
    unknown = await site.client.post(
        "/portal/escalation",
        data={**base, "step-1-delay": "20", "step-2-user": "987654", "step-2-delay": "40"},
    )
    in_order = await site.client.post(
        "/portal/escalation",
        data={**base, "step-1-delay": "60", "step-2-user": str(users["admin@example.org"]), "step-2-delay": "30"},
    )

    assert too_soon.status_code == 422
    assert "There is a problem" in too_soon.text and '<a href="#step-2-delay">' in too_soon.text
    assert 'id="step-2-delay-error">Error: Step 2, delay: between 1 and 10080 minutes' in too_soon.text
    assert 'name="step-2-delay" type="text" inputmode="numeric" size="6" value="0"' in too_soon.text
    assert f'<option value="{users["admin@example.org"]}" selected>' in too_soon.text
    assert not_a_number.status_code == 422 and '<a href="#step-1-delay">' in not_a_number.text
    assert "Step 1: the delay is a whole number of minutes" in not_a_number.text and 'value="soon"' in not_a_number.text
    assert unknown.status_code == 422 and '<a href="#step-2-user">' in unknown.text
    assert "Step 2, person: user 987654 is no active user of the organisation" in unknown.text
    assert '<option value="987654" selected>user 987654 (no active user)</option>' in unknown.text
    assert in_order.status_code == 422 and "no step comes before the one above it" in in_order.text
    assert (await _chain(site))["saved_at"] is None  # nothing was saved


async def test_only_the_organisations_admin_has_the_page(site: Site) -> None:
    await sign_in(site, "auditor@example.org")
    board = await site.client.get("/portal")

    page = await site.client.get("/portal/escalation")
    empty = {"csrf_token": csrf_of(board), "action": "save", "step-1-user": "", "step-1-delay": ""}
    posted = await site.client.post("/portal/escalation", data=empty)

    assert "/portal/escalation" not in board.text, "no link for whom the page is not"
    assert page.status_code == 403 and "Not allowed" in page.text
    assert posted.status_code == 403
    assert (await _chain(site))["saved_at"] is None


async def test_the_email_log_shows_each_email_with_its_subject_state_and_every_attempt(site: Site) -> None:
    users = await _users(site)
    now = datetime.now(UTC)
    policy = EmailPolicy(sender="coldchain <alerts@coldchain.test>", public_url="https://coldchain.test", retry_s=1)
    store = await open_store(site.database_url)
    try:
        change = PreferencesChange(kinds=["tracker.silent"])
        await emails.save_preferences(
            store, OPERATOR, change, organisation_id=site.org, user_id=users["lena@example.org"], now=now
        )
        await emails.plan_emails(store, now=now)  # the first plan starts here: nothing before is mailed
        async with store.transaction() as tx:
            await tx.publish(
                "tracker.silent",
                organisation_ids=[site.org],
                subject="tracker:TRK-Q9",
                payload={"tracker": "TRK-Q9", "silent_for_s": 7200},
                now=now,
            )
        assert await emails.plan_emails(store, now=now) == 1
        async with SmtpSink(["451 4.3.0 try again later"]) as sink:
            for moment in (now, now + timedelta(minutes=5)):
                await emails.deliver_due_emails(
                    store,
                    sink.transport(),
                    render=render_email,
                    clock=functools.partial(_at, moment),
                    worker="test",
                    policy=policy,
                    rng=random.Random(3),
                )
        [received] = sink.received
    finally:
        await store.close()
    await sign_in(site)

    page = await site.client.get("/portal/escalation")
    limited = await site.client.get("/portal/escalation", params={"limit": "1"})
    too_many = await site.client.get("/portal/escalation", params={"limit": "501"})

    assert page.status_code == 200
    row = page.text[page.text.index('<tr id="email-') :]
    assert "Lena Fischer" in row and "lena@example.org" in row
    assert received.subject == "[coldchain] Tracker TRK-Q9 silent" and received.subject in row
    assert "A tracker falls silent" in row and '<span class="tag">tracker.silent</span>' in row
    assert '<span class="email-state email-sent">sent</span>' in row
    assert row.count("<li>") == 2
    assert "refused for now (tried again)" in row and "451" in row and "try again later" in row
    assert ': accepted<br><code class="reply">250' in row
    assert "UTC+00:00</time>" in row
    assert 'href="/portal/escalation?limit=4#emails"' in limited.text
    assert too_many.status_code == 400
