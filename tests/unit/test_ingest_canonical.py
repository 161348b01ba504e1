"""The ingest gate verifies through core.signing.canonical_bytes, whose fast
path (the C JSON encoder) must give exactly the RFC 8785 form that the
reference implementation (rfc8785) gives, or step aside."""

from __future__ import annotations

import random

import pytest
import rfc8785

from tw_gates.core.signing import _canonical_bytes_fast, canonical_bytes

TRICKY_STRINGS = [
    "",
    "plain",
    'quote " and backslash \\',
    "\b\f\n\r\t",
    "\x00\x01\x1f\x7f",
    "\u2028\u2029\x85",
    "é ü ß",
    "€",
    "\U0001f600 emoji",
    "\ufeff bom",
    "</script>",
    "\uffff",
    "a" * 300,
]


def random_value(rng: random.Random, depth: int = 0):
    choice = rng.randrange(9 if depth < 4 else 5)
    if choice == 0:
        return rng.choice(TRICKY_STRINGS) + rng.choice(TRICKY_STRINGS)
    if choice == 1:
        return rng.choice([0, -1, 1, 2**53 - 1, -(2**53 - 1), rng.randrange(-(10**9), 10**9)])
    if choice == 2:
        return rng.choice([True, False, None])
    if choice == 3:
        return "".join(chr(rng.randrange(0x20, 0x250)) for _ in range(rng.randrange(8)))
    if choice == 4:
        return rng.randrange(10**6)
    if choice in (5, 6):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = ["a", "b", "B", "_", "aa", "a b", "10", "1", "schema_version", "hits", "z\t", "\x00"]
    return {rng.choice(keys) + str(rng.randrange(3)): random_value(rng, depth + 1) for _ in range(rng.randrange(6))}


def test_fast_path_equals_rfc8785_on_random_documents():
    rng = random.Random(8785)
    used_fast = 0
    for _ in range(3000):
        value = random_value(rng)
        fast = _canonical_bytes_fast(value)
        if fast is not None:
            used_fast += 1
            assert fast == rfc8785.dumps(value), value
    assert used_fast > 2500


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1.5},
        [0.1],
        {"big": 2**53},
        {"neg": -(2**53)},
        {"\u00e9": 1},
        {"\U0001f600": 1, "\uffff": 2},
        {"s": "\ud800"},
        {1: "not a str key"},
        ("tuple",),
    ],
    ids=[
        "float",
        "float-in-list",
        "big-int",
        "big-negative",
        "non-ascii-key",
        "utf16-order-key",
        "lone-surrogate",
        "int-key",
        "tuple",
    ],
)
def test_fast_path_steps_aside_where_it_could_differ(value):
    assert _canonical_bytes_fast(value) is None


def test_canonical_bytes_still_gives_rfc8785_where_the_fast_path_steps_aside():
    value = {"\U0001f600": 1, "\uffff": 2, "f": 1.5, "n": 1e21}
    assert canonical_bytes(value) == rfc8785.dumps(value)
    # UTF-16 order puts the surrogate pair of U+1F600 before U+FFFF.
    assert canonical_bytes(value).index("\U0001f600".encode()) < canonical_bytes(value).index("\uffff".encode())


def test_cyclic_value_does_not_hang_the_fast_path():
    value: dict = {}
    value["self"] = value
    assert _canonical_bytes_fast(value) is None
