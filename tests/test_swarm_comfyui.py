"""A → B, each its own server process, where B runs a real ComfyUI backend (``comfyui_api``): A
shows B's ComfyUI as a non-real child with its features and models, FreeBackendMemory on A reaches
B's ComfyUI as ``POST /free``, and A follows B going away and coming back.

B reaches the real ComfyUI through a recording proxy in this process, so the test sees exactly
what ComfyUI received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from swarmkeeper.net import COMFY_KEEP_ALIVE_SECONDS
from tests.comfy_peer import RealComfyUI
from tests.ports import free_port
from tests.servers import ServerProcess
from tests.swarm_support import add_backend, add_swarm, api_at, children, listing, wait_children, wait_parent

pytestmark = pytest.mark.comfyui


class RecordingProxy:
    """Forwards every HTTP request to ComfyUI and keeps (method, path, body) of each."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.seen: list[tuple[str, str, bytes]] = []
        self.url = ""

    async def forward(self, request: Request) -> Response:
        body = await request.body()
        self.seen.append((request.method, request.url.path, body))
        async with httpx.AsyncClient(base_url=self.target, timeout=60) as http:
            answer = await http.request(request.method, request.url.path, params=request.query_params, content=body,
                                        headers={"content-type": request.headers.get("content-type", "")})
        return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))

    def posts_to(self, path: str) -> list[bytes]:
        return [body for method, seen_path, body in self.seen if method == "POST" and seen_path == path]


@contextlib.asynccontextmanager
async def recording_proxy(target: str) -> AsyncIterator[RecordingProxy]:
    proxy = RecordingProxy(target)
    app = Starlette(routes=[Route("/{path:path}", proxy.forward, methods=["GET", "POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="off", timeout_keep_alive=COMFY_KEEP_ALIVE_SECONDS))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    proxy.url = f"http://127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    b, a = ServerProcess(tmp_path / "B").start(), ServerProcess(tmp_path / "A").start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


async def test_a_uses_the_real_comfyui_of_b(processes: tuple[ServerProcess, ServerProcess],
                                            real_comfyui: RealComfyUI) -> None:
    a, b = processes
    async with recording_proxy(real_comfyui.url) as proxy, api_at(b.url) as b_api, api_at(a.url) as a_api:
        comfy = await add_backend(b_api, "comfyui_api", "b comfy", Address=proxy.url)
        b_entry = await b_api.wait_status(comfy, "running", timeout=60)
        assert "comfyui" in b_entry["features"]
        parent = await add_swarm(a_api, b.url, "B")
        (child,) = await wait_children(a_api, parent, 1, timeout=60)
        assert child["remote_type"] == "comfyui_api" and child["remote_id"] == comfy
        assert child["title"] == "[Remote from 0: B] b comfy"
        assert child["features"] == b_entry["features"] and child["can_load_models"] is True
        assert (await listing(a_api))[str(parent)]["features"] == b_entry["features"]
        for category in ("Stable-Diffusion", "VAE", "LoRA"):
            on_b = await b_api.ok("ListModels", path="", depth=20, subtype=category)
            on_a = await a_api.ok("ListModels", path="", depth=20, subtype=category)
            assert [f["name"] for f in on_a["files"]] == [f["name"] for f in on_b["files"]], category
            assert all(f["local"] is False for f in on_a["files"]) and all(f["local"] for f in on_b["files"])
        vae = await a_api.ok("ListModels", path="", depth=20, subtype="VAE")
        assert "pixel_space" in [f["name"] for f in vae["files"]]  # a model of the real ComfyUI, seen from A

        assert await a_api.ok("FreeBackendMemory", backend=str(child["id"])) == {"result": True, "count": 1}
        assert [json.loads(body) for body in proxy.posts_to("/free")] == [{"unload_models": True,
                                                                           "free_memory": False}]

        b.stop()
        entry = await wait_parent(a_api, parent, "errored", "Connection refused")
        assert entry["status_reason"].startswith(f"Cannot use the remote Swarm at {b.url}")
        assert [c["status"] for c in children(await listing(a_api), parent)] == ["errored"]
        b.start()  # B loads its ComfyUI backend again from Backends.fds; A is left alone
        await wait_parent(a_api, parent, "running", timeout=60)
        (back,) = await wait_children(a_api, parent, 1, timeout=60)
        assert back["remote_id"] == comfy and back["features"] == b_entry["features"]
