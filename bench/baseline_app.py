"""The baseline server: a bare Starlette route answering precomputed bytes (run by uvicorn)."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = Path(os.environ["BASELINE_BODY_FILE"]).read_bytes()


async def answer(request: Request) -> Response:
    await request.body()
    return Response(BODY, media_type="application/json", headers={"Cache-Control": "no-store"})


app = Starlette(routes=[Route("/API/{route:path}", answer, methods=["POST"])])
