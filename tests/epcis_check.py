"""Checks of EPCIS 2.0 documents against GS1's own artefacts, copied into ``tests/fixtures/epcis``: the JSON Schema
(with a format checker, so that URIs and times are checked too) and the JSON-LD context, loaded locally by a
document loader that refuses any other address (the tests never reach the network)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft7Validator
from pyld import jsonld

from coldchain.domain.epcis import GS1_CONTEXT
from tests.paths import FIXTURES

__all__ = ["EPCIS", "expand", "schema_errors"]

EPCIS = FIXTURES / "epcis"


@cache
def _validator() -> Draft7Validator:
    schema = json.loads((EPCIS / "EPCIS-JSON-Schema.json").read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


def schema_errors(document: Any) -> list[str]:
    """Every way ``document`` breaks GS1's EPCIS 2.0 JSON Schema (none: it validates)."""
    return [f"{list(error.absolute_path)}: {error.message}" for error in _validator().iter_errors(document)]


@cache
def _context() -> Any:
    return json.loads((EPCIS / "epcis-context.jsonld").read_text(encoding="utf-8"))


def _loader(url: str, options: Any = None) -> dict[str, Any]:
    if url != GS1_CONTEXT:
        raise ValueError(f"the tests load no document from the network: {url}")
    return {"contextUrl": None, "documentUrl": url, "document": _context()}


def expand(document: Any) -> list[Any]:
    """The document's JSON-LD expansion, with GS1's context served from the copy."""
    expanded: list[Any] = jsonld.expand(document, {"documentLoader": _loader})
    return expanded
