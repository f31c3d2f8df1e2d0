"""The OpenAPI document and the API documentation pages, told as the service really behaves.

- Every error answer is :class:`~coldchain.http.errors.ErrorOut`; each operation lists the statuses it can return
  (:func:`errors`), and nothing else is documented for it.
- Callers authenticate with a bearer token (the ``bearer`` scheme: Swagger's *Authorize* sets it); a tracker signs
  its sync batch (the ``trackerSignature`` scheme, ``X-Signature``); health and OsmAnd take neither.
- Routes that read their body raw (sync in JSON or MessagePack, stability profiles, logger exports) have their
  request bodies added to the document here (:func:`complete`), from the same types the service decodes with.
- The pages (Swagger UI at ``/schema``, ``/schema/swagger``) load only assets served by the service itself, from
  the ``swagger-ui-bundle-v2`` package: closed networks have no CDN. Their script runs from a file, not inline, so
  the pages' Content-Security-Policy allows scripts from the service alone.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Router, get
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from coldchain.http.errors import ErrorOut
from coldchain.http.wire import MAX_ID, BatchIn

__all__ = [
    "ASSETS_PATH",
    "BEARER",
    "DOCS_PATH",
    "METRICS",
    "SESSION",
    "SIGNED",
    "complete",
    "errors",
    "openapi_config",
]

DOCS_PATH = "/schema"
ASSETS_PATH = f"{DOCS_PATH}/assets"

BEARER: list[dict[str, list[str]]] = [{"bearer": []}, {"session": []}]
"""Security of every route that takes an API token, or a portal session instead."""
SESSION: list[dict[str, list[str]]] = [{"session": []}]
"""Security of the routes about the session itself."""
SIGNED: list[dict[str, list[str]]] = [{"trackerSignature": []}]
"""Security of the sync route: an HMAC-SHA256 signature of the body with the tracker's secret."""
METRICS: list[dict[str, list[str]]] = [{"metricsToken": []}]
"""Security of ``/metrics``: the token of ``COLDCHAIN_METRICS_TOKEN``, which is no API token."""

_WHY = {
    400: "The request cannot be read: a body that is not valid JSON (or MessagePack, or gzip).",
    401: "No valid credentials: a missing, unknown or revoked API token, or a bad tracker signature.",
    403: "The caller's role does not allow this.",
    404: "No such record, or none the caller may see; also a path id outside what any record can have.",
    409: "The record's current state does not allow the change.",
    413: "The body is larger than the service accepts.",
    415: "The body's media type or content encoding is not one the route takes.",
    422: "The request is well-formed but a value breaks its schema or a rule; `detail` names it.",
    429: "Too many requests: the service is busy, or this address failed to authenticate too often; retry after"
    " the delay in the Retry-After header.",
    503: "The service is not set up for this (e.g. it holds no key to sign certificates with); `detail` says what"
    " to set.",
}


BUSY = (
    "Another of the shipment's trackers is delivering readings without pause, so the shipment's judgement could"
    " not be read at one moment: send the request again after the delay in Retry-After; nothing of it was kept."
)
"""What 503 means for a change that judges a shipment while its trackers' batches commit (see ``Busy``)."""


def errors(*statuses: int, why: dict[int, str] | None = None) -> dict[int, ResponseSpec]:
    """The error answers an operation can give, each in the one error shape; 400 (an unreadable request) always,
    and 429 wherever a 401 can be answered (failed authentications are limited per client address). ``why`` says
    what a status means for this operation where the general words do not fit."""
    answers = {400, *statuses} | ({429} if 401 in statuses else set())
    told = {**_WHY, **(why or {})}
    return {
        status: ResponseSpec(data_container=ErrorOut, description=told[status], generate_examples=False)
        for status in sorted(answers)
    }


def _schema_components(*types: type) -> tuple[tuple[dict[str, Any], ...], dict[str, Any]]:
    return msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")


_BATCH_SCHEMAS, _BATCH_COMPONENTS = _schema_components(BatchIn)

_RAW_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("/v1/trackers/{serial}/sync", "post"): {
        "required": True,
        "description": "A batch of the tracker's log, optionally gzip-compressed (Content-Encoding: gzip); "
        "X-Signature is the HMAC-SHA256 of the body bytes as sent.",
        "content": {
            "application/json": {"schema": _BATCH_SCHEMAS[0]},
            "application/msgpack": {"schema": _BATCH_SCHEMAS[0]},
        },
    },
    ("/v1/profiles", "post"): {
        "required": True,
        "description": "One stability profile, shaped like an entry of profiles.json (its version is ignored).",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Profile"}}},
    },
    ("/v1/shipments/{shipment_id}/logger-files", "post"): {
        "required": True,
        "description": "A logger's export file: the raw bytes as the body, or the one file of a multipart form.",
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    },
}


_CLOSED_DOMAIN_TYPES = {"Profile", "AlarmRule", "MktSettings"}
"""Domain Structs that arrive as bodies (a profile) and, like every ``...In`` wire Struct, refuse unknown fields."""


def _repair(node: Any) -> None:
    """Two slips of Litestar's schema writer, put right in place.

    - A bound of a required integer is written as a float: ``MAX_ID`` becomes 9.223372036854776e18, which is 2**63,
      one more than any id. The exact integer goes back.
    - A tuple (``missing: list[tuple[int, int]]``) becomes ``prefixItems`` without its length, so a longer array
      would pass; tools that read it the draft-7 way also turn it into ``items: [...]``, which 3.1 refuses. A tuple
      whose members share one schema is written as ``items`` with a fixed length: the same rule, read alike by all.
    """
    if isinstance(node, dict):
        members = node.get("prefixItems")
        if isinstance(members, list) and members:
            node["minItems"] = node["maxItems"] = len(members)
            if all(member == members[0] for member in members):
                node["items"] = node.pop("prefixItems")[0]
            else:
                node["items"] = False
        for key, value in node.items():
            if key in ("maximum", "minimum") and isinstance(value, float) and value.is_integer():
                node[key] = MAX_ID if value == float(MAX_ID) else int(value)
            else:
                _repair(value)
    elif isinstance(node, list):
        for item in node:
            _repair(item)


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """The document with what Litestar cannot see: the request bodies of the routes that read their body raw, the
    event stream's media type, unknown fields refused (``additionalProperties: false``), and :func:`_repair`."""
    completed: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(document))
    schemas = completed.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in _BATCH_COMPONENTS.items():
        schemas.setdefault(name, schema)
    for name, schema in schemas.items():
        if name.endswith("In") or name in _CLOSED_DOMAIN_TYPES:
            schema["additionalProperties"] = False  # forbid_unknown_fields: an unknown field is refused (422)
    _repair(completed)
    paths = completed.get("paths", {})
    for (path, method), body in _RAW_BODIES.items():
        operation = paths.get(path, {}).get(method)
        if operation is not None:
            operation["requestBody"] = body
    readings = paths.get("/v1/shipments/{shipment_id}/readings", {}).get("get")
    if readings is not None:  # format=csv: the same rows as CSV text, one header line first
        readings["responses"]["200"].setdefault("content", {})["text/csv"] = {"schema": {"type": "string"}}
    audit_export = paths.get("/v1/audit/export", {}).get("get")
    if audit_export is not None:  # format=csv: the same entries as CSV
        audit_export["responses"]["200"].setdefault("content", {})["text/csv"] = {"schema": {"type": "string"}}
    events = paths.get("/v1/events", {}).get("get")
    if events is not None:
        events["responses"]["200"] = {
            "description": "Server-sent events: `id` the position, `event` the kind, `data` an EventOut as JSON.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    return completed


class _CompletedJson(JsonRenderPlugin):
    """``/schema/openapi.json``: the document, completed once."""

    def __init__(self) -> None:
        super().__init__(path="/openapi.json")
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            self._rendered = self.render_json(request, complete(openapi_schema))
        return self._rendered


_SWAGGER_START = f"""\
window.addEventListener("load", function () {{
  window.ui = SwaggerUIBundle({{
    url: "{DOCS_PATH}/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout",
  }});
}});
"""


class _LocalSwagger(OpenAPIRenderPlugin):
    """Swagger UI from the service's own assets; its start script is a file (``start.js``), not inline."""

    def __init__(self) -> None:
        super().__init__(path=["/swagger"], favicon=f"<link rel='icon' href='{ASSETS_PATH}/favicon-32x32.png'>")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = openapi_schema["info"]["title"]
        return f"""<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{title} API</title>
    {self.favicon}
    <link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
    <script src="{ASSETS_PATH}/swagger-ui-standalone-preset.js"></script>
    <script src="{DOCS_PATH}/start.js"></script>
  </body>
</html>
""".encode()

    def receive_router(self, router: Router) -> None:
        @get("/start.js", media_type="text/javascript", sync_to_thread=False, include_in_schema=False)
        def start() -> str:
            return _SWAGGER_START

        router.register(start)
        router.register(
            create_static_files_router(
                path="/assets", directories=[str(swagger_ui_path)], include_in_schema=False, send_as_attachment=False
            )
        )


def openapi_config(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="coldchain",
        version=version,
        path=DOCS_PATH,
        description="Monitoring of temperature-sensitive medicines in transit. Every error answer is "
        '`{"error": code, "detail": text}`.',
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="An organisation's API token (or the operator's): `Authorization: Bearer <token>`.",
                ),
                "session": SecurityScheme(
                    type="apiKey",
                    name="coldchain_session",
                    security_scheme_in="cookie",
                    description="A signed-in user's session (POST /v1/session). A change made with a session also"
                    " carries the session's CSRF token in the `X-CSRF-Token` header.",
                ),
                "metricsToken": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="The metrics token the service is configured with (`COLDCHAIN_METRICS_TOKEN`),"
                    " for `GET /metrics` only: `Authorization: Bearer <token>`.",
                ),
                "trackerSignature": SecurityScheme(
                    type="apiKey",
                    name="X-Signature",
                    security_scheme_in="header",
                    description="`sha256=<hex HMAC-SHA256 of the body bytes with the tracker's secret>`.",
                ),
            }
        ),
        render_plugins=[_LocalSwagger(), _CompletedJson()],
    )
