"""Unknown query parameters are refused (422), as unknown body fields are: a misspelt ``?organisation=3`` must not
quietly list everything. A route that reads its query itself (OsmAnd, whose protocol names its own parameters;
the portal's pages) says so with ``opt={"raw_query": True}``."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.constants import RESERVED_KWARGS
from litestar.handlers import HTTPRouteHandler
from litestar.params import ParameterKwarg

from coldchain.http.errors import ApiError

__all__ = ["refuse_unknown_query"]


def _query_names(request: Request[Any, Any, Any], handler: HTTPRouteHandler) -> frozenset[str]:
    """The query parameters ``handler`` takes, worked out once per app (kept in the app's state, so they go
    with the app: each app registers copies of the route handlers of its own)."""
    known: dict[HTTPRouteHandler, frozenset[str]] = request.app.state.setdefault("query_names", {})
    names = known.get(handler)
    if names is None:
        names = known[handler] = _taken_by(handler)
    return names


def _taken_by(handler: HTTPRouteHandler) -> frozenset[str]:
    dependencies = set(handler.resolve_dependencies())
    names = set()
    for name, field in handler.parsed_fn_signature.parameters.items():
        if name in RESERVED_KWARGS or name in dependencies:
            continue
        kwarg = field.kwarg_definition
        if isinstance(kwarg, ParameterKwarg):
            if kwarg.header or kwarg.cookie or kwarg.param_type.value != "query":
                continue
            names.add(kwarg.query or name)
        elif kwarg is None:
            names.add(name)
    return frozenset(names)


async def refuse_unknown_query(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: 422 naming the query parameters the route does not take. A coroutine, though it
    awaits nothing: Litestar runs a plain function hook in a worker thread, a thread hop on every request."""
    handler = request.route_handler
    if not isinstance(handler, HTTPRouteHandler) or handler.opt.get("raw_query"):
        return
    known = _query_names(request, handler) - set(request.path_params)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise ApiError(422, "invalid", f"unknown query parameter(s): {', '.join(map(repr, unknown))} (takes: {takes})")
