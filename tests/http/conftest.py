"""Fixtures shared by the HTTP tests."""

from __future__ import annotations

from tests.http.test_shipments_api import world

__all__ = ["world"]
