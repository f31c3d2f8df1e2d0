"""Schemathesis against the served OpenAPI: the service on a real socket, every operation, valid and invalid
requests, with the tokens of several roles (and none), every check schemathesis has.

What it proves: no request makes the service fail (no 5xx), every answer matches the documented schema and
content type, and every status is one the operation documents. Examples per operation are bounded, so the whole
run stays within a couple of minutes on two cores.

Rules the schema cannot state (a body naming a product that does not exist: 422; a transition the record's state
forbids: 409) are why ``positive_data_acceptance`` also expects 409 and 422 for schema-valid requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, SerializationContext
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from coldchain.http.app import create_app
from coldchain.settings import load_settings
from tests.factories import FRIDGE_PROFILE, OPERATOR_HEADERS, OPERATOR_TOKEN, PROFILES_JSON
from tests.http.test_shipments_api import signing_keys
from tests.served import free_port

EXAMPLES_PER_OPERATION = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 20}
Operation = APIOperation[Any, Any, Any, Any]
TRACKER = "TRK-1"
SYNC = "/v1/trackers/{serial}/sync"
ROLES = ("operator", "admin", "logistics", "carrier", "auditor", "pharmacist", "metrics", "anonymous")
METRICS_TOKEN = "metrics-token-for-the-fuzzer"
"""Opens /metrics and nothing else: every other operation must refuse it."""


@dataclass(frozen=True)
class Served:
    url: str
    tokens: dict[str, str]
    answers: defaultdict[tuple[str, str], Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    """Statuses seen per operation and mode."""


def _seed(url: str) -> dict[str, str]:
    """Records for the generated requests to find: organisations, a token per role, a profile, a product with a
    lot, a tracker, a shipment with an assignment; ids start at 1, which schemathesis tries first."""
    tokens = {"operator": OPERATOR_TOKEN, "metrics": METRICS_TOKEN}
    with httpx.Client(base_url=url, headers=OPERATOR_HEADERS) as http:
        profiles = msgspec.json.decode(PROFILES_JSON.read_bytes())["profiles"]
        fridge = next(p for p in profiles if p["id"] == FRIDGE_PROFILE)
        assert http.post("/v1/profiles", json=fridge).status_code == 201
        shipper = http.post("/v1/organisations", json={"name": "Shipper", "kind": "shipper"}).json()["id"]
        carrier = http.post("/v1/organisations", json={"name": "Carrier", "kind": "carrier"}).json()["id"]
        for role in ("admin", "logistics", "auditor", "pharmacist"):
            issued = http.post(f"/v1/organisations/{shipper}/tokens", json={"role": role, "name": role})
            tokens[role] = issued.json()["token"]
        tokens["carrier"] = http.post(
            f"/v1/organisations/{carrier}/tokens", json={"role": "carrier", "name": "carrier"}
        ).json()["token"]
        logistics = {"Authorization": f"Bearer {tokens['logistics']}"}
        product = http.post(
            "/v1/products", json={"name": "Vaccine", "profile_id": FRIDGE_PROFILE}, headers=logistics
        ).json()
        http.post(f"/v1/products/{product['id']}/lots", json={"lot_number": "L-1"}, headers=logistics)
        tracker = http.post("/v1/trackers", json={"serial": TRACKER}, headers=logistics)
        assert tracker.status_code == 201, tracker.text
        tokens["tracker-secret"] = tracker.json()["secret"]
        shipment = http.post(
            "/v1/shipments",
            json={
                "reference": "SHP-1",
                "product_id": product["id"],
                "quantity": 10,
                "origin": {"name": "Berlin", "lat": 52.52, "lon": 13.405},
                "destination": {"name": "Munich", "lat": 48.137, "lon": 11.575},
                "legs": [{"carrier_id": carrier, "mode": "road"}],
                "promised_at": "2026-05-02T12:00:00Z",
            },
            headers=logistics,
        )
        assert shipment.status_code == 201, shipment.text
        http.post(f"/v1/shipments/{shipment.json()['id']}/trackers", json={"serial": TRACKER}, headers=logistics)
    return tokens


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    database = Path(tmp_path_factory.mktemp("fuzz")) / "coldchain.db"
    # The fuzzer sends wrong credentials by the thousand from one address: the failed-authentication and sign-in
    # limits (tested on their own) are set out of its reach, so it judges every answer rather than a 429.
    settings_ = load_settings(
        {},
        database_url=f"sqlite:///{database}",
        admin_token=OPERATOR_TOKEN,
        metrics_token=METRICS_TOKEN,
        events_stream_max_s=0.2,
        auth_failure_limit=1_000_000,
        login_max_failures=1_000_000,
        login_max_failures_per_client=1_000_000,
        **signing_keys(Path(tmp_path_factory.mktemp("keys"))),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings_), host="127.0.0.1", port=port, log_level="critical", lifespan="on")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "the service did not start"
    try:
        yield Served(url=url, tokens=_seed(url))
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def served_schema(served: Served) -> schemathesis.BaseSchema:
    config = SchemathesisConfig.from_dict(
        {
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}},
        }
    )
    return schemathesis.openapi.from_url(f"{served.url}/schema/openapi.json", config=config)


load_all_checks()
EVERY_CHECK = list(CHECKS.get_all())


@schemathesis.serializer("application/msgpack")
def _msgpack(_: SerializationContext, value: Any) -> bytes:
    """Sync batches go out as MessagePack too (schemathesis knows JSON, forms and text by itself). A value
    MessagePack cannot carry (an integer beyond 64 bits) goes as its JSON text: not MessagePack either."""
    try:
        return msgspec.msgpack.encode(value)
    except (OverflowError, TypeError):
        return msgspec.json.encode(value)


def _checks_for(operation: Operation) -> list[Any]:
    if operation.path == "/v1/osmand":
        # OsmAnd takes its parameters raw, as the protocol names them (id or deviceid, lat, lon, ...): the schema
        # cannot say "one of id and deviceid", so a request it calls valid may lack both (400).
        return [check for check in EVERY_CHECK if check is not positive_data_acceptance]
    return EVERY_CHECK


SIGN_HERE = "sha256=sign-here"


class _SigningSession(requests.Session):
    """Signs each body exactly as it goes out, as a tracker does, so sync batches reach the ingest and not only the
    signature check. Only a request carrying the placeholder is signed: the auth checks' replays without a
    signature, or with a wrong one, go out as they are."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret.encode()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if request.headers.get("X-Signature") == SIGN_HERE:
            body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
            request.headers["X-Signature"] = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        return super().send(request, **kwargs)


def _fuzz_operation(operation: Operation, served: Served, mode: GenerationMode) -> None:
    checks = _checks_for(operation)
    signed = operation.path == SYNC
    session = _SigningSession(served.tokens["tracker-secret"]) if signed else None
    # The sync batches go to the seeded tracker, signed with its secret: a random serial only finds the 401.
    strategy = operation.as_strategy(generation_mode=mode, path_parameters={"serial": TRACKER} if signed else None)

    @given(case=strategy, role=st.sampled_from(ROLES))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION[mode],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def call(case: Case[Any], role: str) -> None:
        if role == "anonymous":
            headers = {}
        elif signed:  # a tracker signs; tokens mean nothing to the sync route
            headers = {"X-Signature": SIGN_HERE}
        else:
            headers = {"Authorization": f"Bearer {served.tokens[role]}"}
        meta = case.meta
        if headers and meta is not None:
            # The token goes with every request as it would in use, so a case whose invalid part is a missing
            # Authorization header is not the request sent: the anonymous role covers a missing token.
            header = meta.components.get(ParameterLocation.HEADER)
            assume(header is None or header.mode is not GenerationMode.NEGATIVE)
        response = case.call_and_validate(
            base_url=served.url, headers=headers, checks=checks, timeout=30, session=session
        )
        served.answers[(operation.label, mode.value)][response.status_code] += 1

    call()


def _fuzz(schema: schemathesis.BaseSchema, served: Served, mode: GenerationMode) -> tuple[int, list[str]]:
    """Run every operation's examples in ``mode``; the operations run and the failures found, one line each."""
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the served schema has an invalid operation: {result}"
        operation = result.ok()
        operations += 1
        try:
            _fuzz_operation(operation, served, mode)
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request can be generated"
            # nothing of the operation can be made invalid (no parameters, no body): no negative case exists
        except (Exception, BaseExceptionGroup) as failure:
            failures.append(f"{operation.label} ({mode.value}): {failure}")
    return operations, failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_every_operation_answers_as_documented_for_every_role(
    served_schema: schemathesis.BaseSchema, served: Served, mode: GenerationMode
) -> None:
    operations, failures = _fuzz(served_schema, served, mode)
    assert operations >= 40, "every documented operation is fuzzed"
    assert not failures, "\n\n".join(failures)
    answered = {label: seen for (label, seen_mode), seen in served.answers.items() if seen_mode == mode.value}
    if mode is GenerationMode.POSITIVE:
        succeeded = [label for label, seen in answered.items() if any(200 <= status < 300 for status in seen)]
        assert len(succeeded) >= 25, f"valid requests reach the use cases, not only the refusals: {answered}"
        assert f"POST {SYNC}" in succeeded, "signed batches reach the ingest"
        assert "GET /metrics" in succeeded, "the metrics token opens the metrics"
