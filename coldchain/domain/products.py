"""Products and their lots: what is shipped, and which stability profile judges it.

A product names its stability profile by id (``profile_id``); the version a shipment is judged against is pinned
by the shipment, not the product, so a new profile version never rewrites the past.
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec

__all__ = ["Lot", "Product"]


class Product(msgspec.Struct, frozen=True, kw_only=True):
    """A medicine an organisation ships. ``gtin`` is the GS1 trade item number when the product has one."""

    id: int
    organisation_id: int
    name: str
    gtin: str | None
    profile_id: str | None
    created_at: datetime


class Lot(msgspec.Struct, frozen=True, kw_only=True):
    """One manufactured batch of a product; lifetime stability budgets are counted per lot."""

    id: int
    product_id: int
    lot_number: str
    expires_on: date | None
    created_at: datetime
