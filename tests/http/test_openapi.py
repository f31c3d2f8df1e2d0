"""The served OpenAPI document tells the truth about the service, its documentation pages work on a closed
network, and every answer carries the security headers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.http.app import create_app
from coldchain.settings import load_settings
from tests.factories import OPERATOR_HEADERS, OPERATOR_TOKEN

Client = AsyncTestClient[Litestar]
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
async def client(tmp_path: Any) -> AsyncIterator[Client]:
    app = create_app(load_settings({}, database_url=f"sqlite:///{tmp_path}/c.db", admin_token=OPERATOR_TOKEN))
    async with AsyncTestClient(app) as test_client:
        yield test_client


@pytest.fixture
async def document(client: Client) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    served: dict[str, Any] = response.json()
    return served


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


async def test_every_error_answer_is_documented_in_the_one_error_shape(document: dict[str, Any]) -> None:
    assert document["components"]["schemas"]["ErrorOut"]["required"] == ["detail", "error"]
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            # A health probe's 503 is its own answer (what is not healthy), not a refusal.
            if status.startswith("2") or (path, status) in {("/health", "503"), ("/health/ready", "503")}:
                continue
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, status)


async def test_each_operation_documents_the_refusals_it_can_give(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        statuses = set(operation["responses"])
        if operation.get("security") == [{"bearer": []}]:
            assert "401" in statuses, (method, path)
        if "{" in path and path != "/v1/trackers/{serial}/sync":
            assert "404" in statuses, (method, path)
        if "requestBody" in operation:
            assert {"400", "422"} <= statuses, (method, path)
    sync = document["paths"]["/v1/trackers/{serial}/sync"]["post"]["responses"]
    assert {"400", "401", "413", "415", "422", "429", "503"} <= set(sync)
    metrics = document["paths"]["/metrics"]["get"]["responses"]
    assert set(metrics) == {"200", "400", "401", "404", "422", "429"}
    assert set(metrics["200"]["content"]) == {"text/plain"}


async def test_callers_authenticate_with_a_bearer_token_and_trackers_with_a_signature(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"]}
    assert (schemes["trackerSignature"]["type"], schemes["trackerSignature"]["name"]) == ("apiKey", "X-Signature")
    session = schemes["session"]
    assert (session["type"], session["in"], session["name"]) == ("apiKey", "cookie", "coldchain_session")
    for path, method, operation in operations(document):
        if path.startswith(("/health", "/v1/osmand")) or path == "/.well-known/coldchain-keys":
            assert "security" not in operation, (method, path)
        elif path == "/metrics":  # the metrics token, which is no API token and opens nothing else
            assert operation["security"] == [{"metricsToken": []}]
            assert schemes["metricsToken"]["scheme"] == "bearer"
        elif path == "/v1/trackers/{serial}/sync":
            assert operation["security"] == [{"trackerSignature": []}]
        elif path == "/v1/session" and method == "post":  # signing in is how a session begins
            assert "security" not in operation
        elif path == "/v1/session":
            assert operation["security"] == [{"session": []}], (method, path)
        elif path.startswith("/v1/shipments/{shipment_id}/decisions") and method == "post":
            # an electronic signature is a person's: a portal session, never a token
            assert operation["security"] == [{"session": []}], (method, path)
        else:
            assert operation["security"] == [{"bearer": []}, {"session": []}], (method, path)


async def test_every_request_body_is_documented_including_the_raw_ones(document: dict[str, Any]) -> None:
    paths = document["paths"]
    sync = paths["/v1/trackers/{serial}/sync"]["post"]["requestBody"]["content"]
    assert (
        sync["application/json"] == sync["application/msgpack"] == {"schema": {"$ref": "#/components/schemas/BatchIn"}}
    )
    assert "ReadingIn" in document["components"]["schemas"]
    profile = paths["/v1/profiles"]["post"]["requestBody"]["content"]
    assert profile["application/json"]["schema"] == {"$ref": "#/components/schemas/Profile"}
    logger = paths["/v1/shipments/{shipment_id}/logger-files"]["post"]["requestBody"]["content"]
    assert {"text/plain", "application/octet-stream", "multipart/form-data"} <= set(logger)
    for path, method, operation in operations(document):
        if method in ("post", "put", "patch") and not path.startswith("/v1/osmand"):
            bodiless = path.endswith(("/accept", "/disable", "/enable", "/follow"))  # the path says it all
            assert "requestBody" in operation or bodiless, (method, path)


async def test_the_enforced_constraints_are_in_the_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name, schema in schemas.items():
        if name.endswith("In"):
            assert schema["additionalProperties"] is False, name
    url = schemas["WebhookIn"]["properties"]["url"]
    assert re.match(url["pattern"], "https://hooks.example.org/x")
    assert not re.match(url["pattern"], "ftp://hooks.example.org/x")
    missing_range = schemas["SyncAckOut"]["properties"]["missing"]["items"]
    assert missing_range == {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer"}}
    shipment_id = document["paths"]["/v1/shipments/{shipment_id}"]["get"]["parameters"][0]["schema"]
    assert (shipment_id["minimum"], shipment_id["maximum"]) == (1, 2**63 - 1)


async def test_a_refused_method_names_every_method_the_path_takes(client: Client, document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        documented = {method.upper() for method in item if method in METHODS}
        refused = next(method for method in ("PUT", "PATCH", "DELETE", "POST") if method not in documented)
        concrete = re.sub(r"\{[^}]+\}", "1", path).replace("{serial}", "TRK-1")
        response = await client.request(refused, concrete, headers=OPERATOR_HEADERS)
        assert response.status_code == 405, (refused, path, response.text)
        assert response.json()["error"] == "method_not_allowed"
        allowed = {method.strip() for method in response.headers["allow"].split(",")}
        assert documented <= allowed, (path, allowed)


async def test_the_documentation_pages_load_only_the_services_own_assets(client: Client) -> None:
    page = await client.get("/schema")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(source.startswith("/schema/") for source in sources), sources
    for source in sources:
        asset = await client.get(source)
        assert asset.status_code == 200, source
    assert "<script>" not in page.text, "no inline script: the page's policy allows scripts from the service only"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert (await client.get("/schema/swagger")).status_code == 200


async def test_every_answer_carries_the_security_headers(client: Client) -> None:
    for response in (
        await client.get("/health"),
        await client.get("/v1/shipments"),
        await client.get("/no/such/path"),
        await client.put("/health"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert response.headers["cache-control"] == "no-store"


async def test_answers_that_carry_a_secret_are_never_cached(client: Client) -> None:
    organisation = await client.post(
        "/v1/organisations", json={"name": "O", "kind": "shipper"}, headers=OPERATOR_HEADERS
    )
    token = await client.post(
        f"/v1/organisations/{organisation.json()['id']}/tokens",
        json={"role": "admin", "name": "a"},
        headers=OPERATOR_HEADERS,
    )
    tracker = await client.post("/v1/trackers", json={"serial": "TRK-S"}, headers=OPERATOR_HEADERS)
    for answer in (token, tracker):
        assert answer.status_code == 201
        assert answer.headers["cache-control"] == "no-store"


async def test_unknown_query_parameters_are_refused_naming_them(client: Client) -> None:
    response = await client.get("/v1/products?organisation=3", headers=OPERATOR_HEADERS)
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid",
        "detail": "unknown query parameter(s): 'organisation' (takes: organisation_id)",
    }
