"""Email messages people can act on: one read model (:class:`coldchain.domain.emails.EmailMessage`), a subject and
two parts (plain text and HTML) written from the same lines, so both always say the same.

A message about an alarm says, in its subject, the shipment, the rule and its severity (the rule's action); its
body gives the reading that met the condition, the time in the recipient's time zone with its UTC offset, who held
the shipment then, a link to the shipment's page and one to acknowledge the alarm there. A link opens a portal page
that needs a sign-in: it carries no secret that acts by itself. Every message ends with the link to the recipient's
preferences page, where they are changed or turned off (also the ``List-Unsubscribe`` header).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import cache
from typing import Any, Final
from zoneinfo import ZoneInfo

import jinja2
import msgspec

from coldchain.documents import wording
from coldchain.documents.report import TEMPLATES
from coldchain.domain.emails import EmailMessage, NoticeItem, RenderedEmail

__all__ = ["email_subject", "local_time", "render_email"]

_HEADLINES: Final[dict[str, str]] = {
    "alarm.raised": "Alarm raised",
    "alarm.escalated": "Alarm escalated: nobody has acknowledged it",
    "alarm.escalation_step": "Alarm not acknowledged: you are next in the escalation chain",
    "alarm.acknowledged": "Alarm acknowledged",
    "eta.at_risk": "Arrival at risk",
    "tracker.silent": "Tracker silent",
    "custody.recorded": "Custody event recorded",
    "custody.broken": "Custody chain broken",
    "audit.broken": "Audit trail broken",
    "decision.needed": "Decision needed",
}
_CUSTODY: Final[dict[str, str]] = {
    "packed": "packed",
    "picked_up": "picked up",
    "handed_over": "handed over",
    "arrived": "arrived",
    "delivered": "delivered",
    "received": "received",
}
_WAITING: Final[dict[str, str]] = {
    "undecided": "no decision yet",
    "evaluation_changed": "the evaluation changed after the decision was signed",
    "awaiting_approval": "a release awaits its QA approval",
    "excursions": "excursions",
    "quarantine_recommended": "quarantine or reject recommended",
    "faults": "gaps, faults or quarantined readings",
}


def local_time(moment: datetime | None, zone: str) -> str:
    """``2026-03-01 04:12 UTC+02:00 (Europe/Helsinki)``: the recipient's wall clock, its offset, and the zone."""
    if moment is None:
        return wording.NONE
    local = moment.astimezone(ZoneInfo(zone))
    offset = local.utcoffset()
    minutes = 0 if offset is None else int(offset.total_seconds() // 60)
    return f"{local.strftime('%Y-%m-%d %H:%M')} {wording.utc_offset(minutes)} ({zone})"


class _Line(msgspec.Struct, frozen=True):
    label: str
    value: str


class _Link(msgspec.Struct, frozen=True):
    label: str
    url: str


class _Block(msgspec.Struct, frozen=True, kw_only=True):
    """One notification as both parts show it: a headline, facts, links."""

    headline: str
    lines: list[_Line]
    links: list[_Link]


def _when(value: Any, zone: str) -> str:
    if isinstance(value, datetime):
        return local_time(value, zone)
    if isinstance(value, str):
        try:
            return local_time(datetime.fromisoformat(value), zone)
        except ValueError:
            return value
    return wording.NONE


def _subject_of(item: NoticeItem) -> str:
    what = _HEADLINES.get(item.kind, item.kind).split(":")[0]
    on = f" on {item.reference}" if item.reference else ""
    if item.rule is not None:
        return f"[coldchain] {what}{on}: {item.rule} ({item.severity})"
    tracker = item.payload.get("tracker")
    if item.kind == "tracker.silent" and isinstance(tracker, str):
        return f"[coldchain] Tracker {tracker} silent{on}"
    return f"[coldchain] {what}{on}"


def email_subject(items: Sequence[NoticeItem], digest_on: date | None) -> str:
    """The subject of an email telling ``items``: the first (only) item's, or a digest's count. The outbox keeps
    no subject; the portal's email log says it again from the same items."""
    if digest_on is None:
        return _subject_of(items[0]) if items else "[coldchain]"
    count = len(items)
    return f"[coldchain] Daily digest {digest_on.isoformat()}: {count} notification{'s' * (count != 1)}"


def _block(item: NoticeItem, message: EmailMessage) -> _Block:
    zone, base, payload = message.time_zone, message.public_url, item.payload
    lines: list[_Line] = []
    links: list[_Link] = []
    headline = _HEADLINES.get(item.kind, item.kind)
    if item.reference:
        shipment = item.reference
        if item.product:
            shipment += f" · {item.product}" + (f", lot {item.lot}" if item.lot else "")
        lines.append(_Line("Shipment", shipment))
    if item.rule is not None:
        metric = item.metric if item.metric in wording.UNITS else "temperature"
        limit = (
            f" ({item.metric} {item.direction} {wording.measure(item.threshold, metric, 1)})"
            if item.threshold is not None
            else ""
        )
        lines.append(_Line("Rule", f"{item.rule}{limit}"))
        lines.append(_Line("Severity", item.severity or wording.NONE))
        if item.reading is not None:
            lines.append(
                _Line("Reading", f"{wording.measure(item.reading, metric)} at {local_time(item.reading_at, zone)}")
            )
        lines.append(_Line("Began", local_time(item.began_at, zone)))
        lines.append(_Line("Condition met", local_time(item.met_at, zone)))
        if item.late:
            lines.append(_Line("Detected", "late: the data arrived after an outage, this reports the past"))
    if item.kind == "alarm.escalated":
        lines.append(_Line("Raised", _when(payload.get("detected_at"), zone)))
    if item.kind == "alarm.escalation_step":
        lines.append(_Line("Step", f"{payload.get('step_no')}, {payload.get('delay_min')} min after it was raised"))
        lines.append(_Line("Raised", _when(payload.get("detected_at"), zone)))
    if item.kind == "alarm.acknowledged":
        lines.append(
            _Line("Acknowledged", f"{_when(payload.get('acknowledged_at'), zone)} by {payload.get('acknowledged_by')}")
        )
    if item.kind == "eta.at_risk":
        lines.append(_Line("ETA", _when(payload.get("eta"), zone)))
        lines.append(_Line("Promised", _when(payload.get("promised_at"), zone)))
        if payload.get("budget_runs_out_at"):
            lines.append(_Line("Budget runs out", _when(payload.get("budget_runs_out_at"), zone)))
        reasons = payload.get("reasons")
        if isinstance(reasons, list) and reasons:
            lines.append(_Line("Why", "; ".join(str(r) for r in reasons)))
    if item.kind == "tracker.silent":
        lines.append(_Line("Tracker", str(payload.get("tracker"))))
        lines.append(_Line("Silent since", _when(payload.get("silent_since"), zone)))
        lines.append(_Line("Last sync", _when(payload.get("last_sync_at"), zone)))
    if item.kind == "custody.recorded":
        kind = str(payload.get("kind"))
        headline = f"Custody event: {_CUSTODY.get(kind, kind)}"
        lines.append(_Line("Happened", _when(payload.get("occurred_at"), zone)))
    if item.kind == "custody.broken":
        lines.append(_Line("First broken event", str(payload.get("broken_at_seq"))))
        lines.append(_Line("Problem", str(payload.get("problem"))))
    if item.kind == "audit.broken":
        lines.append(_Line("First broken entry", str(payload.get("first_broken_id"))))
    if item.kind == "decision.needed":
        lines.append(_Line("Recommendation", str(payload.get("recommendation"))))
        reasons = payload.get("reasons")
        if isinstance(reasons, list):
            lines.append(_Line("Waiting because", "; ".join(_WAITING.get(str(r), str(r)) for r in reasons)))
    if item.reference:
        lines.append(_Line("Custodian", item.custodian or "nobody yet"))
    lines.append(_Line("Told", local_time(item.created_at, zone)))
    if item.shipment_id is not None:
        links.append(_Link("Shipment page", f"{base}/portal/shipments/{item.shipment_id}"))
        if item.alarm_id is not None and item.kind != "alarm.acknowledged":
            links.append(
                _Link("Acknowledge the alarm", f"{base}/portal/shipments/{item.shipment_id}#alarm-{item.alarm_id}")
            )
        if item.kind == "decision.needed":
            links.append(_Link("Investigation", f"{base}/portal/shipments/{item.shipment_id}/investigation"))
    return _Block(headline=headline, lines=lines, links=links)


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES / "email"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def render_email(message: EmailMessage) -> RenderedEmail:
    """The subject, the plain text and the HTML of ``message``."""
    blocks = [_block(item, message) for item in message.items]
    subject = email_subject(message.items, message.digest_on)
    if message.digest_on is None:
        intro = None
    else:
        intro = (
            f"What happened since your last digest ({local_time(message.digest_since, message.time_zone)})."
            if message.digest_since is not None
            else "What happened since you chose a daily digest."
        )
    context = {
        "message": message,
        "subject": subject,
        "intro": intro,
        "blocks": blocks,
        "preferences_url": f"{message.public_url}/portal/preferences",
        "sign_in_note": "The links open the portal; sign in if it asks you to.",
    }
    env = _environment()
    return RenderedEmail(
        subject=subject,
        text=env.get_template("message.txt").render(context),
        html=env.get_template("message.html").render(context),
    )
