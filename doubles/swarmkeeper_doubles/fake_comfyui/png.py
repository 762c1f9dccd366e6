"""Real PNGs of solid colours, and reading a PNG's size."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(width: int, height: int, color: int, text: Mapping[str, str] | None = None) -> bytes:
    """A solid-colour 8-bit RGB PNG (``color`` is 0xRRGGBB, as ComfyUI's EmptyImage takes it)."""
    row = b"\x00" + bytes(((color >> 16) & 255, (color >> 8) & 255, color & 255)) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    texts = [_png_chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode()) for k, v in (text or {}).items()]
    idat = _png_chunk(b"IDAT", zlib.compress(row * height, 6))
    return PNG_MAGIC + _png_chunk(b"IHDR", header) + b"".join(texts) + idat + _png_chunk(b"IEND", b"")


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR, or None if ``data`` is not a PNG."""
    if not data.startswith(PNG_MAGIC) or len(data) < 24:
        return None
    return struct.unpack(">II", data[16:24])
