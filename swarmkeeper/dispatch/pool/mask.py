"""``POST /upload/mask``: the save of ComfyUI's mask editor, done by the pool.

ComfyUI's own route opens the original image from its folder, takes the mask's alpha channel as the
original's, and stores the result as PNG (keeping the original's text metadata) under the mask's
name. The pool does the same with the original fetched from the backend that holds it, and stores
the result on every backend as ``/upload/image`` does. The mask is checked as any upload is, and
nothing reaches a backend when it is not the image its name says.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image
from PIL.PngImagePlugin import PngInfo
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from swarmkeeper.dispatch.pool.info import running_targets
from swarmkeeper.dispatch.pool.media import upload_problem
from swarmkeeper.dispatch.pool.transfer import bad_path, decoded, find, read_upload, store_everywhere

if TYPE_CHECKING:
    from swarmkeeper.dispatch.pool.core import Pool

#: ComfyUI's annotated names (``x.png [input]``) name their folder.
ANNOTATIONS = {" [input]": "input", " [output]": "output", " [temp]": "temp"}


@dataclass(frozen=True)
class FileRef:
    filename: str
    subfolder: str
    kind: str

    def query(self) -> dict[str, str]:
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.kind}


def original_of(text: str) -> FileRef | None:
    """The ``original_ref`` form field (``{"filename", "subfolder", "type"}``), or None."""
    try:
        ref = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(ref, dict) or not isinstance(ref.get("filename"), str):
        return None
    filename, kind = ref["filename"], str(ref.get("type") or "output")
    for suffix, annotated in ANNOTATIONS.items():
        if filename.endswith(suffix):
            filename, kind = filename.removesuffix(suffix), annotated
    return FileRef(filename, str(ref.get("subfolder") or ""), kind)


def masked(original: bytes, mask: bytes) -> bytes | None:
    """The original with the mask's alpha as its own, as PNG with the original's text metadata;
    None when either does not decode or their sizes differ."""
    try:
        with Image.open(io.BytesIO(original)) as image, Image.open(io.BytesIO(mask)) as drawn:
            metadata = PngInfo()
            for key, value in getattr(image, "text", {}).items():
                metadata.add_text(key, value)
            combined = image.convert("RGBA")
            combined.putalpha(drawn.convert("RGBA").getchannel("A"))
            out = io.BytesIO()
            combined.save(out, "PNG", compress_level=4, pnginfo=metadata)
    except Exception:  # Pillow: a broken file (many kinds of error) or sizes that differ (ValueError)
        return None
    return out.getvalue()


async def upload_mask(pool: Pool, request: Request, pin: int | None) -> Response:
    sent = await read_upload(request)
    if isinstance(sent, Response):
        return sent
    problem = await decoded(pool, upload_problem, sent.data, sent.name)
    if problem is not None:
        return PlainTextResponse(problem, status_code=400)
    original = original_of(sent.original_ref)
    if original is None:
        return PlainTextResponse("original_ref must be the JSON reference of the masked image.", status_code=400)
    status = bad_path(original.filename, original.subfolder, original.kind)
    if status is not None:
        return Response(status_code=status)
    found = await find(pool, original.query(), pin)
    if found is None:
        return PlainTextResponse(f"The image '{original.filename}' is on no running backend.", status_code=404)
    combined = await decoded(pool, masked, found[1], sent.data)
    if combined is None:
        return PlainTextResponse("The mask does not fit the image: both must decode, at the same size.",
                                 status_code=400)
    targets = running_targets(pool, pin)
    return await store_everywhere(targets, combined, sent.name, subfolder=sent.subfolder, kind=sent.kind,
                                  overwrite=sent.overwrite)
