"""``GET /View/<user>/<path>``: a saved image, as SwarmUI's ``WebServer.ViewOutput`` serves it.

Only the caller's own outputs, unless they hold ``view_others_outputs``; only image types (anything
else is "not found"), with ``X-Content-Type-Options: nosniff`` and ``Content-Security-Policy:
sandbox`` so a browser never runs one as a page; a path that would leave the user's folder is
refused as ``bad_path``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from swarmkeeper.api.permissions import VIEW_OTHERS_OUTPUTS
from swarmkeeper.features import Feature
from swarmkeeper.outputs.paths import BadPath
from swarmkeeper.outputs.store import OutputStore

if TYPE_CHECKING:
    from swarmkeeper.services import Services

log = logging.getLogger("swarmkeeper.outputs")
#: SwarmUI's Network.OutputCacheSeconds default.
CACHE_SECONDS = 30
#: nosniff: the browser keeps the type given; sandbox: even a file it rendered would run nothing.
SAFE = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
HEADERS = {**SAFE, "Cache-Control": f"private, max-age={CACHE_SECONDS}"}
BAD_PATH = "Unacceptable path. If you are the server owner, check program console log."


def output_store(services: Services) -> OutputStore:
    """The server's outputs: ``<data_dir>/Output`` (SwarmUI's OutputPath, per user)."""
    return OutputStore(services.config.data_dir / "Output")


def refusal(status: int, message: str, error_id: str) -> Response:
    return JSONResponse({"error": message, "error_id": error_id}, status_code=status, headers=SAFE)


async def view_output(request: Request) -> Response:
    services: Services = request.app.state.services
    user = await services.users.user_for_request(request)
    if user is None:
        return refusal(400, "invalid or unauthorized", "invalid_user")
    owner, _, path = request.path_params["path"].partition("/")
    if owner != user.id and not user.may(VIEW_OTHERS_OUTPUTS):
        return refusal(400, "unauthorized - you may not view other users' outputs", "unauthorized")
    try:
        found = output_store(services).find(owner, path)
    except BadPath as error:
        log.error("Refused a View path from user %s: %s", user.id, error)
        return refusal(400, BAD_PATH, "bad_path")
    if found is None:
        return refusal(404, "404, file not found.", "file_not_found")
    return FileResponse(found.path, media_type=found.media_type, headers=HEADERS)


def view_routes() -> list[BaseRoute]:
    return [Route("/View/{path:path}", view_output, methods=["GET", "HEAD"])]


OUTPUTS = Feature(name="outputs", http_routes=view_routes)
