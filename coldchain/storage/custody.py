"""Records of the custody area: the CustodyRecords contract and its SQL (shared by both engines)."""

from __future__ import annotations

from typing import Protocol

from coldchain.storage._sqlbase import SqlBase

__all__ = ["CustodyRecords", "CustodySql"]


class CustodyRecords(Protocol):
    """What a transaction offers for custody."""


class CustodySql(SqlBase):
    """:class:`CustodyRecords` in SQL."""
