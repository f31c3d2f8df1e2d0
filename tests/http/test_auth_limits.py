"""Failed authentication, limited per client address, through the real app on each storage engine: sync
signatures, OsmAnd device ids and API tokens share one count; past it the address gets 429 with Retry-After."""

from __future__ import annotations

import httpx

from coldchain.http.limits import AuthFailures
from tests.http.test_sync_api import (
    ADMIN,
    JSON,
    VALID,
    ClientFactory,
    as_json,
    assert_error,
    batch,
    post_batch,
    reading,
    register,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_past_the_limit_waits_until_its_oldest_failure_leaves_the_window() -> None:
    clock = Clock()
    failures = AuthFailures(3, 60.0, clock=clock)
    for at in (1000.0, 1010.0, 1030.0):
        clock.now = at
        assert failures.retry_after_s("10.0.0.1") is None
        failures.record("10.0.0.1")

    assert failures.retry_after_s("10.0.0.1") == 30  # the failure at 1000 leaves the window at 1060
    assert failures.retry_after_s("10.0.0.2") is None, "another address is not affected"
    clock.now = 1059.5
    assert failures.retry_after_s("10.0.0.1") == 1
    clock.now = 1060.0
    assert failures.retry_after_s("10.0.0.1") is None


def test_the_count_forgets_addresses_rather_than_growing_without_bound() -> None:
    failures = AuthFailures(1, 60.0, max_addresses=10, clock=Clock())
    for n in range(25):
        failures.record(f"10.0.0.{n}")
    assert failures.retry_after_s("10.0.0.24") == 60
    assert sum(failures.retry_after_s(f"10.0.0.{n}") is not None for n in range(25)) <= 10


def assert_limited(response: httpx.Response) -> None:
    assert_error(response, 429, "too_many_requests", "too many failed authentications")
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_bad_signatures_past_the_limit_get_429_with_retry_after_even_for_a_good_one(
    make_client: ClientFactory,
) -> None:
    client = await make_client(auth_failure_limit=3, auth_failure_window_s=60)
    secret = await register(client)
    for serial in ("TRK-0001", "TRK-NOBODY", "TRK-0001"):
        assert (await post_batch(client, "wrong", VALID, serial=serial)).status_code == 401

    assert_limited(await post_batch(client, secret, as_json(batch(reading(1)))))
    assert_limited(await client.get("/v1/trackers", headers=ADMIN))


async def test_unknown_osmand_device_ids_and_bad_tokens_count_towards_the_same_limit(
    make_client: ClientFactory,
) -> None:
    client = await make_client(auth_failure_limit=3, auth_failure_window_s=60)
    assert (await client.get("/v1/osmand?id=guess-1&lat=60&lon=30")).status_code == 401
    assert (await client.get("/v1/osmand?id=guess-2&lat=60&lon=30")).status_code == 401
    assert (await client.get("/v1/trackers", headers={"Authorization": "Bearer guess"})).status_code == 401

    assert_limited(await client.get("/v1/osmand?id=guess-3&lat=60&lon=30"))
    assert_limited(await client.get("/v1/trackers", headers={"Authorization": "Bearer guess"}))


async def test_requests_without_credentials_do_not_count(make_client: ClientFactory) -> None:
    client = await make_client(auth_failure_limit=2, auth_failure_window_s=60)
    secret = await register(client)
    for _ in range(5):
        assert (await client.get("/v1/trackers")).status_code == 401
        unsigned = await client.post("/v1/trackers/TRK-0001/sync", content=VALID, headers={"Content-Type": JSON})
        assert unsigned.status_code == 401

    assert (await post_batch(client, secret, VALID)).status_code == 200
