"""The app through Litestar's AsyncTestClient, on each storage engine."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from coldchain.http.app import create_app
from coldchain.http.errors import exception_handlers
from coldchain.settings import load_settings


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = create_app(load_settings({}, database_url=database_url))
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def test_health_names_the_engine_and_says_the_database_is_reachable(
    client: AsyncTestClient[Litestar], database_url: str
) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "engine": "sqlite" if database_url.startswith("sqlite") else "postgresql",
        "database": "reachable",
        "version": "0.1.0",
    }


async def test_health_answers_503_when_the_database_is_gone(client: AsyncTestClient[Litestar]) -> None:
    # The app runs on the client's own event loop: close its store there.
    client.blocking_portal.call(client.app.state.store.close)
    response = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


async def test_the_openapi_schema_is_served_at_schema(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert "/health" in response.json()["paths"]


async def test_an_unknown_path_is_a_json_404(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "Not Found"}


async def test_a_wrong_method_is_a_json_405(client: AsyncTestClient[Litestar]) -> None:
    response = await client.delete("/health")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


async def test_an_unexpected_failure_is_a_json_500_without_a_stack_trace() -> None:
    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise RuntimeError("secret internals at /srv/app.py line 12")

    app = Litestar([boom], exception_handlers=exception_handlers, debug=False, logging_config=None)
    async with AsyncTestClient(app) as test_client:
        response = await test_client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "detail": "the service failed; the error was logged"}
    assert "secret internals" not in response.text and "Traceback" not in response.text
