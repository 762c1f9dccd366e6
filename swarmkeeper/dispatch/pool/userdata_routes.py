"""The frontend's user routes on the pool (ComfyUI's ``app/user_manager.py`` and
``app/app_settings.py``): ``/users``, ``/settings``, ``/userdata``, ``/v2/userdata`` and
``/userdata/{file}`` (GET, POST, DELETE, ``/move/{dest}``), each answered from the caller's own
folder (see :mod:`userdata`): the pool knows who calls, so ComfyUI's ``comfy-user`` header is
ignored and one user never sees another's files.

Stored files go back with ``X-Content-Type-Options: nosniff``, a sandboxing CSP, and a type that
is never HTML or script (JSON, CSS or bytes to download), as they are served on swarmkeeper's
main origin too.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from swarmkeeper.dispatch.pool.userdata import UserDataError, UserFiles, file_info, user_folder

if TYPE_CHECKING:
    from swarmkeeper.dispatch.pool.core import Pool
    from swarmkeeper.services import Services

SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox"}
INERT_TYPES = {"json": "application/json", "css": "text/css"}


def json_answer(content: Any, status: int = 200) -> Response:
    from swarmkeeper.dispatch.pool.routes import ComfyJSON

    return ComfyJSON(content, status_code=status)


async def files_of(request: Request) -> UserFiles:
    services: Services = request.app.state.services
    user = await services.users.user_for_request(request)
    return UserFiles(user_folder(services.config.data_dir, user.id if user is not None else ""))


def flag(request: Request, name: str, default: str = "false") -> bool:
    return request.query_params.get(name, default).lower() == "true"


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or UserDataError(413) past ``limit`` bytes."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise UserDataError(413, f"The file is larger than {limit // (1024 * 1024)} MB.")
    return bytes(raw)


async def read_json_body(request: Request, files: UserFiles) -> Any:
    try:
        return json.loads(await read_body(request, files.limits.file_bytes))
    except (ValueError, RecursionError):
        raise UserDataError(400, "The request body is not valid JSON.") from None


def refused(error: UserDataError) -> Response:
    return PlainTextResponse(error.message, status_code=error.status)


def unquoted(part: str) -> str:
    name = urllib.parse.unquote(part)
    return urllib.parse.unquote(name) if "%" in name else name  # as ComfyUI: names may come quoted twice


def file_parts(request: Request) -> list[str]:
    """``/userdata/<file>[/move/<dest>]`` from the raw path: a file's ``/`` travels as ``%2F``."""
    raw = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
    return [unquoted(part) for part in raw.split("/userdata/", 1)[-1].split("/")]


# --- users and settings ---


async def users_get(pool: Pool, request: Request, pin: int | None) -> Response:
    return json_answer({"storage": "server", "migrated": True})


async def users_post(pool: Pool, request: Request, pin: int | None) -> Response:
    return json_answer({"error": "Users are swarmkeeper's accounts: create them with `swarmkeeper users add`."}, 400)


async def settings_get(pool: Pool, request: Request, pin: int | None) -> Response:
    settings = (await files_of(request)).settings()
    setting_id = request.path_params.get("id")
    return json_answer(settings if setting_id is None else settings.get(setting_id))


async def settings_post(pool: Pool, request: Request, pin: int | None) -> Response:
    files = await files_of(request)
    try:
        value = await read_json_body(request, files)
        setting_id = request.path_params.get("id")
        if setting_id is None and not isinstance(value, dict):
            raise UserDataError(400, "The settings must be a JSON object.")
        files.update_settings(value if setting_id is None else {setting_id: value})
    except UserDataError as error:
        return refused(error)
    return Response(status_code=200)


# --- listings ---


async def userdata_list(pool: Pool, request: Request, pin: int | None) -> Response:
    folder = request.query_params.get("dir", "")
    if not folder:
        return PlainTextResponse("Directory not provided", status_code=400)
    try:
        found = (await files_of(request)).listing(folder, recurse=flag(request, "recurse"),
                                                  full_info=flag(request, "full_info"), split=flag(request, "split"))
    except UserDataError as error:
        return refused(error)
    return json_answer(found)


async def userdata_list_v2(pool: Pool, request: Request, pin: int | None) -> Response:
    try:
        return json_answer((await files_of(request)).listing_v2(request.query_params.get("path", "")))
    except UserDataError as error:
        return refused(error if error.status != 403 else UserDataError(400, "Invalid path requested"))


# --- one file ---


def stored_file(name: str, data: bytes) -> Response:
    kind = INERT_TYPES.get(name.rsplit(".", 1)[-1].lower()) if "." in name else None
    headers = dict(SAFE_HEADERS)
    if kind is None:
        headers["Content-Disposition"] = "attachment"
    return Response(data, media_type=kind or "application/octet-stream", headers=headers)


def saved_answer(files: UserFiles, path: Any, full_info: bool) -> Response:
    return json_answer(file_info(path, files.root) if full_info else path.relative_to(files.root).as_posix())


async def userdata_file(pool: Pool, request: Request, pin: int | None) -> Response:
    """GET, POST and DELETE ``/userdata/<file>``, POST ``/userdata/<file>/move/<dest>``."""
    parts = file_parts(request)
    files = await files_of(request)
    try:
        if len(parts) == 3 and parts[1] == "move" and request.method == "POST":
            moved = files.move(parts[0], parts[2], overwrite=request.query_params.get("overwrite") != "false")
            return saved_answer(files, moved, flag(request, "full_info"))
        if len(parts) != 1 or not parts[0]:
            return Response(status_code=404)
        return await one_file(files, parts[0], request)
    except UserDataError as error:
        return refused(error)


async def one_file(files: UserFiles, name: str, request: Request) -> Response:
    if request.method == "GET":
        return stored_file(name, files.read(name))
    if request.method == "DELETE":
        files.delete(name)
        return Response(status_code=204)
    data = await read_body(request, files.limits.file_bytes)
    saved = files.write(name, data, overwrite=request.query_params.get("overwrite") != "false")
    return saved_answer(files, saved, flag(request, "full_info"))


TABLE = [
    ("GET", "/users", users_get), ("POST", "/users", users_post),
    ("GET", "/settings", settings_get), ("GET", "/settings/{id}", settings_get),
    ("POST", "/settings", settings_post), ("POST", "/settings/{id}", settings_post),
    ("GET", "/userdata", userdata_list), ("GET", "/v2/userdata", userdata_list_v2),
    ("GET", "/userdata/{rest:path}", userdata_file), ("POST", "/userdata/{rest:path}", userdata_file),
    ("DELETE", "/userdata/{rest:path}", userdata_file),
]
