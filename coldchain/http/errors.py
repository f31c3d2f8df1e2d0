"""One JSON shape for every error: ``{"error": code, "detail": text}``; never a stack trace on the wire."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_422_UNPROCESSABLE_ENTITY, HTTP_500_INTERNAL_SERVER_ERROR

from coldchain.services.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from coldchain.storage import AlreadyExists

__all__ = ["ApiError", "ErrorOut", "exception_handlers"]

log = logging.getLogger("coldchain.http")


class ErrorOut(msgspec.Struct, frozen=True, kw_only=True):
    error: str
    detail: str


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


def _is_invalid_body(exc: ValidationException) -> bool:
    """A well-formed body whose content breaks its schema (422, as the sync API answers), unlike a bad query or
    path parameter (400). A body that cannot be parsed never gets here: Litestar raises a plain 400 for it."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    return bool(extra) and all(isinstance(item, dict) and item.get("source") == "body" for item in extra)


def _on_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    headers = dict(exc.headers) if exc.headers else None
    if isinstance(exc, ApiError):
        return _error(exc.status_code, exc.code, exc.detail, headers)
    if isinstance(exc, ValidationException):
        if _is_invalid_body(exc):
            return _error(HTTP_422_UNPROCESSABLE_ENTITY, "invalid", _validation_detail(exc), headers)
        return _error(HTTP_400_BAD_REQUEST, "bad_request", _validation_detail(exc), headers)
    return _error(exc.status_code, _CODES.get(exc.status_code, "error"), exc.detail, headers)


_SERVICE_STATUS: tuple[tuple[type[ServiceError], int], ...] = (
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (Invalid, 422),
)


def _on_service_error(_: Request[Any, Any, Any], exc: ServiceError) -> Response[Any]:
    status = next((code for kind, code in _SERVICE_STATUS if isinstance(exc, kind)), 400)
    return _error(status, _CODES[status], str(exc))


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
