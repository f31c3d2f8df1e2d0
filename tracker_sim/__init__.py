"""tracker_sim: simulated shipment trackers and fleets for coldchain's demo, tests and load benchmark.

It owns the tracker's side of the sync protocol (a durable SQLite logbook, signed batches, backoff,
acknowledgement), believable seeded sensor data for scenario trips, a network model with outages and lost
answers, and a fleet runner that measures the service. It imports nothing from ``coldchain`` (its wire
Structs are its own copy of the contract), only the standard library, msgspec, httpx, aiosqlite and geopy
(in ``route`` alone).

Modules: ``wire`` (contract), ``logbook``, ``route``, ``sensors``, ``scenarios``, ``trip`` (a scenario played
with a seed), ``network``, ``sync``, ``clock``, ``runner`` (one tracker), ``fleet``, ``cli``.
"""

from tracker_sim.fleet import FleetResult, RegistrationError, register_tracker, run_fleet
from tracker_sim.logbook import Logbook, Measurement, open_logbook
from tracker_sim.runner import RunReport, run_tracker
from tracker_sim.scenarios import BUILTIN_SCENARIOS, Scenario, builtin_scenario, load_scenarios
from tracker_sim.sync import SyncClient, SyncSettings, TrackerCredentials
from tracker_sim.trip import Trip, simulate_trip

__all__ = [
    "BUILTIN_SCENARIOS",
    "FleetResult",
    "Logbook",
    "Measurement",
    "RegistrationError",
    "RunReport",
    "Scenario",
    "SyncClient",
    "SyncSettings",
    "TrackerCredentials",
    "Trip",
    "builtin_scenario",
    "load_scenarios",
    "open_logbook",
    "register_tracker",
    "run_fleet",
    "run_tracker",
    "simulate_trip",
]
