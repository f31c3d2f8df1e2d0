"""The raw-data exports of a shipment, for auditors and anyone else of its parties: the readings CSV (streamed,
the same bytes on every export; its SHA-256 is the one investigations and certificates cite), that SHA-256
computed on request, and the quarantined readings CSV with the reasons."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.openapi import ResponseSpec
from litestar.response import Stream

from coldchain.http.deps import PrincipalDep, StoreDep
from coldchain.http.openapi import BEARER, errors
from coldchain.http.wire import PathId
from coldchain.services import exports as use_cases

__all__ = ["ExportApi"]

_CSV = "text/csv"
"""Litestar adds the charset (UTF-8) to text media types."""


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


class ExportApi(Controller):
    path = "/v1/shipments/{shipment_id:int}"
    tags = ["exports"]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get(
        "/readings.csv",
        summary="Every reading of the shipment as CSV: streamed, the same bytes on every export",
        security=BEARER,
        media_type=_CSV,
        responses={
            200: ResponseSpec(bytes, description="The readings CSV (RFC 4180, CRLF).", media_type=_CSV),
            **errors(401, 404),
        },
    )
    async def readings_csv(self, shipment_id: PathId, store: StoreDep, principal: PrincipalDep) -> Stream:
        """Columns: tracker, seq, device_time_utc, utc_offset_min, device_time_local, received_at_utc,
        temperature_c, humidity_pct, pressure_kpa, latitude, longitude, battery_pct; ordered by device time,
        tracker and seq; empty for a value not measured. Numbers are the shortest decimal that reads back as the
        same double, never with an exponent. The SHA-256 of these bytes is the investigation's
        `integrity.readings_sha256` (and `readings.csv.sha256`)."""
        chunks = await use_cases.readings_csv(store, principal, shipment_id)
        return Stream(chunks, media_type=_CSV, headers=_attachment(f"shipment-{shipment_id}-readings.csv"))

    @get(
        "/readings.csv.sha256",
        summary="The SHA-256 of the readings CSV as it would be exported now, in sha256sum's format",
        security=BEARER,
        media_type="text/plain",
        responses={
            200: ResponseSpec(str, description="`<hex>  shipment-<id>-readings.csv`", media_type="text/plain"),
            **errors(401, 404),
        },
    )
    async def readings_csv_sha256(self, shipment_id: PathId, store: StoreDep, principal: PrincipalDep) -> Response[str]:
        """One pass over the readings, the export's own: `sha256sum -c` checks a downloaded export against it."""
        digest = await use_cases.readings_csv_sha256(store, principal, shipment_id)
        return Response(f"{digest}  shipment-{shipment_id}-readings.csv\n", media_type="text/plain")

    @get(
        "/quarantined.csv",
        summary="The shipment's quarantined readings as CSV, each with the reason it was kept apart",
        security=BEARER,
        media_type=_CSV,
        responses={
            200: ResponseSpec(bytes, description="The readings CSV's columns, then `reason`.", media_type=_CSV),
            **errors(401, 404),
        },
    )
    async def quarantined_csv(self, shipment_id: PathId, store: StoreDep, principal: PrincipalDep) -> Response[bytes]:
        """Readings of the shipment's trackers during their assignments that ingest kept apart (sensor faults,
        impossible values), by tracker id and seq, in the readings CSV's format with a last column `reason`."""
        content = await use_cases.quarantined_csv(store, principal, shipment_id)
        return Response(content, media_type=_CSV, headers=_attachment(f"shipment-{shipment_id}-quarantined.csv"))
