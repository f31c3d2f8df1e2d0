"""User journeys through the portal in a real Chromium, each ending with a full-page screenshot in
``tests/artifacts/``: sign in and watch the board change live, read a shipment's chart and acknowledge its alarm,
set up a tracker and a shipment, sign out, set an escalation chain and read the email log."""

from __future__ import annotations

import functools
import io
import re
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pypdf
import pytest
from playwright.async_api import Page, expect

from coldchain.documents.email import render_email
from coldchain.domain.access import OPERATOR
from coldchain.services import emails
from coldchain.services.emails import EmailPolicy, PreferencesChange
from coldchain.storage import open_store
from tests.browser.conftest import ADMIN_EMAIL, AUDITOR_EMAIL, NOW, PASSWORD, Portal, journey, push, screenshot, sign_in
from tests.documents.test_report import save_pages
from tests.mail import SmtpSink

pytestmark = pytest.mark.slow


async def test_a_user_signs_in_sees_the_board_change_live_and_signs_out_for_good(page: Page, portal: Portal) -> None:
    await page.goto(f"{portal.url}/portal")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await screenshot(page, "01-sign-in")
    await sign_in(page, portal)

    await expect(page.get_by_role("heading", name="Shipments in transit")).to_be_visible()
    rows = page.locator("#board-rows tr")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#board-rows")).to_contain_text("SHP-100")
    await expect(page.locator("#board-rows")).to_contain_text("Influenza vaccine")
    await expect(page.locator(".leaflet-tooltip", has_text="SHP-100")).to_be_visible()
    await screenshot(page, "02-board")

    # Seventy minutes of freezing readings through the sync API: a live alarm, and a new last temperature.
    freezing = journey(NOW - timedelta(minutes=60), 7, first_seq=67)
    for reading in freezing:
        reading["temperature_c"] = -3.0
    await push(portal, freezing)
    row = page.locator("#board-rows tr[data-reference='SHP-100']")
    await expect(row.locator(".temperature")).to_contain_text("-3.0 °C", timeout=20_000)
    await expect(row.locator(".badge")).to_contain_text("Alarm")
    await expect(page.locator("#live-status")).to_contain_text("Live")
    await screenshot(page, "03-board-after-live-update")

    cookie = next(c for c in await page.context.cookies() if c["name"] == "coldchain_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    refused = await portal.http.get(
        f"{portal.url}/v1/shipments", headers={"Cookie": f"coldchain_session={cookie['value']}"}
    )
    assert refused.status_code == 401, portal.explain(refused)
    await page.goto(f"{portal.url}/portal")
    await expect(page).to_have_url(re.compile(r"/login\?next=/portal$"))
    await screenshot(page, "04-signed-out")


async def test_the_shipment_page_shades_the_excursion_and_an_alarm_is_acknowledged_from_the_inbox(
    page: Page, portal: Portal
) -> None:
    await sign_in(page, portal)
    await page.goto(f"{portal.url}/portal/shipments/{portal.shipment_id}")

    chart = page.locator("#chart")
    await expect(chart).to_have_attribute("data-shaded-excursions", "1")
    await expect(page.locator("#route-map .leaflet-interactive").first).to_be_visible()
    await expect(page.get_by_text("Detected late").first).to_be_visible()
    await expect(page.locator(".timeline")).to_contain_text("packed")
    await expect(page.locator(".timeline")).to_contain_text("API token")
    await expect(page.get_by_text("Recommendation")).to_be_visible()
    await screenshot(page, "05-shipment")

    await page.get_by_role("link", name="Alarm inbox").click()
    await expect(page.get_by_role("heading", name="Alarm inbox")).to_be_visible()
    first = page.locator(".alarm").first
    await expect(first).to_contain_text("SHP-100")
    await first.get_by_role("button", name="Acknowledge").click()  # no comment: refused, with the reason
    await expect(page.locator(".error-summary")).to_contain_text("say what was done")
    await screenshot(page, "06-inbox-refused")
    await (
        page.locator(".alarm")
        .first.get_by_label("What was done")
        .fill("Cold room checked; stock moved to a 5 °C fridge")
    )
    await page.locator(".alarm").first.get_by_role("button", name="Acknowledge").click()
    await expect(page.get_by_text("No alarm is waiting for acknowledgement.")).to_be_visible()
    await screenshot(page, "07-inbox-empty")

    await page.goto(f"{portal.url}/portal/shipments/{portal.shipment_id}#alarms")
    await expect(page.locator("#alarms")).to_contain_text("by Lena Fischer <lena.fischer@nordpharma.example>")
    await screenshot(page, "08-shipment-acknowledged")


async def test_set_up_shows_a_trackers_secret_once_and_creates_a_shipment(page: Page, portal: Portal) -> None:
    await sign_in(page, portal)
    await page.get_by_role("link", name="Set-up").click()

    await page.locator("#trackers-serial").fill("TRK-NEW-7")
    await page.get_by_role("button", name="Register tracker").click()
    secret = page.locator("#secret-value")
    await expect(secret).to_have_text(re.compile(r"\S{20,}"))
    shown = await secret.text_content()
    await screenshot(page, "09-setup-tracker-secret")
    await page.goto(f"{portal.url}/portal/setup")
    await expect(page.locator("#trackers")).to_contain_text("TRK-NEW-7")
    assert shown is not None and shown not in await page.content()

    form = page.locator("#shipments-form")
    await form.get_by_label("Reference").fill("SHP-200")
    await form.get_by_label("Quantity").fill("50")
    await form.get_by_label("Origin", exact=True).fill("Hamburg hub")
    await form.get_by_label("Origin latitude").fill("53.55")
    await form.get_by_label("Origin longitude").fill("9.99")
    await form.get_by_label("Destination", exact=True).fill("Leipzig clinic")
    await form.get_by_label("Destination latitude").fill("51.34")
    await form.get_by_label("Destination longitude").fill("east")
    await form.get_by_role("button", name="Create shipment").click()
    await expect(page.locator(".error-summary")).to_contain_text("destination longitude")
    await expect(page.locator("#shipments-form").get_by_label("Reference")).to_have_value("SHP-200")
    await screenshot(page, "10-setup-shipment-refused")
    await page.locator("#shipments-form").get_by_label("Destination longitude").fill("12.37")
    await page.locator("#shipments-form").get_by_role("button", name="Create shipment").click()
    await expect(page.locator("#shipments")).to_contain_text("SHP-200")
    await expect(page.locator("#shipments")).to_contain_text("Hamburg hub → Leipzig clinic")
    await screenshot(page, "11-setup-shipment-created")
    listed = await portal.http.get(f"{portal.url}/v1/shipments", headers=portal.logistics)
    assert "SHP-200" in [s["reference"] for s in listed.json()]


async def test_a_form_without_the_csrf_token_changes_nothing(page: Page, portal: Portal) -> None:
    await sign_in(page, portal)
    cookie = next(c for c in await page.context.cookies() if c["name"] == "coldchain_session")

    async with httpx.AsyncClient() as other_site:
        forged = await other_site.post(
            f"{portal.url}/portal/setup/trackers",
            data={"serial": "TRK-FORGED"},
            headers={"Cookie": f"coldchain_session={cookie['value']}"},
        )

    assert forged.status_code == 403
    await page.goto(f"{portal.url}/portal/setup")
    await expect(page.locator("#trackers")).not_to_contain_text("TRK-FORGED")


async def test_an_admin_adds_a_user_and_the_board_fits_a_tablet(page: Page, portal: Portal) -> None:
    await sign_in(page, portal, email=ADMIN_EMAIL)
    await expect(page.get_by_role("heading", name="Shipments in transit")).to_be_visible()
    await page.get_by_role("link", name="Set-up").click()

    form = page.locator("#users-form")
    await form.get_by_label("Name").fill("Jonas Becker")
    await form.get_by_label("Email").fill("jonas.becker@nordpharma.example")
    await form.get_by_label("Role").select_option("pharmacist")
    await form.get_by_label("First password").fill("pharmacist password")
    await form.get_by_role("button", name="Add user").click()
    await expect(page.locator("#users")).to_contain_text("jonas.becker@nordpharma.example")
    await expect(page.locator("#webhooks")).to_contain_text("No webhook")
    await page.locator("#users").scroll_into_view_if_needed()
    await screenshot(page, "12-setup-admin-users")

    await page.set_viewport_size({"width": 820, "height": 1180})
    await page.get_by_role("link", name="Board").click()
    await expect(page.locator(".leaflet-tooltip", has_text="SHP-100")).to_be_visible()
    await screenshot(page, "13-board-tablet")


async def test_a_pharmacist_walks_the_worklist_to_the_investigation_and_signs_a_decision(
    page: Page, portal: Portal
) -> None:
    moved = await portal.http.post(
        f"{portal.url}/v1/shipments/{portal.shipment_id}/status", json={"status": "delivered"}, headers=portal.logistics
    )
    assert moved.status_code == 200, portal.explain(moved)
    await sign_in(page, portal, email=portal.pharmacist_email)
    await page.get_by_role("link", name="Worklist").click()

    await expect(page.get_by_role("heading", name="Worklist")).to_be_visible()
    row = page.locator("table.worklist tbody tr", has_text="SHP-100")
    await expect(row).to_contain_text("quarantine")
    await expect(row).to_contain_text("no decision yet")
    await screenshot(page, "09-worklist")
    await row.get_by_role("link", name="SHP-100").click()

    await expect(page.get_by_role("heading", name="Investigation: SHP-100")).to_be_visible()
    await expect(page.locator(".report")).to_contain_text("Influenza vaccine")
    await expect(page.locator(".report svg").first).to_be_visible()
    await screenshot(page, "10-investigation")

    await page.get_by_role("button", name="Sign the decision").click()  # nothing chosen, no password
    await expect(page.locator(".error-summary")).to_contain_text("outcome")
    await page.get_by_label("quarantine: placed in quarantine").check()
    await page.get_by_label("Your email (user id)").fill(portal.pharmacist_email)
    await page.get_by_label("Your password").fill("not my password")
    await page.get_by_role("button", name="Sign the decision").click()
    await expect(page.locator(".error-summary")).to_contain_text("the password is not right")
    await screenshot(page, "11-signature-refused")

    await page.get_by_label("quarantine: placed in quarantine").check()
    await page.get_by_label("Reason").fill("The manufacturer's freeze data allow a retest of the lot.")
    await page.get_by_label("Comment").fill("Held for a stability review with the manufacturer.")
    await page.get_by_label("Your email (user id)").fill(portal.pharmacist_email)
    await page.get_by_label("Your password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign the decision").click()

    await expect(page.locator(".notice")).to_contain_text("Decision 1 is signed")
    decisions = page.locator(".report")
    await expect(decisions).to_contain_text("Dr. Jana Richter")
    await expect(decisions).to_contain_text("placed in quarantine")
    await expect(decisions).to_contain_text("UTC")
    await screenshot(page, "12-decision-signed")
    await page.get_by_role("link", name="Worklist").click()
    await expect(page.get_by_text("No shipment is waiting for a decision.")).to_be_visible()

    pdf = await page.request.get(f"{portal.url}/portal/shipments/{portal.shipment_id}/report.pdf")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    content = await pdf.body()
    assert save_pages(content, "13-portal-excursion-report")
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages)
    assert "Dr. Jana Richter" in text and "placed in quarantine" in text and "page 1 of" in text


async def test_an_auditor_reads_the_audit_trail_and_finds_the_shipments_documents(page: Page, portal: Portal) -> None:
    await sign_in(page, portal, email=AUDITOR_EMAIL)
    await page.get_by_role("link", name="Audit trail").click()

    await expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    await expect(page.locator(".verdict")).to_contain_text("Chain intact")
    await page.get_by_label("Shipment id").fill(str(portal.shipment_id))
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("table.audit")).to_contain_text(f"shipment:{portal.shipment_id}")
    await screenshot(page, "14-audit-trail")

    await page.goto(f"{portal.url}/portal/shipments/{portal.shipment_id}/investigation")
    documents = page.get_by_role("navigation", name="Documents and exports")
    await expect(documents.get_by_role("link", name="Draft certificate (signed PDF)")).to_be_visible()
    csv = await page.request.get(f"{portal.url}/v1/shipments/{portal.shipment_id}/readings.csv")
    assert csv.status == 200 and (await csv.text()).startswith("tracker,seq,device_time_utc")
    await screenshot(page, "15-investigation-documents")


async def test_a_person_follows_a_shipment_and_chooses_the_emails_they_get(page: Page, portal: Portal) -> None:
    await sign_in(page, portal)
    await page.goto(f"{portal.url}/portal/shipments/{portal.shipment_id}")
    await page.get_by_role("button", name="Follow").click()
    await expect(page.get_by_text("✓ Following")).to_be_visible()

    await page.get_by_role("link", name="Notifications").click()
    await expect(page.get_by_role("heading", name="Email notifications")).to_be_visible()
    await expect(page.locator("#followed")).to_contain_text("SHP-100")
    await page.get_by_label("An alarm is raised").check()
    await page.get_by_label("An alarm is escalated: nobody acknowledged it in time").check()
    await page.get_by_label("Only the shipments I follow").check()
    await page.get_by_label("Time zone").fill("Europe/Helsinki")
    await page.get_by_label("From").fill("22:00")
    await page.get_by_role("button", name="Save preferences").click()  # quiet hours without their end
    await expect(page.locator(".error-summary")).to_contain_text("both the start and the end")
    await expect(page.get_by_label("An alarm is raised")).to_be_checked()
    await screenshot(page, "16-preferences-refused")

    await page.get_by_label("Until").fill("06:30")
    await page.get_by_role("button", name="Save preferences").click()
    await expect(page.locator(".notice")).to_contain_text("Your email preferences are saved.")
    await expect(page.get_by_label("Only the shipments I follow")).to_be_checked()
    await expect(page.get_by_label("Until")).to_have_value("06:30")
    await screenshot(page, "17-preferences-saved")
    saved = await page.request.get(f"{portal.url}/v1/users/me/notification-preferences")
    assert (await saved.json())["kinds"] == ["alarm.escalated", "alarm.raised"]


async def _an_email_to_lena(database_url: str) -> None:
    """One email in the shipper's log the way the email job makes it: Lena chose silent trackers, the planner
    takes a notification, and the test's SMTP server refuses the first attempt and accepts the second."""
    store = await open_store(database_url)
    try:
        async with store.transaction() as tx:
            [org] = [o.id for o in await tx.list_organisations() if o.name == "Nordpharma Distribution"]
            [lena] = [u for u in await tx.users_of_organisation(org) if u.name == "Lena Fischer"]
        await emails.save_preferences(
            store, OPERATOR, PreferencesChange(kinds=["tracker.silent"]), organisation_id=org, user_id=lena.id, now=NOW
        )
        await emails.plan_emails(store, now=NOW)  # the first plan starts here
        async with store.transaction() as tx:
            await tx.publish(
                "tracker.silent",
                organisation_ids=[org],
                subject="tracker:TRK-B2",
                payload={"tracker": "TRK-B2", "silent_for_s": 5400},
                now=NOW,
            )
        assert await emails.plan_emails(store, now=NOW) == 1
        policy = EmailPolicy(sender="coldchain <alerts@coldchain.test>", public_url="http://127.0.0.1", retry_s=1)
        async with SmtpSink(["451 4.3.0 greylisted, try again later"]) as sink:
            for moment in (NOW, NOW + timedelta(minutes=2)):
                await emails.deliver_due_emails(
                    store,
                    sink.transport(),
                    render=render_email,
                    clock=functools.partial(_at, moment),
                    worker="journey",
                    policy=policy,
                )
        assert len(sink.received) == 1
    finally:
        await store.close()


def _at(moment: datetime) -> datetime:
    return moment


async def test_an_admin_sets_the_escalation_chain_and_reads_the_email_log(
    page: Page, portal: Portal, tmp_path: Path
) -> None:
    await _an_email_to_lena(f"sqlite:///{tmp_path / 'portal.db'}")
    await sign_in(page, portal, email=ADMIN_EMAIL)
    await expect(page.get_by_role("heading", name="Shipments in transit")).to_be_visible()
    await page.get_by_role("link", name="Escalation").click()
    await expect(page.get_by_role("heading", name="Escalation chain")).to_be_visible()
    await expect(page.locator("#chain")).to_contain_text("No chain")

    await page.get_by_label("Step 1: person").select_option(label="Lena Fischer (lena.fischer@nordpharma.example)")
    await page.get_by_label("Step 1: minutes after the alarm").fill("30")
    await page.get_by_role("button", name="Add a step").click()
    await page.get_by_label("Step 2: person").select_option(label=f"Max Weber ({ADMIN_EMAIL})")
    await page.get_by_label("Step 2: minutes after the alarm").fill("20")
    await page.get_by_role("button", name="Save the chain").click()  # the second step before the first: refused
    await expect(page.locator(".error-summary")).to_contain_text("no step comes before the one above it")
    await expect(page.get_by_label("Step 1: minutes after the alarm")).to_have_value("30")
    await expect(page.get_by_label("Step 2: person")).to_have_value(re.compile(r"^\d+$"))
    await screenshot(page, "18-escalation-refused")

    await page.get_by_label("Step 2: minutes after the alarm").fill("90")
    await page.get_by_role("button", name="Save the chain").click()
    await expect(page.locator(".notice")).to_contain_text("The escalation chain is saved.")
    steps = page.locator("#chain tbody tr")
    await expect(steps).to_have_count(2)
    await expect(steps.nth(0)).to_contain_text("Lena Fischer")
    await expect(steps.nth(0)).to_contain_text("30 minutes after it was raised")
    await expect(steps.nth(1)).to_contain_text("Max Weber")
    await expect(steps.nth(1)).to_contain_text("1 hour 30 minutes after it was raised")

    log = page.locator("#emails tbody tr")
    await expect(log).to_have_count(1)
    await expect(log.first).to_contain_text("[coldchain] Tracker TRK-B2 silent")
    await expect(log.first).to_contain_text("lena.fischer@nordpharma.example")
    await expect(log.first.locator(".email-state")).to_have_text("sent")
    await expect(log.first.locator(".attempts li")).to_have_count(2)
    await expect(log.first.locator(".attempts li").first).to_contain_text("greylisted")
    await expect(log.first.locator("time").first).to_contain_text(re.compile(r"UTC\+0[12]:00"))  # Berlin
    await screenshot(page, "19-escalation-saved-and-email-log")
