"""A gzip made of pieces deflated apart, so a long answer that changes a little at a time is
compressed once per changed piece, never whole per request (the ListBackends answer, api/views.py).

Each piece is deflated on its own into blocks that end on a byte boundary without ending the stream
(a sync flush), so the pieces laid end to end are one deflate stream (as pigz does). A piece may be
deflated with what precedes it in the answer as its dictionary: its back-references then reach into
that text, which a decoder has just written out, so similar neighbours compress as well as they
would in one stream. The checksum of the whole is given, or computed (~0.3 ms per 600 KB)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

#: gzip's header: deflate, no name, no time, no extra flags, unknown OS (RFC 1952).
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_LEVEL = 6


def _compressor(before: bytes | None) -> zlib._Compress:
    if before:
        return zlib.compressobj(_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=before)
    return zlib.compressobj(_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)


def deflate_piece(data: bytes, before: bytes | None = None) -> bytes:
    """``data`` as raw deflate blocks that more may follow. With ``before``, they may refer back into
    it: the stream must then hold exactly ``before`` just ahead of them."""
    compressor = _compressor(before)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def deflate_last(data: bytes, before: bytes | None = None) -> bytes:
    """Like :func:`deflate_piece`, but ending the stream (the last piece)."""
    compressor = _compressor(before)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH)


def gzip_member(whole: bytes, pieces: Iterable[bytes], crc: int | None = None) -> bytes:
    """One gzip member of ``whole`` from its pieces in order, the last made by :func:`deflate_last`;
    ``crc``: the CRC-32 of ``whole``, when known (api/checksum.py)."""
    crc = zlib.crc32(whole) if crc is None else crc
    return _HEADER + b"".join(pieces) + struct.pack("<II", crc, len(whole) & 0xFFFFFFFF)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether a request's ``Accept-Encoding`` allows a gzip answer (RFC 9110 §12.5.3: ``gzip`` or
    ``x-gzip``, else ``*``, with a weight above 0)."""
    star = False
    for item in accept_encoding.lower().split(","):
        coding, _, parameters = item.partition(";")
        coding = coding.strip()
        if coding in ("gzip", "x-gzip"):
            return _weight(parameters) > 0
        if coding == "*":
            star = _weight(parameters) > 0
    return star


def _weight(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0
