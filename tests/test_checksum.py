"""The CRC-32 of the ListBackends answer from its blocks (api/checksum.py): always the CRC-32 of
the whole, through any sequence of changes, with or without the C ``crc32_combine``."""

from __future__ import annotations

import random
import zlib

import pytest

from swarmkeeper.api import checksum
from swarmkeeper.api.checksum import BLOCK, checksums, whole_crc


def whole(parts: list[bytes]) -> bytes:
    return b"{" + b",".join(parts) + b"}"


def entry(rng: random.Random, n: int) -> bytes:
    return b'"%d":{"status":"%s"}' % (n, rng.choice([b"running", b"waiting", b"errored"]) * rng.randrange(1, 40))


@pytest.mark.parametrize("count", [0, 1, 2, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 7])
def test_the_whole_crc_from_blocks_is_the_crc_of_the_whole(count: int) -> None:
    rng = random.Random(count)
    parts = [entry(rng, n) for n in range(count)]
    assert whole_crc(whole(parts), checksums(parts)) == zlib.crc32(whole(parts))


def test_patched_checksums_follow_random_changes() -> None:
    rng = random.Random(15)
    parts = [entry(rng, n) for n in range(7 * BLOCK + 3)]
    sums = checksums(parts)
    assert sums is not None  # the C crc32_combine is found here (Debian's libz.so.1)
    for _ in range(300):
        moved = sorted({rng.randrange(len(parts)) for _ in range(rng.choice([1, 1, 2, 3, 40]))})
        for at in moved:
            parts[at] = entry(rng, at)
        sums = checksums(parts, sums, moved)
        assert whole_crc(whole(parts), sums) == zlib.crc32(whole(parts))


def test_without_the_c_function_the_whole_is_checksummed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checksum, "_combine", None)
    parts = [b'"0":{}', b'"1":{}']
    assert checksums(parts) is None
    assert whole_crc(whole(parts), None) == zlib.crc32(whole(parts))
