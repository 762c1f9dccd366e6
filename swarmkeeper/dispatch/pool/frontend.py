"""ComfyUI's own web page on the pool: its frontend files and the read-only routes it calls that
only a ComfyUI can answer (translations, templates, extensions), taken from a running backend.

The page is served from a backend, not from a copy of ``comfyui-frontend-package`` installed
next to swarmkeeper: the frontend must be the version the backends' ComfyUI pins (its code calls
that ComfyUI's routes), swarmkeeper then needs no 50 MB dependency to keep in step, and the web
files of the backends' custom nodes (``/extensions/<node>/...``) come along. The first running
backend (lowest id; the one ``X-Swarm-Backend-ID`` names) that has a file serves it.
"""

from __future__ import annotations

import mimetypes
import re
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper.clients.errors import ComfyError, ComfyRequestError
from swarmkeeper.dispatch.pool.info import running_targets

if TYPE_CHECKING:
    from swarmkeeper.dispatch.pool.core import Pool

#: Folders of the frontend (and of the backends' custom nodes, templates and node docs).
STATIC_FOLDERS = frozenset({"assets", "scripts", "extensions", "fonts", "cursor", "templates", "docs"})
#: A file at the top of the frontend (index.html, materialdesignicons.min.css, user.css, ...).
TOP_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*\.[A-Za-z0-9]{1,12}")
#: Types the browser insists on (module scripts, fonts) that Python's table may not know.
MEDIA_TYPES = {
    ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".html": "text/html; charset=utf-8",
    ".json": "application/json", ".map": "application/json", ".svg": "image/svg+xml", ".webp": "image/webp",
    ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf", ".wasm": "application/wasm",
}
#: Frontends 1.32.2 to 1.34 route from the origin's root and show a blank page under a sub-path such
#: as /ComfyBackendDirect/ (ComfyUI_frontend#6995, SwarmUI's Comfy tab broke the same way). The
#: upstream fix (#7115) gives the router the page's own path; the pool makes that one change in
#: the entry script it serves. At the root of --comfy_port the path is "/": nothing changes there.
ROUTER_BASE = re.compile(rb"(history:\w+\?createWebHashHistory\(\):createWebHistory\()\w+(\))")
#: A Vite build's content-hashed file: its name changes whenever its content does.
HASHED_ASSET = re.compile(r"/assets/[A-Za-z0-9_.-]+-[A-Za-z0-9_-]{8}\.(js|mjs|css|woff2?|ttf|svg|png|webp|json)")
IMMUTABLE = "public, max-age=31536000, immutable"
CACHE_BYTES = 64 * 1024 * 1024
NO_BACKEND = ("No ComfyUI backend is running, and ComfyUI's page is served by one: start or add a backend "
              "(the Backends page is at / on swarmkeeper's main port).")


def media_type(path: str) -> str:
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def frontend_path(request: Request) -> str | None:
    """The file asked for, URL-quoted as it came (``/`` for the page), or None when it is not one
    of the frontend's files (nothing else is asked of a backend)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    marker = path.find("/", 1) if path.startswith("/ComfyBackendDirect") else 0
    rest = path[marker:] if marker >= 0 else "/"
    if rest in ("", "/", "/index.html"):
        return "/"
    parts = rest.lstrip("/").split("/")
    if any(part in ("", ".", "..") or "%2f" in part.lower() or "%5c" in part.lower() or "\\" in part
           for part in parts):
        return None
    if len(parts) == 1:
        return rest if TOP_FILE.fullmatch(parts[0]) else None
    return rest if parts[0] in STATIC_FOLDERS else None


def file_name(path: str) -> str:
    return "index.html" if path == "/" else urllib.parse.unquote(path)


def adjusted(path: str, data: bytes) -> bytes:
    if path.startswith("/assets/index-") and path.endswith(".js"):
        return ROUTER_BASE.sub(rb"\1window.location.pathname\2", data, count=1)
    return data


def served(path: str, data: bytes) -> Response:
    headers = {"X-Content-Type-Options": "nosniff",
               "Cache-Control": IMMUTABLE if HASHED_ASSET.fullmatch(path) else "no-cache"}
    return Response(data, media_type=media_type(file_name(path)), headers=headers)


class WebFiles:
    """``GET /``, ``/assets/...`` and the frontend's other files, from the first running backend
    that has the file. A build's hashed asset (``/assets/GraphView-DVNkY3oT.js``) never changes:
    browsers keep it for good, and the pool keeps the latest ones it served in memory (up to
    ``cache_bytes``), so a page load asks the backend only for what is new."""

    def __init__(self, cache_bytes: int = CACHE_BYTES) -> None:
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._cached_bytes = 0

    async def serve(self, pool: Pool, request: Request, pin: int | None) -> Response:
        path = frontend_path(request)
        if path is None:
            return Response(status_code=404)
        targets = running_targets(pool, pin)
        if not targets:
            return PlainTextResponse(NO_BACKEND, status_code=503)
        for target in targets:
            cached = self._cache.get((target.key, path))
            if cached is not None:
                self._cache.move_to_end((target.key, path))
                return served(path, cached)
            try:
                data = adjusted(path, await target.client().web_file(path))
            except (ComfyError, RuntimeError):
                continue
            if HASHED_ASSET.fullmatch(path):
                self._keep((target.key, path), data)
            return served(path, data)
        return Response(status_code=404)

    def _keep(self, key: tuple[str, str], data: bytes) -> None:
        if len(data) > self.cache_bytes // 8:
            return
        self._cache[key] = data
        self._cached_bytes += len(data)
        while self._cached_bytes > self.cache_bytes:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= len(dropped)


# --- read-only information only a ComfyUI knows ---


async def first_answer(pool: Pool, pin: int | None, call: Callable[[ComfyClient], Awaitable[Any]]) -> Any:
    """The first running backend's answer; None when none answers (a 404 counts as an answer: ``...``)."""
    for target in running_targets(pool, pin):
        try:
            return await call(target.client())
        except ComfyRequestError as error:
            if error.status == 404:
                return ...
        except (ComfyError, RuntimeError):
            continue
    return None


def backend_info(path: str, fallback: Any) -> Callable[[Pool, Request, int | None], Awaitable[Response]]:
    """A handler answering a backend's JSON for ``path`` (its ``{name}`` filled from the request),
    or ``fallback`` when no backend answers (a 404 when the fallback is None)."""

    async def handler(pool: Pool, request: Request, pin: int | None) -> Response:
        from swarmkeeper.dispatch.pool.routes import ComfyJSON

        filled = path.format(**{key: urllib.parse.quote(str(value), safe="")
                                for key, value in request.path_params.items()})
        query = urllib.parse.urlencode(request.query_params)
        found = await first_answer(pool, pin, lambda client: client.info_json(filled + ("?" + query if query else "")))
        if found is ... or (found is None and fallback is None):
            return Response(status_code=404)
        return ComfyJSON(fallback if found is None else found)

    return handler


async def model_folders(pool: Pool, request: Request, pin: int | None) -> Response:
    """``GET /experiment/models``: the folder names, without the backend's disk paths."""
    from swarmkeeper.dispatch.pool.routes import ComfyJSON

    found = await first_answer(pool, pin, lambda client: client.info_json("/experiment/models"))
    folders = found if isinstance(found, list) else []
    return ComfyJSON([{"name": entry["name"], "folders": []} for entry in folders
                      if isinstance(entry, dict) and isinstance(entry.get("name"), str)])


TABLE: list[tuple[str, str, Callable[[Pool, Request, int | None], Awaitable[Response]]]] = [
    ("GET", "/extensions", backend_info("/extensions", [])),
    ("GET", "/i18n", backend_info("/i18n", {})),
    ("GET", "/workflow_templates", backend_info("/workflow_templates", {})),
    ("GET", "/global_subgraphs", backend_info("/global_subgraphs", {})),
    ("GET", "/global_subgraphs/{id}", backend_info("/global_subgraphs/{id}", None)),
    ("GET", "/experiment/models", model_folders),
    ("GET", "/experiment/models/{folder}", backend_info("/experiment/models/{folder}", None)),
]
