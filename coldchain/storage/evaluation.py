"""Records of the evaluation area: the EvaluationRecords contract and its SQL (shared by both engines)."""

from __future__ import annotations

from typing import Protocol

from coldchain.storage._sqlbase import SqlBase

__all__ = ["EvaluationRecords", "EvaluationSql"]


class EvaluationRecords(Protocol):
    """What a transaction offers for evaluation."""


class EvaluationSql(SqlBase):
    """:class:`EvaluationRecords` in SQL."""
