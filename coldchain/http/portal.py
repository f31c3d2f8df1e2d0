"""The portal: server-rendered pages over the same use cases as the API (a page is a view of its API twin).

Pages: sign-in, the board (map and table of shipments in transit, live), a shipment (chart, route, custody,
alarms, ETA, MKT, budget, disposition), the alarm inbox, set-up (products and lots, trackers, shipments,
webhooks, users), a person's email preferences, and the admin's escalation chain and email log. Every form works
without JavaScript and carries the session's CSRF token; a refused form is shown again with a summary of what went
wrong at the top, the message beside the field and the values kept.
JavaScript draws the map (Leaflet), the chart (uPlot) and applies live updates (EventSource on ``/v1/events``).

Every asset is served by the service: the portal's own CSS and scripts from ``static/``, the libraries from
``assets/node_modules`` (installed by ``make assets`` from ``assets/package-lock.json``). The pages send a
Content-Security-Policy that allows no inline script.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import available_timezones

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.params import Body, PathParameter, QueryParameter
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler
from markupsafe import Markup, escape

from coldchain.documents.email import email_subject
from coldchain.documents.report import STYLESHEET, report_body, report_pdf
from coldchain.domain.access import ROLES, Principal, allowed
from coldchain.domain.audit import AuditFilter
from coldchain.domain.board import BOARD_STATES, BoardState
from coldchain.domain.decisions import DECIDABLE_STATUSES, MEANINGS
from coldchain.domain.emails import DIRECT_KIND, MAX_CHAIN_DELAY_MIN, MAX_CHAIN_STEPS, PREFERENCE_KINDS, EmailAttempt
from coldchain.domain.notifications import NOTIFICATION_KINDS
from coldchain.domain.shipments import Leg, Place
from coldchain.http.auth import CSRF_FIELD, check_csrf, request_session
from coldchain.http.decisions import login_limits, pdf_response
from coldchain.http.deps import NowDep, SettingsDep, StoreDep
from coldchain.http.errors import ApiError
from coldchain.http.limits import client_address
from coldchain.http.users import end_session_cookie, session_cookie, sign_in
from coldchain.http.wire import MAX_ID, PathId
from coldchain.services import access as access_cases
from coldchain.services import alarms as alarm_cases
from coldchain.services import audit as audit_cases
from coldchain.services import custody as custody_cases
from coldchain.services import decisions as decision_cases
from coldchain.services import emails as email_cases
from coldchain.services import escalation as escalation_cases
from coldchain.services import evaluation as evaluation_cases
from coldchain.services import portal as use_cases
from coldchain.services import products as product_cases
from coldchain.services import shipments as shipment_cases
from coldchain.services import trackers as tracker_cases
from coldchain.services import users as user_cases
from coldchain.services import webhooks as webhook_cases
from coldchain.services.errors import Invalid, NotFound, ServiceError
from coldchain.services.eta import shipment_eta
from coldchain.settings import Settings
from coldchain.storage import AlreadyExists

__all__ = ["TEMPLATES", "VENDOR", "portal_routes", "template_filters"]

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
VENDOR = HERE / "assets" / "node_modules"

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
StateQuery = Annotated[str | None, QueryParameter(name="state", max_length=20)]
TextQuery = Annotated[str | None, QueryParameter(max_length=200)]
_CHART_POINTS = 1500
"""About how many buckets the shipment chart asks for: a point per pixel or two of a wide screen."""
_SHIPMENT_STATUSES = ("planned", "in_transit", "delivered", "closed", "cancelled")


class SignInNeeded(Exception):
    """A page was asked for without a valid session: the answer is the sign-in page."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


class FormError(Exception):
    """One field of a form is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Viewer(msgspec.Struct, frozen=True, kw_only=True):
    """The signed-in person looking at a page, and the CSRF token their forms carry."""

    principal: Principal
    csrf_token: str

    @property
    def name(self) -> str:
        return self.principal.user_name or ""

    def may(self, action: str) -> bool:
        return allowed(self.principal, action)  # type: ignore[arg-type]


ViewerDep = NamedDependency[Viewer]
"""The signed-in person looking at a page (:func:`provide_viewer`); without a session, the sign-in page."""


async def provide_viewer(request: Request[Any, Any, Any]) -> Viewer:
    found = await request_session(request, request.app.state)
    if found is None:
        raise SignInNeeded(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    principal, csrf_token = found
    await check_csrf(request, csrf_token)
    return Viewer(principal=principal, csrf_token=csrf_token)


def _to_sign_in(_: Request[Any, Any, Any], exc: SignInNeeded) -> Response[Any]:
    return Redirect(f"/login?next={quote(exc.back_to, safe='/')}", status_code=303)


_HEADINGS = {
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
    422: "Not accepted",
}


def _error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A refusal on a page, as a page: the same words the API gives, with the way back."""
    if isinstance(exc, HTTPException):
        status, detail = exc.status_code, str(exc.detail)
        if status == 403 and CSRF_FIELD in detail:
            detail = (
                "This form was sent without its security token, or from an old page. Reload the page and try again."
            )
    else:
        status, detail = _refusal(exc), str(exc)
    return Template(
        template_name="error.html",
        context={"viewer": None, "tiles_url": "", "heading": _HEADINGS.get(status, "Not accepted"), "detail": detail},
        status_code=status,
    )


# -- template helpers -------------------------------------------------------------------------------------------


def _when(value: datetime | None) -> Markup:
    """A time as the page shows it: UTC with its offset, in a ``<time>`` the page's script shows in the reader's
    time zone (with that offset)."""
    if value is None:
        return Markup("<span class='none'>—</span>")
    moment = value.astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M UTC+00:00")
    return Markup(f"<time datetime='{moment.isoformat()}'>{escape(text)}</time>")


def _minutes(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.0f} min"
    return f"{value / 60:.1f} h"


def _age(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "never"
    seconds = (now - value).total_seconds()
    if seconds < 0:
        return "ahead of the service's clock"
    return f"{_minutes(seconds / 60)} ago"


def _number(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def template_filters() -> dict[str, Callable[..., Any]]:
    return {"when": _when, "minutes": _minutes, "number": _number}


def _safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of this service only (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or urlsplit(value).netloc:
        return "/portal"
    return value


def _page(
    name: str, viewer: Viewer | None, settings: Settings, now: datetime, status_code: int = 200, **context: Any
) -> Template:
    return Template(
        template_name=name,
        context={
            "viewer": viewer,
            "csrf_field": CSRF_FIELD,
            "tiles_url": settings.map_tiles_url or "",
            "now": now,
            "age": lambda value: _age(value, now),
            **context,
        },
        status_code=status_code,
    )


def _field_of(message: str, fields: tuple[str, ...]) -> str:
    """The form field a service's message names (``"comment: say what was done"`` names ``comment``)."""
    head = message.split(":", 1)[0].strip().lower()
    for field in fields:
        if head == field or head.startswith(field) or f"`{field}`" in message:
            return field
    return ""


def _refusal(exc: Exception) -> int:
    if isinstance(exc, AlreadyExists):
        return 409
    if isinstance(exc, FormError):
        return 422
    name = type(exc).__name__
    return {"NotFound": 404, "Forbidden": 403, "Conflict": 409}.get(name, 422)


_LABELS = {
    "origin_lat": "origin latitude",
    "origin_lon": "origin longitude",
    "destination_lat": "destination latitude",
    "destination_lon": "destination longitude",
    "product_id": "product",
    "lot_id": "lot id",
    "receiver_id": "receiver organisation id",
    "promised_at": "promised delivery",
    "expires_on": "expires on",
    "lot_number": "lot number",
}


def _label(field: str) -> str:
    """The field as its form labels it, for messages a person reads."""
    return _LABELS.get(field, field.replace("_", " "))


# -- form values --------------------------------------------------------------------------------------------------


def _text(form: Mapping[str, str], field: str, *, required: bool = True, max_length: int = 200) -> str | None:
    value = (form.get(field) or "").strip()
    if not value:
        if required:
            raise FormError(field, f"{_label(field)}: enter a value")
        return None
    if len(value) > max_length:
        raise FormError(field, f"{_label(field)}: at most {max_length} characters")
    return value


def _integer(
    form: Mapping[str, str], field: str, *, required: bool = True, low: int = 1, high: int = MAX_ID
) -> int | None:
    value = _text(form, field, required=required, max_length=30)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise FormError(field, f"{_label(field)}: a whole number") from None
    if not low <= number <= high:
        raise FormError(field, f"{_label(field)}: between {low} and {high}")
    return number


def _decimal(form: Mapping[str, str], field: str, low: float, high: float) -> float:
    value = _text(form, field, max_length=30)
    try:
        number = float(value or "")
    except ValueError:
        raise FormError(
            field, f"{_label(field)}: a number of degrees, like {12.37 if 'lon' in field else 52.52}"
        ) from None
    if not low <= number <= high:
        raise FormError(field, f"{_label(field)}: between {low:g} and {high:g}")
    return number


def _moment(form: Mapping[str, str], field: str, *, required: bool = False) -> datetime | None:
    value = _text(form, field, required=required, max_length=40)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FormError(field, f"{_label(field)}: a date and time like 2026-05-02T12:00Z") from None
    if moment.tzinfo is None:
        raise FormError(field, f"{_label(field)}: give the UTC offset too, like 2026-05-02T14:00+02:00")
    return moment.astimezone(UTC)


def _choice(form: Mapping[str, str], field: str, options: tuple[str, ...]) -> str:
    value = (form.get(field) or "").strip()
    if value not in options:
        raise FormError(field, f"{_label(field)}: choose one of {', '.join(options)}")
    return value


def _legs(form: Mapping[str, str]) -> list[Leg]:
    """Legs written as ``carrier-id mode`` separated by ';' (``12 road; 31 air``), in order."""
    legs = []
    for number, part in enumerate((p for p in re.split(r"[;\n]", form.get("legs") or "") if p.strip()), start=1):
        words = part.split()
        if len(words) != 2 or not words[0].isdigit() or words[1] not in ("road", "air", "sea", "rail"):
            raise FormError(
                "legs", "legs: 'carrier-id mode' per leg, mode road, air, sea or rail, like 12 road; 31 air"
            )
        legs.append(Leg(leg_no=number, carrier_id=int(words[0]), mode=words[1]))  # type: ignore[arg-type]
    if len(legs) > 20:
        raise FormError("legs", "legs: at most 20")
    return legs


def _waypoints(form: Mapping[str, str]) -> list[tuple[float, float]]:
    points = []
    for part in re.split(r"[;\n]", form.get("waypoints") or ""):
        if not part.strip():
            continue
        try:
            lat, lon = (float(x) for x in part.split(","))
        except ValueError:
            raise FormError("waypoints", "waypoints: 'lat, lon' pairs separated by ';'") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise FormError("waypoints", f"waypoints: {lat}, {lon} is not a place on Earth")
        points.append((lat, lon))
    return points


# -- pages ------------------------------------------------------------------------------------------------------


@get("/", include_in_schema=False)
async def home() -> Redirect:
    return Redirect("/portal", status_code=303)


@get("/login", include_in_schema=False)
async def login_page(
    request: Request[Any, Any, Any],
    settings: SettingsDep,
    now: NowDep,
) -> Template | Redirect:
    back_to = _safe_next(request.query_params.get("next"))
    if await request_session(request, request.app.state) is not None:
        return Redirect(back_to, status_code=303)
    return _page("login.html", None, settings, now, values={"next": back_to}, errors={})


@post("/login", include_in_schema=False)
async def login_submit(
    request: Request[Any, Any, Any], data: Form, store: StoreDep, settings: SettingsDep, now: NowDep
) -> Response[Any]:
    email, password = (data.get("email") or "").strip(), data.get("password") or ""
    values = {"email": email, "next": _safe_next(data.get("next"))}
    errors: dict[str, str] = {}
    if not email:
        errors["email"] = "Enter your email address"
    if not password:
        errors["password"] = "Enter your password"
    if errors:
        return _page("login.html", None, settings, now, 422, values=values, errors=errors)
    try:
        signed = await sign_in(request, store, settings, email=email, password=password, now=now)
    except user_cases.SignInRefused as refused:
        status = 429 if refused.locked else 401
        return _page("login.html", None, settings, now, status, values=values, errors={"password": str(refused)})
    response = Redirect(values["next"], status_code=303)
    response.set_cookie(session_cookie(request, signed.session_id, settings))
    return response


@post("/logout", include_in_schema=False)
async def logout(request: Request[Any, Any, Any], viewer: ViewerDep, store: StoreDep, now: NowDep) -> Redirect:
    session_id = request.cookies.get("coldchain_session")
    if session_id:
        await user_cases.sign_out(store, session_id, now=now)
    response = Redirect("/login", status_code=303)
    response.set_cookie(end_session_cookie(request))
    return response


async def _board_lines(
    store: Any, viewer: Viewer, settings: Settings, now: datetime, state: str | None, q: str | None
) -> tuple[list[use_cases.BoardLine], BoardState | None]:
    chosen: BoardState | None = state if state in BOARD_STATES else None
    found = await use_cases.board(
        store, viewer.principal, now=now, silent_after=timedelta(seconds=settings.silent_tracker_s)
    )
    return use_cases.filter_board(found.lines, state=chosen, text=q), chosen


@get("/portal", include_in_schema=False)
async def board_page(
    viewer: ViewerDep,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
    state_filter: StateQuery = None,
    q: TextQuery = None,
) -> Template:
    lines, chosen = await _board_lines(store, viewer, settings, now, state_filter, q)
    return _page(
        "board.html", viewer, settings, now, nav="board", lines=lines, state=chosen, q=q or "", states=BOARD_STATES
    )


@get("/portal/board/rows", include_in_schema=False)
async def board_rows(
    viewer: ViewerDep,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
    state_filter: StateQuery = None,
    q: TextQuery = None,
) -> Template:
    """The board's table body alone, for live updates (the same rows the page renders)."""
    lines, _ = await _board_lines(store, viewer, settings, now, state_filter, q)
    return _page("_board_rows.html", viewer, settings, now, lines=lines)


async def _shipment_context(store: Any, viewer: Viewer, shipment_id: int, now: datetime) -> dict[str, Any]:
    principal = viewer.principal
    judgement = await evaluation_cases.shipment_judgement(store, principal, shipment_id)
    eta = await shipment_eta(store, principal, shipment_id, now=now)
    custody = await custody_cases.list_custody(store, principal, shipment_id)
    assignments = await shipment_cases.list_assignments(store, principal, shipment_id)
    names = await use_cases.party_names(store, principal, shipment_id)
    following = principal.user_id is not None and shipment_id in await email_cases.followed_shipments(store, principal)
    async with store.transaction() as tx:
        product = await tx.get_product(judgement.shipment.product_id)
        lot = None if judgement.shipment.lot_id is None else await tx.get_lot(judgement.shipment.lot_id)
    evaluation = judgement.evaluation
    first, last = evaluation.first_reading_at, evaluation.last_reading_at
    span_s = 0.0 if first is None or last is None else (last - first).total_seconds()
    limits = sorted(
        {(rule.direction, rule.threshold) for rule in judgement.profile.rules if rule.metric == "temperature"}
    )
    shipment = judgement.shipment
    return {
        "chart_resolution": max(60, int(span_s // _CHART_POINTS // 60 + 1) * 60),
        "limits": [{"direction": direction, "threshold": threshold} for direction, threshold in limits],
        "chart_excursions": [
            {
                "start": x.excursion.start.timestamp(),
                "end": (x.excursion.end or last or now).timestamp(),
                "rule": x.excursion.rule,
            }
            for x in judgement.excursions
            if x.excursion.metric == "temperature"
        ],
        "chart_alarms": [
            {"at": a.alarm.met_at.timestamp(), "late": a.late, "rule": a.alarm.rule}
            for a in judgement.alarms
            if a.withdrawn_at is None
        ],
        "route": [
            [shipment.origin.lat, shipment.origin.lon],
            *([lat, lon] for lat, lon in shipment.waypoints),
            [shipment.destination.lat, shipment.destination.lon],
        ],
        "judgement": judgement,
        "shipment": judgement.shipment,
        "evaluation": judgement.evaluation,
        "profile": judgement.profile,
        "eta": eta,
        "custody": custody,
        "assignments": assignments,
        "names": names,
        "product": product,
        "lot": lot,
        "following": following,
    }


@get("/portal/shipments/{shipment_id:int}", include_in_schema=False)
async def shipment_page(
    shipment_id: PathId, viewer: ViewerDep, store: StoreDep, settings: SettingsDep, now: NowDep
) -> Template:
    context = await _shipment_context(store, viewer, shipment_id, now)
    return _page("shipment.html", viewer, settings, now, nav="board", errors={}, values={}, **context)


@post("/portal/shipments/{shipment_id:int}/follow", include_in_schema=False)
async def follow_submit(shipment_id: PathId, data: Form, viewer: ViewerDep, store: StoreDep, now: NowDep) -> Redirect:
    """Follow (``follow=1``) or stop following the shipment, then back to its page."""
    if data.get("follow") == "1":
        await email_cases.follow_shipment(store, viewer.principal, shipment_id, now=now)
    else:
        await email_cases.unfollow_shipment(store, viewer.principal, shipment_id, now=now)
    back = "/portal/preferences#followed" if data.get("back") == "preferences" else f"/portal/shipments/{shipment_id}"
    return Redirect(back, status_code=303)


# -- email preferences ----------------------------------------------------------------------------------------------

_KIND_WORDS = {  # in the order a person reads them
    "alarm.raised": "An alarm is raised",
    "alarm.escalated": "An alarm is escalated: nobody acknowledged it in time",
    "alarm.acknowledged": "An alarm is acknowledged",
    "eta.at_risk": "A shipment's arrival is at risk",
    "tracker.silent": "A tracker falls silent",
    "custody.recorded": "A custody event is recorded (packed, picked up, handed over, delivered ...)",
    "decision.needed": "A delivered shipment needs a pharmacist's decision",
    "custody.broken": "A custody chain is found broken",
    "audit.broken": "The audit trail is found broken",
}
_ZONES = sorted(available_timezones())


def _kind_order(kind: str) -> int:
    """The page's order (:data:`_KIND_WORDS`); a kind without words last."""
    order = list(_KIND_WORDS)
    return order.index(kind) if kind in order else len(order)


_PREFERENCE_FIELDS = ("kinds", "shipments", "cadence", "digest_hour", "time_zone", "quiet_start", "quiet_end")


def _wall_clock(form: Mapping[str, str], field: str) -> time | None:
    value = (form.get(field) or "").strip()
    if not value:
        return None
    try:
        return time.fromisoformat(value).replace(second=0, microsecond=0, tzinfo=None)
    except ValueError:
        raise FormError(field, f"{_label(field)}: a time like 22:00") from None


def _preferences_form(form: Mapping[str, str]) -> email_cases.PreferencesChange:
    return email_cases.PreferencesChange(
        kinds=[kind for kind in PREFERENCE_KINDS if form.get(f"kind_{kind}")],
        shipments=_choice(form, "shipments", ("all", "followed")),  # type: ignore[arg-type]
        cadence=_choice(form, "cadence", ("immediate", "digest")),  # type: ignore[arg-type]
        digest_hour=_integer(form, "digest_hour", low=0, high=23) or 0,
        time_zone=_text(form, "time_zone", max_length=64) or "UTC",
        quiet_start=_wall_clock(form, "quiet_start"),
        quiet_end=_wall_clock(form, "quiet_end"),
    )


def _preferences_values(preferences: Any) -> dict[str, str]:
    quiet = preferences.quiet_hours
    values = {
        "shipments": preferences.shipments,
        "cadence": preferences.cadence,
        "digest_hour": str(preferences.digest_hour),
        "time_zone": preferences.time_zone,
        "quiet_start": "" if quiet is None else quiet.start.strftime("%H:%M"),
        "quiet_end": "" if quiet is None else quiet.end.strftime("%H:%M"),
    }
    values.update({f"kind_{kind}": "on" for kind in preferences.kinds})
    return values


async def _preferences_page(
    store: Any,
    viewer: Viewer,
    settings: Settings,
    now: datetime,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    notice: str | None = None,
) -> Template:
    user, preferences, follows = await email_cases.notification_preferences(store, viewer.principal)
    followed = [s for s in await shipment_cases.list_shipments(store, viewer.principal) if s.id in set(follows)]
    recent = await email_cases.my_emails(store, viewer.principal, limit=10)
    return _page(
        "preferences.html",
        viewer,
        settings,
        now,
        status_code,
        nav="preferences",
        user=user,
        preferences=preferences,
        followed=followed,
        recent=recent,
        kinds=[(k, _KIND_WORDS.get(k, k)) for k in sorted(PREFERENCE_KINDS, key=_kind_order)],
        zones=_ZONES,
        hours=range(24),
        email_on=settings.email_enabled,
        errors=errors or {},
        values=values if values is not None else _preferences_values(preferences),
        notice=notice,
    )


@get("/portal/preferences", include_in_schema=False)
async def preferences_page(
    viewer: ViewerDep,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
    saved: Annotated[int | None, QueryParameter(ge=1, le=1)] = None,
) -> Template:
    notice = "Your email preferences are saved." if saved else None
    return await _preferences_page(store, viewer, settings, now, notice=notice)


@post("/portal/preferences", include_in_schema=False)
async def preferences_submit(
    data: Form, viewer: ViewerDep, store: StoreDep, settings: SettingsDep, now: NowDep
) -> Response[Any]:
    values = {k: v for k, v in data.items() if k != CSRF_FIELD}
    try:
        await email_cases.save_preferences(store, viewer.principal, _preferences_form(data), now=now)
    except (ServiceError, FormError) as exc:
        message = str(exc)
        field = exc.field if isinstance(exc, FormError) else _field_of(message, _PREFERENCE_FIELDS)
        errors = {field or "error-summary": message.split(": ", 1)[-1] if field else message}
        return await _preferences_page(
            store, viewer, settings, now, status_code=_refusal(exc), errors=errors, values=values
        )
    return Redirect("/portal/preferences?saved=1", status_code=303)


# -- the escalation chain and the email log --------------------------------------------------------------------------

_STEP_FIELD = re.compile(r"^steps\[(\d+)\]\.(user_id|delay_min): (.*)$", re.DOTALL)
_MAX_ROWS = 2 * MAX_CHAIN_STEPS
"""Rows a submitted form is read for: more than a chain may have, so the service's own limit is what refuses."""
_EMAIL_STATES = {
    "pending": "waiting",
    "waiting_digest": "waiting for the digest",
    "in_digest": "sent in a digest",
    "sent": "sent",
    "failed": "failed",
    "cancelled": "cancelled",
}


def _delay_words(minutes: int) -> str:
    """``90`` as a person says it: ``1 hour 30 minutes``."""
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (mins, "minute")]
    return " ".join(f"{n} {unit}{'s' * (n != 1)}" for n, unit in parts if n) or "0 minutes"


def _attempt_result(attempt: EmailAttempt) -> str:
    """What became of one attempt, in words: the SMTP reply class (RFC 5321 §4.2.1) or why there was none."""
    if attempt.duration_ms is None:
        return "no outcome: the attempt's process stopped while sending"
    code = attempt.reply_code
    if code is None:
        return "failed before the server replied"
    if 200 <= code < 300:
        return "accepted"
    if 400 <= code < 500:
        return "refused for now (tried again)"
    return "refused"


def _own_organisation(viewer: Viewer) -> int:
    organisation = viewer.principal.organisation_id
    if organisation is None:
        raise NotFound("the operator acts for no organisation: read and set chains through the API")
    return organisation


def _chain_rows(form: Mapping[str, str]) -> list[dict[str, str]]:
    """The step rows as entered (person's user id, delay), in the form's order; a row missing from the form ends
    the list."""
    rows = []
    for n in range(1, _MAX_ROWS + 1):
        if f"step-{n}-user" not in form and f"step-{n}-delay" not in form:
            break
        rows.append(
            {
                "user": (form.get(f"step-{n}-user") or "").strip()[:30],
                "delay": (form.get(f"step-{n}-delay") or "").strip()[:30],
            }
        )
    return rows


def _chain_steps(rows: list[dict[str, str]]) -> tuple[list[tuple[int, int]], list[int]]:
    """The steps the rows enter (empty rows left out) and the row number of each, so a refusal of a step can be
    shown beside its row. Only the form's values are read here: what makes a chain right is the service's."""
    steps, numbers = [], []
    for n, row in enumerate(rows, start=1):
        if not row["user"] and not row["delay"]:
            continue
        if not row["user"].isdigit():
            raise FormError(f"step-{n}-user", f"Step {n}: choose a person")
        try:
            delay = int(row["delay"])
        except ValueError:
            raise FormError(f"step-{n}-delay", f"Step {n}: the delay is a whole number of minutes") from None
        steps.append((int(row["user"]), delay))
        numbers.append(n)
    return steps, numbers


def _chain_error(exc: Exception, numbers: list[int]) -> dict[str, str]:
    """Where the service's refusal goes on the page: ``steps[1].delay_min: ...`` beside the delay of its row."""
    if isinstance(exc, FormError):
        return {exc.field: str(exc)}
    message = str(exc)
    found = _STEP_FIELD.match(message)
    if found is None or int(found.group(1)) >= len(numbers):
        return {"steps": message.removeprefix("steps: ").capitalize()}
    row = numbers[int(found.group(1))]
    if found.group(2) == "user_id":
        return {f"step-{row}-user": f"Step {row}, person: {found.group(3)}"}
    return {f"step-{row}-delay": f"Step {row}, delay: {found.group(3)}"}


async def _escalation_page(
    store: Any,
    viewer: Viewer,
    settings: Settings,
    now: datetime,
    *,
    limit: int = 50,
    status_code: int = 200,
    rows: list[dict[str, str]] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
) -> Template:
    organisation = _own_organisation(viewer)
    chain = await escalation_cases.escalation_chain(store, viewer.principal, organisation)
    people = await user_cases.list_users(store, viewer.principal, organisation)
    logged = await email_cases.email_log_told(store, viewer.principal, organisation, limit=limit)
    if rows is None:
        rows = [{"user": str(s.user_id), "delay": str(s.delay_min)} for s in chain.steps] or [{"user": "", "delay": ""}]
    return _page(
        "escalation.html",
        viewer,
        settings,
        now,
        status_code,
        nav="escalation",
        chain=chain,
        people={user.id: user for user in people},
        choices=sorted((user for user in people if user.active), key=lambda user: user.name.lower()),
        rows=rows,
        max_steps=MAX_CHAIN_STEPS,
        max_delay=MAX_CHAIN_DELAY_MIN,
        delay_words=_delay_words,
        emails=[(entry, email_subject(entry.items, entry.delivery.digest_on)) for entry in logged],
        limit=limit,
        states=_EMAIL_STATES,
        attempt_result=_attempt_result,
        kind_words=_KIND_WORDS | {DIRECT_KIND: "An alarm stays unacknowledged: a step of the escalation chain"},
        email_on=settings.email_enabled,
        errors=errors or {},
        notice=notice,
    )


@get("/portal/escalation", include_in_schema=False)
async def escalation_page(
    viewer: ViewerDep,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
    saved: Annotated[int | None, QueryParameter(ge=1, le=1)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
) -> Template:
    """The organisation's escalation chain with the form that replaces it, and its email log (the admin's)."""
    notice = "The escalation chain is saved." if saved else None
    return await _escalation_page(store, viewer, settings, now, limit=limit, notice=notice)


@post("/portal/escalation", include_in_schema=False)
async def escalation_submit(
    data: Form, viewer: ViewerDep, store: StoreDep, settings: SettingsDep, now: NowDep
) -> Response[Any]:
    """Save the chain as entered (``action=save``), or show the form again with one more empty row (``add``) or
    without a row (``remove=N``), nothing saved."""
    rows = _chain_rows(data)
    removed = data.get("remove") or ""
    if removed.isdigit() and 1 <= int(removed) <= len(rows):
        rows.pop(int(removed) - 1)
        return await _escalation_page(store, viewer, settings, now, rows=rows or [{"user": "", "delay": ""}])
    if data.get("action") == "add":
        return await _escalation_page(store, viewer, settings, now, rows=[*rows, {"user": "", "delay": ""}])
    numbers: list[int] = []
    try:
        steps, numbers = _chain_steps(rows)
        await escalation_cases.save_escalation_chain(store, viewer.principal, _own_organisation(viewer), steps, now=now)
    except (Invalid, FormError) as exc:
        return await _escalation_page(
            store, viewer, settings, now, status_code=422, rows=rows, errors=_chain_error(exc, numbers)
        )
    return Redirect("/portal/escalation?saved=1", status_code=303)


@post("/portal/shipments/{shipment_id:int}/alarms/{alarm_id:int}/acknowledge", include_in_schema=False)
async def acknowledge(
    shipment_id: PathId,
    alarm_id: PathId,
    data: Form,
    viewer: ViewerDep,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response[Any]:
    back = "inbox" if data.get("back") == "inbox" else "shipment"
    comment = (data.get("comment") or "").strip()
    try:
        if not comment:
            raise FormError("comment", "comment: say what was done about the alarm")
        await alarm_cases.acknowledge_alarm(store, viewer.principal, shipment_id, alarm_id, comment=comment, now=now)
    except (ServiceError, FormError) as exc:
        errors = {f"alarm-{alarm_id}": str(exc).removeprefix("comment: ")}
        values = {f"alarm-{alarm_id}": comment}
        if back == "inbox":
            found = await use_cases.alarm_inbox(store, viewer.principal, limit=200)
            return _page(
                "inbox.html",
                viewer,
                settings,
                now,
                _refusal(exc),
                nav="inbox",
                alarms=found,
                errors=errors,
                values=values,
            )
        context = await _shipment_context(store, viewer, shipment_id, now)
        return _page(
            "shipment.html", viewer, settings, now, _refusal(exc), nav="board", errors=errors, values=values, **context
        )
    target = "/portal/alarms" if back == "inbox" else f"/portal/shipments/{shipment_id}#alarms"
    return Redirect(target, status_code=303)


@get("/portal/alarms", include_in_schema=False)
async def inbox_page(viewer: ViewerDep, store: StoreDep, settings: SettingsDep, now: NowDep) -> Template:
    found = await use_cases.alarm_inbox(store, viewer.principal, limit=200)
    return _page("inbox.html", viewer, settings, now, nav="inbox", alarms=found, errors={}, values={})


# -- worklist, investigation and decisions --------------------------------------------------------------------------

_WAITING_WORDS = {
    "undecided": "no decision yet",
    "evaluation_changed": "evaluation changed after signing",
    "awaiting_approval": "awaiting QA approval",
    "excursions": "excursions",
    "quarantine_recommended": "quarantine or reject recommended",
    "faults": "gaps, faults or quarantined readings",
}


@get("/portal/worklist", include_in_schema=False)
async def worklist_page(viewer: ViewerDep, store: StoreDep, settings: SettingsDep, now: NowDep) -> Template:
    items = await decision_cases.worklist(store, viewer.principal)
    return _page("worklist.html", viewer, settings, now, nav="worklist", items=items, waiting_words=_WAITING_WORDS)


async def _investigation_page(
    store: Any,
    viewer: Viewer,
    settings: Settings,
    shipment_id: int,
    now: datetime,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    notice: str | None = None,
) -> Template:
    found = await decision_cases.investigation(store, viewer.principal, shipment_id, now=now)
    principal = viewer.principal
    return _page(
        "investigation.html",
        viewer,
        settings,
        now,
        status_code,
        nav="worklist",
        inv=found,
        report_body=report_body(found),
        may_sign=principal.role == "pharmacist" and principal.user_id is not None,
        decidable=found.identification.status in DECIDABLE_STATUSES,
        meanings=MEANINGS,
        waiting_words=_WAITING_WORDS,
        errors=errors or {},
        values=values or {},
        notice=notice,
    )


@get("/portal/shipments/{shipment_id:int}/investigation", include_in_schema=False)
async def investigation_page(
    shipment_id: PathId,
    viewer: ViewerDep,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
    signed: Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)] = None,
) -> Template:
    notice = None if signed is None else f"Decision {signed} is signed and recorded."
    return await _investigation_page(store, viewer, settings, shipment_id, now, notice=notice)


@get("/static/report/report.css", include_in_schema=False)
async def report_css() -> Response[bytes]:
    """The report's stylesheet, which the investigation page shares with the PDF."""
    return Response(STYLESHEET.read_bytes(), media_type="text/css; charset=utf-8")


@get("/portal/shipments/{shipment_id:int}/report.pdf", include_in_schema=False)
async def report_pdf_page(shipment_id: PathId, viewer: ViewerDep, store: StoreDep, now: NowDep) -> Response[bytes]:
    found = await decision_cases.investigation(store, viewer.principal, shipment_id, now=now)
    return pdf_response(await asyncio.to_thread(report_pdf, found), found)


def _signing_error(exc: Exception, prefix: str) -> dict[str, str]:
    """Where a refused signature's message goes on the page: beside the field it names."""
    message = str(exc)
    if "reason" in message.split(":", 1)[0]:
        return {"reason": message.removeprefix("reason: ")}
    if "password" in message or "too many" in message:
        return {f"{prefix}-password": message}
    if "email" in message:
        return {f"{prefix}-email": message}
    return {"message": message, "field": "error-summary"}


@post("/portal/shipments/{shipment_id:int}/decisions", include_in_schema=False)
async def decide_submit(
    request: Request[Any, Any, Any],
    shipment_id: PathId,
    data: Form,
    viewer: ViewerDep,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response[Any]:
    values = {key: data.get(key, "") for key in ("outcome", "reason", "comment", "email")}
    try:
        outcome = _choice(data, "outcome", ("release", "quarantine", "reject"))
        view = await decision_cases.decide(
            store,
            viewer.principal,
            shipment_id,
            outcome=outcome,  # type: ignore[arg-type]
            snapshot_sha256=(data.get("snapshot_sha256") or "")[:64],
            reason=_text(data, "reason", required=False, max_length=decision_cases.MAX_TEXT_CHARS),
            comment=_text(data, "comment", required=False, max_length=decision_cases.MAX_TEXT_CHARS),
            email=_text(data, "email", required=False, max_length=254),
            password=(data.get("password") or "")[:256],
            client=client_address(request),
            limits=login_limits(settings),
            now=now,
        )
    except FormError as exc:
        return await _investigation_page(
            store, viewer, settings, shipment_id, now, status_code=422, errors={exc.field: str(exc)}, values=values
        )
    except ServiceError as exc:
        return await _investigation_page(
            store,
            viewer,
            settings,
            shipment_id,
            now,
            status_code=_refusal(exc),
            errors=_signing_error(exc, "decide"),
            values=values,
        )
    return Redirect(
        f"/portal/shipments/{shipment_id}/investigation?signed={view.decision.seq}#decisions", status_code=303
    )


@post("/portal/shipments/{shipment_id:int}/decisions/{decision_id:int}/approval", include_in_schema=False)
async def approve_submit(
    request: Request[Any, Any, Any],
    shipment_id: PathId,
    decision_id: PathId,
    data: Form,
    viewer: ViewerDep,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response[Any]:
    prefix = f"approve-{decision_id}"
    try:
        view = await decision_cases.approve_decision(
            store,
            viewer.principal,
            shipment_id,
            decision_id,
            email=_text(data, "email", required=False, max_length=254),
            password=(data.get("password") or "")[:256],
            client=client_address(request),
            limits=login_limits(settings),
            now=now,
        )
    except (ServiceError, FormError) as exc:
        return await _investigation_page(
            store,
            viewer,
            settings,
            shipment_id,
            now,
            status_code=_refusal(exc),
            errors=_signing_error(exc, prefix),
            values={"email": data.get("email", "")},
        )
    return Redirect(
        f"/portal/shipments/{shipment_id}/investigation?signed={view.decision.seq}#decisions", status_code=303
    )


# -- the audit trail -------------------------------------------------------------------------------------------------


@get("/portal/audit", include_in_schema=False)
async def audit_page(
    request: Request[Any, Any, Any], viewer: ViewerDep, store: StoreDep, settings: SettingsDep, now: NowDep
) -> Template:
    """The audit trail as the caller's organisation may read it (admins and auditors), filtered, with the chain's
    verdict and the exports of what is shown."""
    query = {key: value.strip() for key, value in request.query_params.items() if isinstance(value, str)}
    values = {key: query.get(key, "") for key in ("shipment", "actor", "since", "until")}
    errors: dict[str, str] = {}
    where = AuditFilter()
    after = 0
    try:
        shipment = _integer(query, "shipment", required=False)
        since, until = _moment(query, "since"), _moment(query, "until")
        actor = _text(query, "actor", required=False)
        after = _integer(query, "after", required=False, low=0) or 0
        where = AuditFilter(shipment_id=shipment, actor=actor, since=since, until=until)
        page = await audit_cases.audit_page(store, viewer.principal, where, after=after, limit=100)
    except FormError as exc:
        errors = {exc.field: str(exc)}
        page = await audit_cases.audit_page(store, viewer.principal, AuditFilter(), after=0, limit=100)
    verdict = await audit_cases.verify_audit(store, viewer.principal)
    kept = urlencode({key: value for key, value in values.items() if value and not errors})
    return _page(
        "audit.html",
        viewer,
        settings,
        now,
        422 if errors else 200,
        nav="audit",
        page=page,
        verdict=verdict,
        values=values,
        errors=errors,
        export_url=f"/v1/audit/export?{kept}",
        next_url=f"/portal/audit?{kept}&after={page.next}",
    )


# -- set-up -------------------------------------------------------------------------------------------------------


async def _setup_context(store: Any, viewer: Viewer) -> dict[str, Any]:
    principal = viewer.principal
    products = await product_cases.list_products(store, principal)
    lots = {product.id: await product_cases.list_lots(store, principal, product.id) for product in products}
    profiles = await product_cases.list_profiles(store)
    trackers = await tracker_cases.sync_overview(store, principal)
    shipments = await shipment_cases.list_shipments(store, principal)
    own = [s for s in shipments if principal.acts_for(s.organisation_id)]
    webhooks = await webhook_cases.list_webhooks(store, principal, None) if viewer.may("manage") else []
    manages = viewer.may("manage") and principal.organisation_id is not None
    users = await user_cases.list_users(store, principal, principal.organisation_id or 0) if manages else []
    tokens = await access_cases.list_tokens(store, principal, principal.organisation_id or 0) if manages else []
    return {
        "products": products,
        "lots": lots,
        "profiles": profiles,
        "trackers": trackers,
        "shipments": own,
        "webhooks": webhooks,
        "users": users,
        "tokens": tokens,
        "roles": ROLES,
        "kinds": NOTIFICATION_KINDS,
        "statuses": _SHIPMENT_STATUSES,
    }


@get("/portal/setup", include_in_schema=False)
async def setup_page(viewer: ViewerDep, store: StoreDep, settings: SettingsDep, now: NowDep) -> Template:
    context = await _setup_context(store, viewer)
    return _page("setup.html", viewer, settings, now, nav="setup", errors={}, values={}, form="", **context)


SetupAction = Callable[[Mapping[str, str], Viewer, Any, datetime], Any]


async def _setup_submit(
    form_name: str,
    fields: tuple[str, ...],
    action: SetupAction,
    data: Mapping[str, str],
    viewer: Viewer,
    store: Any,
    settings: Settings,
    now: datetime,
) -> Response[Any]:
    """Run one set-up form: on success back to its section (or the page with what it shows once); refused, the
    page again with the error summary, the message beside the field and the entered values."""
    try:
        shown = await action(data, viewer, store, now)
    except (ServiceError, AlreadyExists, FormError) as exc:
        message = str(exc)
        field = exc.field if isinstance(exc, FormError) else _field_of(message, fields)
        context = await _setup_context(store, viewer)
        values = {k: v for k, v in data.items() if k not in {"password", CSRF_FIELD}}
        return _page(
            "setup.html",
            viewer,
            settings,
            now,
            _refusal(exc),
            nav="setup",
            errors={"message": message, "field": field},
            values=values,
            form=form_name,
            **context,
        )
    if shown:
        context = await _setup_context(store, viewer)
        return _page(
            "setup.html", viewer, settings, now, 201, nav="setup", errors={}, values={}, form="", **shown, **context
        )
    return Redirect(f"/portal/setup#{form_name}", status_code=303)


async def _new_product(form: Mapping[str, str], viewer: Viewer, store: Any, now: datetime) -> None:
    await product_cases.create_product(
        store,
        viewer.principal,
        organisation_id=None,
        name=_text(form, "name") or "",
        gtin=_text(form, "gtin", required=False, max_length=14),
        profile_id=_text(form, "profile_id", required=False),
        now=now,
    )


async def _new_lot(form: Mapping[str, str], viewer: Viewer, store: Any, now: datetime) -> None:
    expires = _text(form, "expires_on", required=False, max_length=10)
    try:
        expires_on = None if expires is None else date.fromisoformat(expires)
    except ValueError:
        raise FormError("expires_on", "expires on: a date like 2027-06-30") from None
    await product_cases.create_lot(
        store,
        viewer.principal,
        product_id=_integer(form, "product_id") or 0,
        lot_number=_text(form, "lot_number", max_length=64) or "",
        expires_on=expires_on,
        now=now,
    )


_SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


async def _new_tracker(form: Mapping[str, str], viewer: Viewer, store: Any, now: datetime) -> dict[str, Any]:
    serial = _text(form, "serial", max_length=64) or ""
    if not _SERIAL.match(serial):
        raise FormError("serial", "serial: letters, digits and . _ : - only, starting with a letter or digit")
    tracker, secret = await tracker_cases.register_tracker(
        store,
        viewer.principal,
        serial=serial,
        model=_text(form, "model", required=False),
        organisation_id=None,
        now=now,
    )
    return {"new_tracker": tracker, "new_secret": secret}


async def _new_shipment(form: Mapping[str, str], viewer: Viewer, store: Any, now: datetime) -> None:
    draft = shipment_cases.ShipmentDraft(
        reference=_text(form, "reference", max_length=64) or "",
        product_id=_integer(form, "product_id") or 0,
        lot_id=_integer(form, "lot_id", required=False),
        quantity=_integer(form, "quantity", high=10_000_000) or 0,
        origin=Place(
            name=_text(form, "origin_name") or "",
            lat=_decimal(form, "origin_lat", -90, 90),
            lon=_decimal(form, "origin_lon", -180, 180),
        ),
        destination=Place(
            name=_text(form, "destination_name") or "",
            lat=_decimal(form, "destination_lat", -90, 90),
            lon=_decimal(form, "destination_lon", -180, 180),
        ),
        waypoints=_waypoints(form),
        legs=_legs(form),
        receiver_id=_integer(form, "receiver_id", required=False),
        promised_at=_moment(form, "promised_at"),
        priority=_choice(form, "priority", ("standard", "urgent")),  # type: ignore[arg-type]
        geofence_m=500.0,
    )
    await shipment_cases.create_shipment(store, viewer.principal, draft, organisation_id=None, now=now)


async def _assign(form: Mapping[str, str], viewer: Viewer, store: Any, now: datetime) -> None:
    await shipment_cases.assign_tracker(
        store,
        viewer.principal,
        _integer(form, "shipment_id") or 0,
        serial=_text(form, "serial", max_length=64) or "",
        starts_at=_moment(form, "starts_at") or now,
        ends_at=None,
        now=now,
    )


async def _move(form: Mapping[str, str], viewer: Viewer, store: Any, now: datetime) -> None:
    status = _choice(form, "status", _SHIPMENT_STATUSES)
    await shipment_cases.change_status(
        store,
        viewer.principal,
        _integer(form, "shipment_id") or 0,
        status,  # type: ignore[arg-type]  # one of _SHIPMENT_STATUSES, checked by _choice
        now=now,
    )


async def _new_webhook(form: Mapping[str, str], viewer: Viewer, store: Any, now: datetime) -> dict[str, Any]:
    kinds = [kind for kind in NOTIFICATION_KINDS if form.get(f"kind_{kind}")]
    webhook, secret = await webhook_cases.create_webhook(
        store,
        viewer.principal,
        organisation_id=None,
        url=_text(form, "url", max_length=2000) or "",
        kinds=kinds,
        now=now,
    )
    return {"new_webhook": webhook, "new_webhook_secret": secret}


async def _new_user(form: Mapping[str, str], viewer: Viewer, store: Any, now: datetime) -> None:
    organisation = viewer.principal.organisation_id
    if organisation is None:
        raise FormError("email", "the operator adds users through the API or `coldchain user add`")
    await user_cases.create_user(
        store,
        viewer.principal,
        organisation_id=organisation,
        role=_choice(form, "role", ROLES),  # type: ignore[arg-type]
        name=_text(form, "name") or "",
        email=_text(form, "email", max_length=254) or "",
        password=form.get("password") or "",
        now=now,
    )


async def _user_change(form: Mapping[str, str], viewer: Viewer, store: Any, now: datetime) -> None:
    organisation = viewer.principal.organisation_id or 0
    user_id = _integer(form, "user_id") or 0
    change = _choice(form, "change", ("disable", "enable", "password"))
    if change == "disable":
        await user_cases.disable_user(store, viewer.principal, organisation_id=organisation, user_id=user_id, now=now)
    elif change == "enable":
        await user_cases.enable_user(store, viewer.principal, organisation_id=organisation, user_id=user_id, now=now)
    else:
        await user_cases.reset_password(
            store,
            viewer.principal,
            organisation_id=organisation,
            user_id=user_id,
            password=form.get("password") or "",
            now=now,
        )


async def _new_token(form: Mapping[str, str], viewer: Viewer, store: Any, now: datetime) -> dict[str, Any]:
    organisation = viewer.principal.organisation_id
    if organisation is None:
        raise FormError("token_name", "the operator issues tokens through the API")
    token, text = await access_cases.issue_token(
        store,
        viewer.principal,
        organisation_id=organisation,
        role=_choice(form, "role", ROLES),  # type: ignore[arg-type]
        name=_text(form, "token_name") or "",
        now=now,
    )
    return {"new_token": token, "new_token_text": text}


async def _revoke_token(form: Mapping[str, str], viewer: Viewer, store: Any, now: datetime) -> None:
    await access_cases.revoke_token(
        store,
        viewer.principal,
        organisation_id=viewer.principal.organisation_id or 0,
        token_id=_integer(form, "token_id") or 0,
        now=now,
    )


_FORMS: dict[str, tuple[tuple[str, ...], SetupAction]] = {
    "products": (("name", "gtin", "profile_id"), _new_product),
    "lots": (("product_id", "lot_number", "expires_on", "product"), _new_lot),
    "trackers": (("serial", "model"), _new_tracker),
    "shipments": (
        (
            "reference",
            "product_id",
            "lot_id",
            "quantity",
            "origin_name",
            "origin_lat",
            "origin_lon",
            "destination_name",
            "destination_lat",
            "destination_lon",
            "waypoints",
            "legs",
            "receiver_id",
            "promised_at",
            "priority",
            "product",
            "lot",
            "reference",
        ),
        _new_shipment,
    ),
    "assign": (("serial", "starts_at", "tracker"), _assign),
    "status": (("status",), _move),
    "webhooks": (("url", "kinds"), _new_webhook),
    "users": (("name", "email", "password", "role"), _new_user),
    "user": (("password",), _user_change),
    "tokens": (("token_name", "role"), _new_token),
    "token": (("token_id",), _revoke_token),
}


@post("/portal/setup/{form_name:str}", include_in_schema=False)
async def setup_submit(
    form_name: Annotated[str, PathParameter(max_length=20)],
    data: Form,
    viewer: ViewerDep,
    store: StoreDep,
    settings: SettingsDep,
    now: NowDep,
) -> Response[Any]:
    if form_name not in _FORMS:
        raise ApiError(404, "not_found", f"no set-up form {form_name!r}")
    fields, action = _FORMS[form_name]
    return await _setup_submit(form_name, fields, action, data, viewer, store, settings, now)


def _content_security_policy(settings: Settings) -> str:
    images = "'self' data:"
    if settings.map_tiles_url:
        # A template's {s} subdomain (a., b., c.) becomes a wildcard: the tile server's hosts and no other.
        parts = urlsplit(settings.map_tiles_url.replace("{s}.", "*."))
        images += f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src {images}; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def portal_routes(settings: Settings) -> list[ControllerRouterHandler]:
    """The portal's pages (one router, with the CSP header and the sign-in redirect) and its static files."""
    pages = Router(
        path="/",
        route_handlers=[
            home,
            login_page,
            login_submit,
            logout,
            board_page,
            board_rows,
            shipment_page,
            follow_submit,
            preferences_page,
            preferences_submit,
            escalation_page,
            escalation_submit,
            acknowledge,
            inbox_page,
            worklist_page,
            audit_page,
            investigation_page,
            report_pdf_page,
            report_css,
            decide_submit,
            approve_submit,
            setup_page,
            setup_submit,
        ],
        dependencies={"viewer": Provide(provide_viewer)},
        # Pages read their own query (the page to return to after sign-in, the board's filters) and, as web pages
        # do, ignore what they do not use; the API refuses unknown query parameters.
        opt={"raw_query": True},
        exception_handlers={
            SignInNeeded: _to_sign_in,
            ServiceError: _error_page,
            AlreadyExists: _error_page,
            HTTPException: _error_page,
        },
        response_headers=[
            ResponseHeader(name="Content-Security-Policy", value=_content_security_policy(settings)),
            ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
            ResponseHeader(name="Referrer-Policy", value="same-origin"),
            ResponseHeader(name="Cache-Control", value="no-store"),
        ],
        include_in_schema=False,
    )
    return [
        pages,
        create_static_files_router(path="/static/portal", directories=[STATIC], include_in_schema=False),
        create_static_files_router(path="/static/vendor", directories=[VENDOR], include_in_schema=False),
    ]
