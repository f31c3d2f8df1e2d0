"""``GET /v1/shipments/{id}/epcis``: the shipment as a GS1 EPCIS 2.0 document (JSON-LD), for trading partners'
traceability systems and auditors. What maps to what: :mod:`coldchain.domain.epcis`."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.openapi import ResponseSpec
from litestar.params import QueryParameter

from coldchain.domain.epcis import SensorMode
from coldchain.http.deps import NowDep, PrincipalDep, StoreDep
from coldchain.http.openapi import BEARER, errors
from coldchain.http.wire import PathId
from coldchain.services import epcis as use_cases

__all__ = ["MEDIA_TYPE", "shipment_epcis"]

MEDIA_TYPE = "application/ld+json"

SensorQuery = Annotated[
    SensorMode,
    QueryParameter(
        description="`readings` (default): every reading as a sensor element; `intervals`: min, mean and max per"
        " interval of `interval_min` minutes"
    ),
]
IntervalQuery = Annotated[
    int,
    QueryParameter(
        ge=1, le=1440, description="minutes per interval (with `sensor=intervals`), aligned to the Unix epoch"
    ),
]


@get(
    "/v1/shipments/{shipment_id:int}/epcis",
    summary="The shipment as an EPCIS 2.0 document: custody steps, sensor data and excursions (JSON-LD)",
    tags=["exports"],
    security=BEARER,
    media_type=MEDIA_TYPE,
    responses={
        200: ResponseSpec(
            dict[str, Any],
            description="An EPCISDocument (application/ld+json) with GS1's EPCIS 2.0 context; the same facts always"
            " give the same bytes and event ids.",
            media_type=MEDIA_TYPE,
            generate_examples=False,
        ),
        **errors(401, 403, 404, 422),
    },
)
async def shipment_epcis(
    request: Request[Any, Any, Any],
    shipment_id: PathId,
    store: StoreDep,
    principal: PrincipalDep,
    now: NowDep,
    sensor: SensorQuery = "readings",
    interval_min: IntervalQuery = 60,
) -> Response[bytes]:
    """ObjectEvents for the chain of custody with CBV business steps and dispositions, source and destination
    parties, read point and business location, and a link to the shipment's certificate; the readings (or
    per-interval summaries) as sensor data; each excursion as an ``ALARM_CONDITION``. Parties, trackers and
    rules are named by the service's URIs under the address the request came to; the goods by an LGTIN
    (GS1 Digital Link) when the product has a GTIN, by the service's URI of the product or lot otherwise.
    More than 200,000 readings are refused: ask for intervals."""
    content = await use_cases.export_shipment(
        store,
        principal,
        shipment_id,
        sensor=sensor,
        interval_s=interval_min * 60,
        base_url=str(request.base_url),
        now=now,
    )
    return Response(content, media_type=MEDIA_TYPE)
