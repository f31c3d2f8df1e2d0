from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tracker_sim.network import Connectivity, NetworkConditions, OfflineWindow, SimulatedNetworkTransport

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.slept_s: list[float] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"ok": True})

    async def sleep(self, seconds: float) -> None:
        self.slept_s.append(seconds)


def test_a_tracker_is_offline_for_days_inside_its_window_and_online_outside() -> None:
    conditions = NetworkConditions(offline=(OfflineWindow(start_h=6, duration_h=72),))
    link = Connectivity(conditions, start=START, seed=1)
    assert link.is_online(START + timedelta(hours=5, minutes=59))
    assert not link.is_online(START + timedelta(hours=6))
    assert not link.is_online(START + timedelta(days=3))
    assert link.is_online(START + timedelta(hours=78))
    assert link.online_again_at(START + timedelta(days=1)) == START + timedelta(hours=78)
    assert link.online_again_at(START) == START


def test_overlapping_windows_and_flights_merge_into_one_outage() -> None:
    conditions = NetworkConditions(offline=(OfflineWindow(start_h=1, duration_h=2),))
    flight = (START + timedelta(hours=2), START + timedelta(hours=10))
    link = Connectivity(conditions, start=START, seed=1, extra_offline=[flight])
    assert link.offline_windows == [(START + timedelta(hours=1), START + timedelta(hours=10))]


def test_losses_and_latencies_are_reproducible_from_the_seed() -> None:
    conditions = NetworkConditions(lost_response_rate=0.3, latency_ms=200, latency_jitter_ms=100)

    def draws(seed: int) -> list[tuple[bool, float]]:
        link = Connectivity(conditions, start=START, seed=seed)
        return [(link.response_lost(), link.round_trip_s()) for _ in range(200)]

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)


def test_answers_are_lost_at_about_the_given_rate() -> None:
    link = Connectivity(NetworkConditions(lost_response_rate=0.2), start=START, seed=3)
    lost = sum(link.response_lost() for _ in range(4000))
    assert 700 < lost < 900


def test_round_trips_take_at_least_the_base_latency_and_narrow_links_take_longer() -> None:
    conditions = NetworkConditions(latency_ms=300, latency_jitter_ms=200, bandwidth_kbps=64)
    link = Connectivity(conditions, start=START, seed=2)
    trips = [link.round_trip_s() for _ in range(2000)]
    assert min(trips) >= 0.3
    assert 0.45 < sum(trips) / len(trips) < 0.55
    assert link.transfer_s(8000) == pytest.approx(1.0)


async def test_without_coverage_nothing_is_sent_and_the_client_sees_a_connect_error() -> None:
    service = Recorder()
    link = Connectivity(NetworkConditions(offline=(OfflineWindow(start_h=0, duration_h=48),)), start=START, seed=1)
    transport = SimulatedNetworkTransport(
        httpx.MockTransport(service.handle),
        link,
        clock=lambda: START + timedelta(days=1),
        sleep=service.sleep,
    )
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post("http://service.test/v1/x", content=b"{}")
    assert service.requests == []


async def test_a_lost_answer_means_the_service_got_the_request_but_the_client_times_out() -> None:
    service = Recorder()
    link = Connectivity(NetworkConditions(lost_response_rate=1.0), start=START, seed=1)
    transport = SimulatedNetworkTransport(
        httpx.MockTransport(service.handle), link, clock=lambda: START, sleep=service.sleep
    )
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("http://service.test/v1/x", content=b"{}")
    assert len(service.requests) == 1
    assert transport.lost_responses == 1


async def test_latency_and_bandwidth_cost_simulated_time_in_both_directions() -> None:
    service = Recorder()
    conditions = NetworkConditions(latency_ms=400, latency_jitter_ms=0, bandwidth_kbps=8)
    link = Connectivity(conditions, start=START, seed=1)
    transport = SimulatedNetworkTransport(
        httpx.MockTransport(service.handle), link, clock=lambda: START, sleep=service.sleep
    )
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.post("http://service.test/v1/x", content=b"x" * 1000)
    assert response.json() == {"ok": True}
    answer_bytes = len(b'{"ok":true}')
    assert service.slept_s == pytest.approx([0.2 + 1.0, 0.2 + answer_bytes / 1000])
