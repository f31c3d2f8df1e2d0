"""The one canonical JSON form: the same content gives the same bytes, whatever order it was built in."""

from __future__ import annotations

from random import Random

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from coldchain.domain.canonical import canonical_json, canonical_text

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=6), VALUES, max_size=6), st.randoms())
def test_the_order_fields_were_built_in_changes_nothing(document: dict[str, object], random: Random) -> None:
    shuffled_keys = list(document)
    random.shuffle(shuffled_keys)
    reordered = {key: document[key] for key in shuffled_keys}
    assert canonical_json(reordered) == canonical_json(document)
    assert msgspec.json.decode(canonical_json(document)) == document


def test_keys_are_sorted_and_there_is_no_whitespace() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": None, "c": "é"}]}) == '{"a":[1,{"c":"é","d":null}],"b":1}'.encode()
    assert canonical_text({"z": True, "y": 1.5}) == '{"y":1.5,"z":true}'
