"""One JSON shape for every error: ``{"error": code, "detail": text}``; never a stack trace on the wire.

Every refusal is mapped here, once: :class:`ApiError` carries its own status; a service error by its kind
(:mod:`coldchain.services.errors`); a request that breaks its schema by where: a path parameter out of range names
nothing (404), a body, query or header value out of range is invalid (422), a body that cannot be parsed is a bad
request (400, also for JSON nested too deep or not UTF-8: see :class:`ServiceRequest`).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.serialization import decode_json
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
)
from litestar.types import Empty

from coldchain.services.errors import Busy, Conflict, Forbidden, Invalid, Malformed, NotFound, ServiceError
from coldchain.storage import AlreadyExists

__all__ = ["ApiError", "ErrorOut", "ServiceRequest", "exception_handlers"]

log = logging.getLogger("coldchain.http")


class ErrorOut(msgspec.Struct, frozen=True, kw_only=True):
    """Every error answer."""

    error: str
    """A stable machine-readable code: bad_request, unauthenticated, forbidden, not_found, method_not_allowed,
    conflict, payload_too_large, unsupported_media_type, invalid, too_many_requests, internal_error, unavailable."""
    detail: str
    """What was wrong, for a person."""


class ApiError(HTTPException):
    """An error with a stable machine-readable ``code`` next to its human-readable ``detail``."""

    def __init__(self, status_code: int, code: str, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code = code


_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    503: "unavailable",
}


class ServiceRequest(Request[Any, Any, Any]):
    """The app's request class: a JSON body that cannot be decoded is the client's error (400), also when it is
    nested deeper than the decoder recurses (``[[[[...``) or is not UTF-8, which Litestar lets through as
    ``RecursionError`` and ``UnicodeDecodeError``."""

    async def json(self) -> Any:
        if self._json is Empty:
            if (cached := self._connection_state.json) is not Empty:
                self._json = cached
            else:
                body = await self.body()
                try:
                    decoded = decode_json(body or b"null", type_decoders=self.route_handler.resolve_type_decoders())
                except RecursionError:
                    raise ClientException("the JSON body is nested too deeply") from None
                except UnicodeDecodeError:
                    raise ClientException("the JSON body is not valid UTF-8") from None
                self._json = self._connection_state.json = decoded
        return self._json


def _error(status_code: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        content=ErrorOut(error=code, detail=detail),
        status_code=status_code,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _validation_detail(exc: ValidationException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    parts = []
    for item in extra:
        if isinstance(item, dict):
            where = item.get("key") or item.get("source") or ""
            message = item.get("message", "")
            parts.append(f"{where}: {message}" if where else str(message))
    return "; ".join(parts) or exc.detail


def _sources(exc: ValidationException) -> set[str]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    # Litestar names a parameter's source with a str enum (ParamType.PATH), a body's with the plain "body"
    return {
        str(getattr(source, "value", source))
        for item in extra
        if isinstance(item, dict) and (source := item.get("source"))
    }


def _on_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    headers = dict(exc.headers) if exc.headers else None
    if isinstance(exc, ApiError):
        return _error(exc.status_code, exc.code, exc.detail, headers)
    if isinstance(exc, ValidationException):
        sources = _sources(exc)
        if sources == {"path"}:
            return _error(HTTP_404_NOT_FOUND, "not_found", f"nothing has this id ({_validation_detail(exc)})", headers)
        if sources:
            return _error(HTTP_422_UNPROCESSABLE_ENTITY, "invalid", _validation_detail(exc), headers)
        return _error(HTTP_400_BAD_REQUEST, "bad_request", _validation_detail(exc), headers)
    return _error(exc.status_code, _CODES.get(exc.status_code, "error"), exc.detail, headers)


_SERVICE_STATUS: tuple[tuple[type[ServiceError], int], ...] = (
    (Malformed, 400),
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (Invalid, 422),
    (Busy, 503),
)

#: Seconds a caller told :class:`Busy` waits before asking again.
BUSY_RETRY_AFTER_S = 1


def _on_service_error(_: Request[Any, Any, Any], exc: ServiceError) -> Response[Any]:
    status = next((code for kind, code in _SERVICE_STATUS if isinstance(exc, kind)), 400)
    headers = {"Retry-After": str(BUSY_RETRY_AFTER_S)} if isinstance(exc, Busy) else None
    return _error(status, _CODES[status], str(exc), headers)


def _on_already_exists(_: Request[Any, Any, Any], exc: AlreadyExists) -> Response[Any]:
    return _error(409, "conflict", str(exc))


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "the service failed; the error was logged")


exception_handlers: dict[type[Exception] | int, Any] = {
    HTTPException: _on_http_exception,
    ServiceError: _on_service_error,
    AlreadyExists: _on_already_exists,
    Exception: _on_unexpected,
}
