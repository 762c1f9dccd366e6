"""The attacks of issue 13 on the ComfyUI pool, performed in Chromium (docs/security.md, 1 and 7).

- A least-rights user's ``GIF89a<script>`` file, opened by an owner at
  ``/ComfyBackendDirect/view`` on the main origin, runs no script: the owner's browser downloads it
  (or, for a real GIF, shows an image), and the user's role is unchanged. ``.svg`` likewise.
- A page on another origin (another loopback port) POSTing ``text/plain`` to the pool on both
  ports gets 403, and no prompt runs; its websocket to ``/ws`` never opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from PIL import Image
from playwright.async_api import Browser, BrowserContext, Page
from playwright.async_api import Error as PlaywrightError
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from swarmkeeper.accounts.tokens import COOKIE
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.backends.tuning import BackendTuning
from swarmkeeper_doubles.fake_comfyui import FakeComfyUI, run_fake_comfyui
from tests.accounts_support import Accounted, write_settings
from tests.comfy_peer import invert_graph
from tests.pool_support import TIMINGS, pool_server
from tests.ports import free_port
from tests.servers import APIClient, LoopbackServer, on_loopback, test_config

pytestmark = pytest.mark.browser

#: What the hostile file does if a browser ever runs it as a page on the main origin: make its
#: uploader an owner, with the session of whoever opened it.
RAISE_ME = b"""<script>
fetch('/API/GetNewSession', {method: 'POST', body: '{}'}).then(r => r.json()).then(s =>
  fetch('/API/AdminSetUserRole', {method: 'POST',
    body: JSON.stringify({session_id: s.session_id, name: 'mallory', role: 'owner'})}));
</script>"""


def real_gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(out, "GIF")
    return out.getvalue()


HOSTILE = {
    "cat.html": b"GIF89a" + RAISE_ME,
    "cat.svg": b'<svg xmlns="http://www.w3.org/2000/svg">' + RAISE_ME.replace(b"<script>", b"<script><![CDATA[")
    .replace(b"</script>", b"]]></script>") + b"</svg>",
    "real.html": real_gif() + RAISE_ME,  # a GIF that decodes, with the script after it
}


@dataclass
class AccountsPool:
    server: LoopbackServer
    accounts: Accounted
    fake: FakeComfyUI
    comfy_url: str


async def wait_running(server: LoopbackServer, backend_id: int) -> None:
    async with asyncio.timeout(30):
        while (record := server.services.registry.get(backend_id)) is None or \
                record.status is not BackendStatus.RUNNING:
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def accounts_pool(data_dir: Path) -> AsyncIterator[AccountsPool]:
    """Accounts on, no localhost bypass; owner olivia, guest mallory; one fake ComfyUI in the pool."""
    write_settings(data_dir, userauthorization={"AllowLocalhostBypass": False},
                   backends={"MaxBackendInitAttempts": 0})
    port = free_port()
    async with run_fake_comfyui() as fake, \
            on_loopback(test_config(data_dir, require_accounts=True, comfy_port=port)) as server, \
            httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        server.services.manager.services.tuning = BackendTuning(comfy=TIMINGS)
        accounts = Accounted(APIClient(http, server.services))
        await accounts.add_user("olivia", "owner")
        await accounts.add_user("mallory", "guest")
        owner = await accounts.session_for("olivia")
        added = await accounts.ok("AddNewBackend", {"type_id": "comfyui_api"}, session=owner)
        await accounts.ok("EditBackend", {"backend_id": added["id"], "title": "comfy", "settings": {
            "Address": fake.url, "OverQueue": 1}}, session=owner)
        await wait_running(server, int(added["id"]))
        yield AccountsPool(server, accounts, fake, f"http://127.0.0.1:{port}")


async def owner_context(browser: Browser, pool: AccountsPool) -> BrowserContext:
    context = await browser.new_context()
    token = await pool.accounts.token_for("olivia")
    await context.add_cookies([{"name": COOKIE, "value": token, "url": pool.server.url}])
    return context


async def open_file(page: Page, url: str) -> bool:
    """Open ``url`` as the owner would; True when the browser downloaded it instead of showing it."""
    downloads: list[object] = []
    page.on("download", lambda download: downloads.append(download))
    try:
        await page.goto(url)
    except PlaywrightError as error:  # Chromium aborts the navigation of a download
        assert "Download is starting" in error.message or "ERR_ABORTED" in error.message, error.message
        async with asyncio.timeout(10):
            while not downloads:
                await asyncio.sleep(0.02)
    return bool(downloads)


async def test_an_owner_opening_a_hostile_upload_runs_nothing(browser: Browser, data_dir: Path) -> None:
    async with accounts_pool(data_dir) as pool:
        mallory = await pool.accounts.token_for("mallory")
        async with httpx.AsyncClient(base_url=pool.comfy_url, cookies={COOKIE: mallory}) as comfy:
            for name, data in HOSTILE.items():
                answer = await comfy.post("/upload/image", files={"image": (name, data, "image/gif")})
                assert answer.status_code == 400, (name, answer.text)
        assert pool.fake.calls_to("/upload/image") == []
        for name, data in HOSTILE.items():  # on the backend anyway, as a file reached some other way would be
            pool.fake.engine.files.upload("input", "", name, data, True)
        context = await owner_context(browser, pool)
        page = await context.new_page()
        api_calls: list[str] = []
        page.on("request", lambda request: api_calls.append(request.url) if "/API/" in request.url else None)
        shown = {name: not await open_file(page, f"{pool.server.url}/ComfyBackendDirect/view?filename={name}"
                                                  f"&type=input") for name in HOSTILE}
        assert shown == {"cat.html": False, "cat.svg": False, "real.html": True}
        assert await page.evaluate("document.contentType") == "image/gif"  # shown as the image it is
        await context.close()
        assert api_calls == []
        assert (await pool.accounts.accounts.account("mallory")).role == "guest"


def evil_page(targets: list[str], sockets: list[str]) -> str:
    body = json.dumps({"prompt": invert_graph(0x0BAD00)})
    return f"""<!DOCTYPE html><title>evil</title><script>
const posts = {json.dumps(targets)}.map(url => fetch(url, {{method: 'POST', mode: 'no-cors',
  headers: {{'Content-Type': 'text/plain'}}, body: {json.dumps(body)}}}).catch(() => null));
const sockets = {json.dumps(sockets)}.map(url => new Promise(done => {{
  const socket = new WebSocket(url);
  socket.onopen = () => done('opened');
  socket.onerror = () => done('refused');
}}));
Promise.all([Promise.all(posts), Promise.all(sockets)]).then(([_, opened]) => {{
  window.socketResults = opened;
  document.title = 'sent';
}});
</script>"""


@contextlib.asynccontextmanager
async def site_serving(html: str) -> AsyncIterator[str]:
    """Another origin: a page served from its own loopback port."""
    app = Starlette(routes=[Route("/", lambda request: HTMLResponse(html))])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        await task


async def test_a_page_on_another_origin_cannot_use_the_pool(browser: Browser, data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.01) as fake, pool_server(data_dir, [fake.url]) as pool:
        bases = [pool.comfy_url, f"{pool.url}/ComfyBackendDirect"]
        targets = [base + path for base in bases for path in ("/prompt", "/api/prompt", "/interrupt", "/free")]
        sockets = [base.replace("http://", "ws://") + "/ws?clientId=evil" for base in bases]
        async with site_serving(evil_page(targets, sockets)) as url:
            context = await browser.new_context()
            page = await context.new_page()
            statuses: dict[str, int] = {}
            page.on("response", lambda response: statuses.__setitem__(response.url, response.status))
            await page.goto(url)
            await page.wait_for_function("document.title === 'sent'")
            assert await page.evaluate("window.socketResults") == ["refused", "refused"]
            await context.close()
        assert {target: statuses.get(target) for target in targets} == dict.fromkeys(targets, 403)
        assert fake.calls_to("/prompt", "POST") == [] and fake.calls_to("/free") == []
        assert pool.services.dispatch.pool.jobs == {}
