"""Files through the pool: ``/view`` from the backend that holds the file, ``/upload/image`` to
every backend that may run a prompt using it (``/upload/mask`` is in ``mask.py``).

Served files never run on the server's origin (docs/security.md, 1): the media type comes from the
content (``media.py``), anything not on its list is a download, and every answer forbids sniffing
and runs in a sandbox. An upload that is not the image its name says reaches no backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from swarmkeeper.clients.errors import ComfyError, ComfyRequestError
from swarmkeeper.dispatch.pool.body import TooLarge, body_limit, capped_request
from swarmkeeper.dispatch.pool.files import safe_filename, safe_subfolder
from swarmkeeper.dispatch.pool.info import running_targets
from swarmkeeper.dispatch.pool.media import DOWNLOAD, media_type, upload_problem
from swarmkeeper.dispatch.targets import Target

if TYPE_CHECKING:
    from swarmkeeper.dispatch.pool.core import Pool

T = TypeVar("T")
FOLDER_TYPES = ("output", "input", "temp")
#: On every file answer: no sniffing a type other than the one sent, and no script, form, plug-in
#: or same-origin access even if a browser did render the file as a page.
FILE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}


def disposition(filename: str, download: bool) -> str:
    """ComfyUI's ``filename="F"`` (``attachment`` first for a download), safe in a header whatever
    the name holds; a name that is not plain ASCII is also given in RFC 6266's ``filename*``."""
    plain = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    text = f'filename="{plain}"'
    if plain != filename:
        text += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return f"attachment; {text}" if download else text


def file_answer(data: bytes, filename: str, kind: str | None) -> Response:
    headers = {**FILE_HEADERS, "Content-Disposition": disposition(filename, kind is None)}
    return Response(data, media_type=kind or DOWNLOAD, headers=headers)


def refused(status: int) -> Response:
    return Response(status_code=status, headers=FILE_HEADERS)


async def decoded(pool: Pool, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` (a Pillow check) on the pool's decoder threads."""
    return await asyncio.get_running_loop().run_in_executor(pool.decoder, work, *args)


async def fetch_raw(target: Target, params: dict[str, str]) -> bytes | None:
    """One backend's /view answer; None when it does not have the file (or cannot be asked)."""
    extra = {key: value for key, value in params.items() if key not in ("filename", "subfolder", "type")}
    try:
        return await target.client().view(params["filename"], params.get("subfolder", ""),
                                          params.get("type", "output") or "output", extra)
    except (ComfyError, RuntimeError):
        return None


async def fetch(target: Target, params: dict[str, str]) -> Response | None:
    """One backend's file as the pool serves it (``file_answer``); None when it does not have it.
    (For generated images: small, so checked in place.)"""
    raw = await fetch_raw(target, params)
    if raw is None:
        return None
    return file_answer(raw, params["filename"], media_type(raw))


def bad_path(filename: str, subfolder: str, kind: str) -> int | None:
    """ComfyUI's answer to a file reference that may not be followed (None: it may)."""
    if not filename:
        return 404
    if not safe_filename(filename):
        return 400
    if not safe_subfolder(subfolder):
        return 403
    return 400 if kind not in FOLDER_TYPES else None


async def find(pool: Pool, query: dict[str, str], pin: int | None) -> tuple[str, bytes] | None:
    """The file ``query`` names (``filename``, ``subfolder``, ``type``, and /view's other parameters),
    from the backend that made it or else the first that has it: (its name there, its bytes)."""
    filename, subfolder = query.get("filename", ""), query.get("subfolder", "")
    located = pool.files.locate(query.get("type", "output") or "output", subfolder, filename)
    targets = running_targets(pool, pin)
    if located is not None:
        owner = [t for t in targets if t.record.id == located.backend_id]
        raw = await fetch_raw(owner[0], {**query, "filename": located.real_name}) if owner else None
        if raw is not None:
            return located.real_name, raw
    for raw in await asyncio.gather(*(fetch_raw(target, query) for target in targets)):
        if raw is not None:
            return filename, raw
    return None


async def view(pool: Pool, request: Request, pin: int | None) -> Response:
    """``GET /view``: ComfyUI's checks first (nothing is asked of a backend for a bad path)."""
    query = dict(request.query_params)
    status = bad_path(query.get("filename", ""), query.get("subfolder", ""), query.get("type", "output") or "output")
    if status is not None:
        return refused(status)
    found = await find(pool, query, pin)
    if found is None:
        return refused(404)
    name, raw = found
    return file_answer(raw, name, await decoded(pool, media_type, raw))


@dataclass(frozen=True)
class Upload:
    data: bytes
    name: str
    subfolder: str
    kind: str
    overwrite: bool
    #: /upload/mask: the JSON reference of the image the mask is for.
    original_ref: str = ""


async def upload(pool: Pool, request: Request, pin: int | None) -> Response:
    """``POST /upload/image``: checked, then stored on the first backend and under the same name on
    the others."""
    sent = await read_upload(request)
    if isinstance(sent, Response):
        return sent
    problem = await decoded(pool, upload_problem, sent.data, sent.name)
    if problem is not None:
        return PlainTextResponse(problem, status_code=400)
    targets = running_targets(pool, pin)
    if not targets:
        return PlainTextResponse("No backend is running to store the upload.", status_code=503)
    return await store_everywhere(targets, sent.data, sent.name, subfolder=sent.subfolder, kind=sent.kind,
                                   overwrite=sent.overwrite)


async def read_upload(request: Request) -> Upload | Response:
    """The multipart form (at most MaxNetworkRequestMegabytes), or ComfyUI's refusal of it."""
    try:
        async with capped_request(request, body_limit(request)).form(max_files=1, max_fields=20) as form:
            return await upload_of(form)
    except TooLarge:
        return PlainTextResponse("Request Entity Too Large", status_code=413)
    except Exception:  # a body that is not multipart form data: ComfyUI answers 400
        return Response(status_code=400)


async def upload_of(form: FormData) -> Upload | Response:
    image = form.get("image")
    if not isinstance(image, UploadFile):
        return Response(status_code=400)
    name = (image.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    subfolder = str(form.get("subfolder") or "")
    kind = str(form.get("type") or "input")
    if not name or not safe_filename(name) or not safe_subfolder(subfolder) or kind not in FOLDER_TYPES:
        return Response(status_code=400)
    overwrite = str(form.get("overwrite", "")).lower() in ("true", "1")
    original_ref = str(form.get("original_ref") or "")
    return Upload(await image.read(), name, subfolder, kind, overwrite, original_ref)


async def store_everywhere(targets: list[Target], data: bytes, name: str, **where: Any) -> Response:
    from swarmkeeper.dispatch.pool.routes import ComfyJSON

    first: dict[str, Any] | None = None
    for target in targets:
        try:
            stored = await target.client().upload_image(data, name if first is None else first["name"],
                                                        subfolder=where["subfolder"], type=where["kind"],
                                                        overwrite=where["overwrite"] if first is None else True)
        except ComfyRequestError as error:
            if first is None:
                return Response(status_code=error.status if 400 <= error.status < 500 else 502)
            continue
        except (ComfyError, RuntimeError):
            continue
        first = first or stored
    if first is None:
        return Response("No backend could store the upload.", status_code=502)
    return ComfyJSON(first)
