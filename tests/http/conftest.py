"""Fixtures shared by the HTTP tests."""

from __future__ import annotations

from tests.http.test_shipments_api import world
from tests.http.test_sync_api import make_client

__all__ = ["make_client", "world"]
