"""JSON answers decoded by orjson, and what only Python's json module writes still read as it did."""

from __future__ import annotations

import math

import pytest

from swarmkeeper.clients.comfyui.bodies import decode_json
from swarmkeeper.clients.errors import ComfyProtocolError


def test_plain_json_and_what_python_writes_beyond_it_decode_alike() -> None:
    assert decode_json(b'{"a": [1, 2.5, "x", null, true]}', "/object_info") == {"a": [1, 2.5, "x", None, True]}
    odd = decode_json(b'{"max": Infinity, "nan": NaN, "seed": 123456789012345678901234567890, "s": "\\ud800"}', "/x")
    assert odd["max"] == math.inf and math.isnan(odd["nan"])
    assert odd["seed"] == 123456789012345678901234567890 and odd["s"] == "\ud800"


@pytest.mark.parametrize(("raw", "what"), [(b"<!DOCTYPE html><html>", "HTML"),
                                           (b"\xff\xfe", "something that is not JSON")])
def test_what_is_not_json_is_named(raw: bytes, what: str) -> None:
    with pytest.raises(ComfyProtocolError, match=f"answered /x with {what}"):
        decode_json(raw, "/x")
