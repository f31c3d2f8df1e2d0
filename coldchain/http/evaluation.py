"""A shipment's judgement: status, excursions, alarms (and their acknowledgement), logger files as evidence.

Every route is shipment-scoped: a caller that takes no part in the shipment gets 404, as for a shipment that does
not exist. ``POST .../logger-files`` takes the export's bytes as the raw body (any content type but multipart) or
as the one file of a ``multipart/form-data`` body; a malformed export is refused whole with 422 and the line
number of the problem in ``detail``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.openapi import ResponseSpec
from litestar.params import FromQuery, JSONBody, QueryParameter
from msgspec import Meta

from coldchain.domain.disposition import Disposition, DispositionReason, Recommendation
from coldchain.domain.evaluation import Evaluation, MktBasis, MktResult, MktVerdict
from coldchain.domain.excursions import FaultReason
from coldchain.domain.findings import StoredAlarm, StoredExcursion
from coldchain.domain.logger_files import DayLimit, LoggerDay
from coldchain.domain.profiles import Action, Direction, Metric, MktWindow, Mode, Profile, Scope
from coldchain.domain.quarantine import QuarantineFault
from coldchain.domain.readings import Reading
from coldchain.domain.rules import RuleStatus
from coldchain.domain.shipments import ShipmentStatus
from coldchain.http.deps import NowDep, PrincipalDep, StoreDep
from coldchain.http.errors import ApiError
from coldchain.http.openapi import BEARER, BUSY, errors
from coldchain.http.wire import BodyIn, PathId
from coldchain.services import alarms as alarm_cases
from coldchain.services import evaluation as use_cases
from coldchain.services import loggers

__all__ = [
    "AlarmOut",
    "EvaluationApi",
    "ExcursionOut",
    "ShipmentStatusOut",
    "alarm_out",
    "excursion_out",
    "shipment_status",
    "status_parts_out",
]

UtcOffsetQuery = Annotated[
    int,
    QueryParameter(
        ge=-loggers.MAX_UTC_OFFSET_MIN,
        le=loggers.MAX_UTC_OFFSET_MIN,
        description="the logger's UTC offset in minutes, for exports that state local times without one",
    ),
]
FileNameQuery = Annotated[str | None, QueryParameter(min_length=1, max_length=255)]
Comment = Annotated[str, Meta(min_length=1, max_length=alarm_cases.MAX_COMMENT_CHARS)]


class AcknowledgeIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    comment: Comment
    """What was done about the alarm (required: an acknowledgement without a reason proves nothing)."""


class RuleOut(msgspec.Struct, frozen=True, kw_only=True):
    rule: str
    metric: Metric
    direction: Direction
    threshold: float
    mode: Mode
    scope: Scope
    delay_min: float
    action: Action
    status: RuleStatus
    since: datetime | None
    beyond_now: bool
    beyond_min: float
    longest_min: float
    degree_min: float
    excursions: int
    alarms: int
    allowance_left_min: float | None
    """Cumulative rules: minutes beyond the threshold still allowed before the alarm (lifetime: for the lot)."""


class BudgetOut(msgspec.Struct, frozen=True, kw_only=True):
    rule: str
    allowed_min: float
    spent_before_min: float
    """What the lot's other shipments (and earlier life) had spent by this shipment's last reading (device time)."""
    spent_in_shipment_min: float
    consumed_min: float
    """What the lot had spent by this shipment's last reading, this shipment included."""
    remaining_min: float
    overrun_min: float
    exhausted: bool
    """The lot's budget was spent by this shipment's last reading."""
    lot_spent_min: float
    """The lot's total now, later shipments included."""
    lot_exhausted_at: datetime | None
    """Device time the lot's budget ran out (on whichever shipment crossed it), if it did."""


class MktOut(msgspec.Struct, frozen=True, kw_only=True):
    activation_energy_kj_mol: float
    window: MktWindow
    limit_c: float | None
    shipment_mkt_c: float | None
    window_mkt_c: float | None
    window_start: datetime | None
    window_end: datetime | None
    window_complete: bool
    """The data covers the window to within one logging interval."""
    credited_min: float
    passes: bool | None
    """True for a pass, false for a fail, null for a review or without a limit."""
    window_min: float | None
    covered_min: float
    """Minutes of the window the verdict rests on that readings cover."""
    coverage: float | None
    """``covered_min`` as a fraction of the window."""
    best_case_mkt_c: float | None
    """Incomplete window: the window's MKT with the unrecorded time at the label range's lower end."""
    worst_case_mkt_c: float | None
    """Incomplete window: the window's MKT with the unrecorded time at the label range's upper end."""
    verdict: MktVerdict | None
    rests_on: MktBasis | None
    """What the verdict rests on: a complete window, the bounds of an incomplete one, the data covered, or the
    whole shipment."""


class ExcursionOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    rule: str
    metric: Metric
    direction: Direction
    threshold: float
    start: datetime
    end: datetime | None
    open: bool
    duration_min: float
    uncredited_min: float
    peak: float
    degree_min: float
    custodian_id: int | None
    """The organisation holding the shipment when the excursion began."""
    detected_at: datetime
    withdrawn_at: datetime | None


class AlarmOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    rule: str
    action: Action
    metric: Metric
    direction: Direction
    threshold: float
    mode: Mode
    scope: Scope
    delay_min: float
    began_at: datetime
    """Device time the condition began."""
    met_at: datetime
    """Device time the condition was met."""
    detected_at: datetime
    """Service time the alarm was first raised."""
    late: bool
    """Detected long after ``met_at`` (buffered data): an account of the past, not a live alarm."""
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    comment: str | None
    escalated_at: datetime | None
    withdrawn_at: datetime | None


class GapOut(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    end: datetime
    duration_min: float


class FaultOut(msgspec.Struct, frozen=True, kw_only=True):
    metric: Metric
    reason: FaultReason
    start: datetime
    end: datetime | None
    readings: int
    first_value: float | None


class QuarantineFaultOut(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    """The quarantine reason without its value, e.g. ``temperature_c not a number``."""
    first_at: datetime
    last_at: datetime
    readings: int


class QuarantinedReadingOut(msgspec.Struct, frozen=True, kw_only=True):
    tracker_id: int
    seq: int
    device_time: datetime
    received_at: datetime
    reason: str
    """Why the reading was refused at ingest (it names the value; JSON has no NaN, so such values show as null)."""
    reading: Reading
    """The values as stored."""


class QuarantinedPageOut(msgspec.Struct, frozen=True, kw_only=True):
    items: list[QuarantinedReadingOut]
    next: str | None
    """Pass as ``after`` for the next page; null on the last."""


class DispositionOut(msgspec.Struct, frozen=True, kw_only=True):
    recommendation: Recommendation
    reasons: list[DispositionReason]


class ShipmentStatusOut(msgspec.Struct, frozen=True, kw_only=True):
    shipment_id: int
    reference: str
    status: ShipmentStatus
    profile_id: str
    profile_version: int
    streams: int
    """Tracker assignments with readings judged."""
    readings: int
    first_reading_at: datetime | None
    last_reading_at: datetime | None
    temperature_min_c: float | None
    temperature_max_c: float | None
    temperature_mean_c: float | None
    rules: list[RuleOut]
    budgets: list[BudgetOut]
    mkt: MktOut
    excursions: list[ExcursionOut]
    alarms: list[AlarmOut]
    gaps: list[GapOut]
    faults: list[FaultOut]
    quarantined: list[QuarantineFaultOut]
    """Readings of the shipment's trackers quarantined at ingest (sensor faults), by kind."""
    disposition: DispositionOut


class DayLimitOut(msgspec.Struct, frozen=True, kw_only=True):
    limit: str
    direction: Direction
    threshold_c: float
    delay_min: float
    minutes: float
    alarm_met_at: datetime | None


class LoggerDayOut(msgspec.Struct, frozen=True, kw_only=True):
    day: date
    min_c: float | None
    min_at: datetime | None
    max_c: float | None
    max_at: datetime | None
    mean_c: float | None
    beyond: list[DayLimitOut]
    events: int | None
    sensor_timeout_min: int | None


class LoggerFileOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    shipment_id: int
    vendor: str
    model: str
    serial: str
    file_name: str | None
    file_sha256: str
    utc_offset_min: int
    readings: int
    first_reading_at: datetime | None
    last_reading_at: datetime | None
    tracker_serial: str | None
    """The logger as a tracker, when the file had readings."""
    imported_by: str
    imported_at: datetime


class LoggerImportOut(msgspec.Struct, frozen=True, kw_only=True):
    file: LoggerFileOut
    new: bool
    """Whether this request stored the file (false: the shipment already held these exact bytes)."""
    readings_new: int
    days: list[LoggerDayOut]


# -- mapping -----------------------------------------------------------------------------------------------


def excursion_out(stored: StoredExcursion) -> ExcursionOut:
    excursion = stored.excursion
    return ExcursionOut(
        id=stored.id,
        rule=excursion.rule,
        metric=excursion.metric,
        direction=excursion.direction,
        threshold=excursion.threshold,
        start=excursion.start,
        end=excursion.end,
        open=excursion.end is None,
        duration_min=excursion.duration_min,
        uncredited_min=excursion.uncredited_min,
        peak=excursion.peak,
        degree_min=excursion.degree_min,
        custodian_id=stored.custodian_id,
        detected_at=stored.detected_at,
        withdrawn_at=stored.withdrawn_at,
    )


def alarm_out(stored: StoredAlarm) -> AlarmOut:
    alarm = stored.alarm
    return AlarmOut(
        id=stored.id,
        rule=alarm.rule,
        action=alarm.action,
        metric=alarm.metric,
        direction=alarm.direction,
        threshold=alarm.threshold,
        mode=alarm.mode,
        scope=alarm.scope,
        delay_min=alarm.delay_min,
        began_at=alarm.began_at,
        met_at=alarm.met_at,
        detected_at=stored.detected_at,
        late=stored.late,
        acknowledged_at=stored.acknowledged_at,
        acknowledged_by=stored.acknowledged_by,
        comment=stored.acknowledgement,
        escalated_at=stored.escalated_at,
        withdrawn_at=stored.withdrawn_at,
    )


def _rules_out(profile: Profile, evaluation: Evaluation, allowances: dict[str, float | None]) -> list[RuleOut]:
    rules = []
    for rule, summary in zip(profile.rules, evaluation.rules, strict=True):
        rules.append(
            RuleOut(
                rule=rule.name,
                metric=rule.metric,
                direction=rule.direction,
                threshold=rule.threshold,
                mode=rule.mode,
                scope=rule.scope,
                delay_min=rule.delay_min,
                action=rule.action,
                status=summary.status,
                since=summary.since,
                beyond_now=summary.beyond_now,
                beyond_min=summary.beyond_min,
                longest_min=summary.longest_min,
                degree_min=summary.degree_min,
                excursions=summary.excursions,
                alarms=summary.alarms,
                allowance_left_min=allowances[rule.name],
            )
        )
    return rules


def _mkt_out(mkt: MktResult) -> MktOut:
    return msgspec.convert(msgspec.structs.asdict(mkt), MktOut)


def _status_out(judgement: use_cases.ShipmentJudgement) -> ShipmentStatusOut:
    shipment = judgement.shipment
    return status_parts_out(
        shipment_id=shipment.id,
        reference=shipment.reference,
        status=shipment.status,
        profile=judgement.profile,
        streams=judgement.streams,
        evaluation=judgement.evaluation,
        allowances=judgement.allowances,
        quarantined=judgement.quarantined,
        excursions=judgement.excursions,
        alarms=judgement.alarms,
        disposition=judgement.disposition,
    )


def status_parts_out(
    *,
    shipment_id: int,
    reference: str,
    status: ShipmentStatus,
    profile: Profile,
    streams: int,
    evaluation: Evaluation,
    allowances: dict[str, float | None],
    quarantined: Sequence[QuarantineFault],
    excursions: Sequence[StoredExcursion],
    alarms: Sequence[StoredAlarm],
    disposition: Disposition,
) -> ShipmentStatusOut:
    """The shipment's judgement on the wire, from its parts (the status route's, the investigation's)."""
    return ShipmentStatusOut(
        shipment_id=shipment_id,
        reference=reference,
        status=status,
        profile_id=evaluation.profile_id,
        profile_version=evaluation.profile_version,
        streams=streams,
        readings=evaluation.readings,
        first_reading_at=evaluation.first_reading_at,
        last_reading_at=evaluation.last_reading_at,
        temperature_min_c=evaluation.temperature_min_c,
        temperature_max_c=evaluation.temperature_max_c,
        temperature_mean_c=evaluation.temperature_mean_c,
        rules=_rules_out(profile, evaluation, allowances),
        budgets=[
            BudgetOut(
                rule=budget.rule,
                allowed_min=budget.allowed_min,
                spent_before_min=budget.spent_before_min,
                spent_in_shipment_min=budget.spent_in_shipment_min,
                consumed_min=budget.consumed_min,
                remaining_min=budget.remaining_min,
                overrun_min=budget.overrun_min,
                exhausted=budget.exhausted,
                lot_spent_min=budget.lot_spent_min,
                lot_exhausted_at=budget.lot_exhausted_at,
            )
            for budget in evaluation.budgets
        ],
        mkt=_mkt_out(evaluation.mkt),
        excursions=[excursion_out(stored) for stored in excursions],
        alarms=[alarm_out(stored) for stored in alarms],
        gaps=[GapOut(start=gap.start, end=gap.end, duration_min=gap.duration_min) for gap in evaluation.gaps],
        faults=[
            FaultOut(
                metric=fault.metric,
                reason=fault.reason,
                start=fault.start,
                end=fault.end,
                readings=fault.readings,
                first_value=fault.first_value,
            )
            for fault in evaluation.faults
        ],
        quarantined=[
            QuarantineFaultOut(kind=f.kind, first_at=f.first_at, last_at=f.last_at, readings=f.readings)
            for f in quarantined
        ],
        disposition=DispositionOut(recommendation=disposition.recommendation, reasons=disposition.reasons),
    )


def _day_out(day: LoggerDay) -> LoggerDayOut:
    return LoggerDayOut(
        day=day.day,
        min_c=day.min_c,
        min_at=day.min_at,
        max_c=day.max_c,
        max_at=day.max_at,
        mean_c=day.mean_c,
        beyond=[_limit_out(limit) for limit in day.beyond],
        events=day.events,
        sensor_timeout_min=day.sensor_timeout_min,
    )


def _limit_out(limit: DayLimit) -> DayLimitOut:
    return DayLimitOut(
        limit=limit.limit,
        direction=limit.direction,
        threshold_c=limit.threshold_c,
        delay_min=limit.delay_min,
        minutes=limit.minutes,
        alarm_met_at=limit.alarm_met_at,
    )


def _import_out(result: loggers.LoggerImport) -> LoggerImportOut:
    held = result.logger_file
    return LoggerImportOut(
        file=LoggerFileOut(
            id=held.id,
            shipment_id=held.shipment_id,
            vendor=held.vendor,
            model=held.model,
            serial=held.serial,
            file_name=held.file_name,
            file_sha256=held.file_sha256,
            utc_offset_min=held.utc_offset_min,
            readings=held.readings,
            first_reading_at=held.first_reading_at,
            last_reading_at=held.last_reading_at,
            tracker_serial=result.tracker_serial,
            imported_by=held.imported_by,
            imported_at=held.imported_at,
        ),
        new=result.new,
        readings_new=result.readings_new,
        days=[_day_out(day) for day in result.days],
    )


async def _uploaded(request: Request[Any, Any, Any]) -> tuple[bytes, str | None]:
    """The file's bytes (and name, when multipart gives one): the raw body, or the one file of a form."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "multipart/form-data":
        return await request.body(), None
    form = await request.form()
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    if len(files) != 1:
        raise ApiError(422, "invalid", f"send exactly one file in the multipart body, got {len(files)}")
    upload = files[0]
    content = await upload.read()
    await upload.close()
    return content, upload.filename or None


@get(
    "/v1/shipments/{shipment_id:int}/status",
    summary="The shipment's judgement: rules, budgets, MKT, excursions, alarms, recommendation",
    tags=["evaluation"],
    security=BEARER,
    responses=errors(401, 404),
)
async def shipment_status(shipment_id: PathId, store: StoreDep, principal: PrincipalDep) -> ShipmentStatusOut:
    """A plain handler, not a controller method: ``POST`` on the same path belongs to the shipments controller, and
    Litestar merges a handler into a path a controller already holds (register it after that controller), but
    refuses a second controller on the same path."""
    return _status_out(await use_cases.shipment_judgement(store, principal, shipment_id))


class EvaluationApi(Controller):
    path = "/v1/shipments"
    tags = ["evaluation"]  # noqa: RUF012 (Litestar reads it as a class attribute)
    security = BEARER

    @get(
        "/{shipment_id:int}/excursions",
        summary="The shipment's excursions, each with its custodian",
        responses=errors(401, 404, 422),
    )
    async def excursions(
        self, shipment_id: PathId, store: StoreDep, principal: PrincipalDep, withdrawn: FromQuery[bool] = False
    ) -> list[ExcursionOut]:
        found = await use_cases.shipment_excursions(store, principal, shipment_id, withdrawn=withdrawn)
        return [excursion_out(stored) for stored in found]

    @get(
        "/{shipment_id:int}/quarantined",
        summary="Readings of the shipment's trackers quarantined at ingest",
        responses=errors(401, 404, 422),
    )
    async def quarantined(
        self,
        shipment_id: PathId,
        store: StoreDep,
        principal: PrincipalDep,
        after: FromQuery[str | None] = None,
        limit: FromQuery[int] = 100,
    ) -> QuarantinedPageOut:
        """Paged by tracker and sequence number: pass the page's ``next`` as ``after`` for the following one."""
        page = await use_cases.shipment_quarantined(store, principal, shipment_id, after=after, limit=limit)
        return QuarantinedPageOut(
            items=[
                QuarantinedReadingOut(
                    tracker_id=item.tracker_id,
                    seq=item.reading.seq,
                    device_time=item.reading.device_time,
                    received_at=item.received_at,
                    reason=item.reason,
                    reading=item.reading,
                )
                for item in page.items
            ],
            next=page.next,
        )

    @get(
        "/{shipment_id:int}/alarms",
        summary="The shipment's alarms, with detection and acknowledgement",
        responses=errors(401, 404, 422),
    )
    async def alarms(
        self, shipment_id: PathId, store: StoreDep, principal: PrincipalDep, withdrawn: FromQuery[bool] = False
    ) -> list[AlarmOut]:
        found = await use_cases.shipment_alarms(store, principal, shipment_id, withdrawn=withdrawn)
        return [alarm_out(stored) for stored in found]

    @post(
        "/{shipment_id:int}/alarms/{alarm_id:int}/acknowledge",
        status_code=200,
        summary="Acknowledge an alarm with a comment (once)",
        responses=errors(401, 403, 404, 409, 422),
    )
    async def acknowledge(
        self,
        shipment_id: PathId,
        alarm_id: PathId,
        data: JSONBody[AcknowledgeIn],
        store: StoreDep,
        principal: PrincipalDep,
        now: NowDep,
    ) -> AlarmOut:
        stored = await alarm_cases.acknowledge_alarm(
            store, principal, shipment_id, alarm_id, comment=data.comment, now=now
        )
        return alarm_out(stored)

    @post(
        "/{shipment_id:int}/logger-files",
        summary="Import a logger export (Berlinger) into the evidence",
        status_code=201,
        responses={
            200: ResponseSpec(LoggerImportOut, description="The shipment already held these exact bytes."),
            **errors(401, 403, 404, 409, 413, 422, 503, why={503: BUSY}),
        },
    )
    async def import_logger_file(
        self,
        request: Request[Any, Any, Any],
        shipment_id: PathId,
        store: StoreDep,
        principal: PrincipalDep,
        now: NowDep,
        utc_offset_min: UtcOffsetQuery = 0,
        file_name: FileNameQuery = None,
    ) -> Response[LoggerImportOut]:
        content, uploaded_name = await _uploaded(request)
        result = await loggers.import_logger_file(
            store,
            principal,
            shipment_id,
            content,
            file_name=file_name or uploaded_name,
            utc_offset_min=utc_offset_min,
            now=now,
        )
        return Response(_import_out(result), status_code=201 if result.new else 200)
