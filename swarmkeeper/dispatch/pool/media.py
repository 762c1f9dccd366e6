"""What a file the pool serves or takes really is, judged by its content, never by its name.

A file is served with a media type only when its content is one of a short list of image, video
and audio formats that a browser shows as media and never runs: images are checked with Pillow
(the header and, for PNG, every chunk's checksum), video and audio by their container's
signature. Anything else is a download (``application/octet-stream``). An upload must decode in
full as the image format its name claims.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image

DOWNLOAD = "application/octet-stream"
#: Pillow's format name → the media type served for it.
SHOWN_IMAGES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp",
                "BMP": "image/bmp"}
#: A file name's extension → the Pillow format an upload of that name must decode as (what
#: ComfyUI's LoadImage reads).
UPLOAD_EXTENSIONS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "jpe": "JPEG", "jfif": "JPEG", "gif": "GIF",
                     "webp": "WEBP", "bmp": "BMP", "tif": "TIFF", "tiff": "TIFF"}


def _mp4(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and int.from_bytes(data[:4], "big") >= 8


def _webm(data: bytes) -> bool:
    return data.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in data[:64]


def _wav(data: bytes) -> bool:
    return data.startswith(b"RIFF") and data[8:12] == b"WAVE"


def _mp3(data: bytes) -> bool:
    return data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


#: Video and audio containers, recognised by the signature every file of the format starts with.
SIGNATURES: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("video/mp4", _mp4), ("video/webm", _webm), ("audio/wav", _wav), ("audio/mpeg", _mp3),
    ("audio/flac", lambda data: data.startswith(b"fLaC")), ("audio/ogg", lambda data: data.startswith(b"OggS")),
)


def image_format(data: bytes, *, decode: bool) -> str | None:
    """Pillow's name for the image format of ``data`` (None when it is not an image Pillow can read).
    ``decode`` reads every pixel; without it, the header and the structure Pillow can check."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            found = image.format
            if decode:
                image.load()
            else:
                image.verify()
    except Exception:  # Pillow reports a broken file with many kinds of error (OSError, SyntaxError, ...)
        return None
    return found


def media_type(data: bytes) -> str | None:
    """The media type to serve ``data`` with, or None: not a format on the list (a download)."""
    for kind, matches in SIGNATURES:
        if matches(data):
            return kind
    found = image_format(data, decode=False)
    return SHOWN_IMAGES.get(found) if found is not None else None


def upload_problem(data: bytes, name: str) -> str | None:
    """Why ``data`` may not be uploaded as ``name`` (None: it is the image its name says)."""
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    claimed = UPLOAD_EXTENSIONS.get(extension)
    if claimed is None:
        return (f"'{name}' is not an image file name: the name must end with one of "
                f"{', '.join('.' + e for e in UPLOAD_EXTENSIONS)}.")
    found = image_format(data, decode=True)
    if found is None:
        return f"The uploaded file '{name}' is not an image (it does not decode as {claimed})."
    if found != claimed:
        return f"The uploaded file '{name}' is a {found} image, not the {claimed} its name says."
    return None
