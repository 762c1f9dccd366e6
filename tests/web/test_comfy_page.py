"""ComfyUI's own page (the real frontend the backends' ComfyUI pins) on the pool, in Chromium, with
two real ComfyUIs behind it: the page loads with no console error, a saved model-free workflow is
opened from the page's Workflows panel and queued with its Run button several times, the image
shows in the page, both backends ran some of the prompts; a setting changed in the page's
Settings dialog (under /ComfyBackendDirect/ on the main port) is in swarmkeeper's data dir and
still set after a reload; with accounts on, it is in the logged-in user's own folder.

What the page may log and why (anything else fails the test):
- ``Failed to load resource: ... 404`` for the optional files ComfyUI itself answers 404 for
  while they do not exist (``user.css``, the user's ``user.css``, saved templates, the
  ``workflows``/``subgraphs`` folders before anything is saved in them): each one is checked
  against ``OPTIONAL_FILES``; any other answer of 400 or more fails.
- ``404`` for ``/assets/images/favicon_progress_16x16/frame_<n>.png`` at the origin's root: under
  ``/ComfyBackendDirect/`` the frontend asks for its tab icon's animation frames by an absolute path
  (outside the pool's prefix, like ComfyUI#14455); only the tab icon is missing.
- ``net::ERR_NAME_NOT_RESOLVED``: the frontend looks its node packs up on api.comfy.org, which
  this closed network cannot reach; every failed request is checked to be to another host.
- ``TypeError: Cannot read properties of undefined (reading 'id') at onChange``: frontend 1.32.9
  calls a setting's change hook before the setting is defined; ComfyUI 0.3.75's own page logs it
  on every load too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Request, Response, expect

from swarmkeeper.accounts.tokens import COOKIE
from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper.dispatch.pool.userdata import FOLDER
from tests.accounts_support import Accounted, write_settings
from tests.comfy_peer import RealComfyUI, unique_color
from tests.pool_support import PoolServer, pool_server
from tests.ports import free_port
from tests.servers import APIClient, on_loopback, test_config
from tests.web.conftest import DESKTOP, OUTPUT

pytestmark = [pytest.mark.browser, pytest.mark.comfyui]

PAGE_LOAD = 90_000  # ms: ~200 files through the pool from a CPU-bound ComfyUI on a shared machine
RUNS = 4
OPTIONAL_FILES = re.compile(r"/(api/userdata/user\.css|user\.css|favicon\.ico|api/userdata/comfy\.templates\.json"
                            r"|api/userdata/workflows%2F\.index\.json"
                            r"|api/userdata\?dir=(workflows|subgraphs%2F)&.*"
                            r"|assets/images/favicon_progress_16x16/frame_\d+\.png)$")
TOLERATED_CONSOLE = (re.compile(r"^Failed to load resource: the server responded with a status of 404"),
                     re.compile(r"^Failed to load resource: net::ERR_NAME_NOT_RESOLVED$"),
                     re.compile(r"^TypeError: Cannot read properties of undefined \(reading 'id'\)\s+at onChange "))


def ui_node(node_id: int, kind: str, x: int, widgets: list[Any], inputs: list[tuple[str, int]],
            output: int | None) -> dict[str, Any]:
    return {"id": node_id, "type": kind, "pos": [x, 100], "size": [260, 120], "flags": {}, "order": node_id - 1,
            "mode": 0, "properties": {"Node name for S&R": kind}, "widgets_values": widgets,
            "inputs": [{"name": name, "type": "IMAGE", "link": link} for name, link in inputs],
            "outputs": [] if output is None else [{"name": "IMAGE", "type": "IMAGE", "links": [output]}]}


def blur_invert_workflow(color: int, blurs: int = 4) -> dict[str, Any]:
    """EmptyImage → ImageBlur × ``blurs`` → ImageInvert → SaveImage as the page saves workflows: no
    model, and slow enough (wide blurs: seconds here, a few tenths on a fast idle CPU) that the
    second click's prompt finds the first backend busy."""
    nodes = [ui_node(1, "EmptyImage", 0, [256, 256, 1, color], [], 1)]
    nodes += [ui_node(n, "ImageBlur", 300 * (n - 1), [31, 5.0], [("image", n - 1)], n) for n in range(2, blurs + 2)]
    invert, save = blurs + 2, blurs + 3
    nodes += [ui_node(invert, "ImageInvert", 300 * (invert - 1), [], [("image", invert - 1)], invert),
              ui_node(save, "SaveImage", 300 * (save - 1), ["pool-page"], [("images", invert)], None)]
    links = [[n, n, 0, n + 1, 0, "IMAGE"] for n in range(1, save)]
    return {"last_node_id": save, "last_link_id": save - 1, "nodes": nodes, "links": links, "groups": [],
            "config": {}, "extra": {}, "version": 0.4}


@dataclass
class ComfyPage:
    """ComfyUI's page on the pool, with what it logged and what the pool refused it."""

    page: Page
    origin: str
    console: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def watch(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.console.append(f"page error: {error}"))
        self.page.on("response", self._response)
        self.page.on("requestfailed", self._failed)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(p.search(message.text) for p in TOLERATED_CONSOLE):
            self.console.append(message.text)

    def _response(self, response: Response) -> None:
        if response.status >= 400 and not (response.status == 404 and OPTIONAL_FILES.search(response.url)):
            self.refused.append(f"{response.status} {response.request.method} {response.url}")

    def _failed(self, request: Request) -> None:
        if urlsplit(request.url).netloc == urlsplit(self.origin).netloc and request.failure != "net::ERR_ABORTED":
            self.failed.append(f"{request.failure} {request.url}")

    def problems(self) -> list[str]:
        return self.console + self.refused + self.failed


@contextlib.asynccontextmanager
async def comfy_pages(browser: Browser, name: str) -> AsyncIterator[Callable[..., Any]]:
    """Opens ComfyUI's page at an address; when the test ends, saves screenshots and fails on any
    problem a page had."""
    opened: list[ComfyPage] = []

    async def open_page(url: str, token: str | None = None) -> ComfyPage:
        context = await browser.new_context(viewport=DESKTOP)
        if token is not None:  # logged in (SwarmUI's login cookie, as the main page's login form sets it)
            await context.add_cookies([{"name": COOKIE, "value": token, "url": url}])
        comfy = ComfyPage(await context.new_page(), url)
        comfy.watch()
        opened.append(comfy)
        await load(comfy)
        return comfy

    try:
        yield open_page
    finally:
        OUTPUT.mkdir(exist_ok=True)
        for index, comfy in enumerate(opened):
            await comfy.page.screenshot(path=OUTPUT / f"{name}{'' if index == 0 else f'-{index + 1}'}.png")
            await comfy.page.context.close()
    problems = [problem for comfy in opened for problem in comfy.problems()]
    assert not problems, problems


async def returning_user(http: httpx.AsyncClient) -> None:
    """Settings as a user has them after a first visit: the first-visit template browser (a dialog
    over the page whose thumbnails include files the templates package lacks) is not shown."""
    answer = await http.post("/api/settings", json={"Comfy.TutorialCompleted": True})
    assert answer.status_code == 200, answer.text


async def load(comfy: ComfyPage) -> None:
    await comfy.page.goto(comfy.origin + "/")
    await expect(comfy.page.locator(".workflows-tab-button")).to_be_visible(timeout=PAGE_LOAD)


async def histories(backends: list[RealComfyUI], color: int) -> list[int]:
    """How many prompts with this colour each backend ran (ComfyUI's own history, asked directly)."""
    counts = []
    for comfy in backends:
        async with ComfyClient(comfy.url) as direct:
            history = await direct.history()
        counts.append(sum(1 for entry in history.values() if entry["prompt"][2].get("1", {}).get("inputs", {})
                          .get("color") == color))
    return counts


async def wait_for_runs(backends: list[RealComfyUI], color: int, total: int) -> list[int]:
    async with asyncio.timeout(120):
        while sum(counts := await histories(backends, color)) < total:
            await asyncio.sleep(0.2)
    return counts


@pytest.fixture
async def two_backend_pool(data_dir: Path, real_comfyui: RealComfyUI,
                           real_comfyui_2: RealComfyUI) -> AsyncIterator[PoolServer]:
    """The pool on its own port before two real ComfyUIs, one prompt at a time each."""
    async with pool_server(data_dir, [real_comfyui.url, real_comfyui_2.url], over_queue=0) as pool:
        yield pool


async def test_a_workflow_queued_from_comfyuis_page_runs_on_both_backends_and_its_image_shows(
        browser: Browser, two_backend_pool: PoolServer, real_comfyui: RealComfyUI, real_comfyui_2: RealComfyUI,
        data_dir: Path, request: pytest.FixtureRequest) -> None:
    pool = two_backend_pool
    color = unique_color()
    async with httpx.AsyncClient(base_url=pool.comfy_url) as http:
        saved = await http.post("/api/userdata/workflows%2Fpool-page.json", content=json.dumps(
            blur_invert_workflow(color)).encode())
        assert saved.status_code == 200, saved.text
        await returning_user(http)
    assert (data_dir / FOLDER / "local" / "workflows" / "pool-page.json").is_file()

    async with comfy_pages(browser, request.node.name) as open_page:
        comfy: ComfyPage = await open_page(pool.comfy_url)
        page = comfy.page
        await page.locator(".workflows-tab-button").click()
        await page.get_by_text("pool-page.json", exact=True).click()
        await expect(page.get_by_text("pool-page", exact=True).first).to_be_visible()  # its tab (nodes are drawn)
        run = page.get_by_role("button", name="Run", exact=True)
        for _ in range(RUNS):
            await run.click()
        counts = await wait_for_runs([real_comfyui, real_comfyui_2], color, RUNS)
        assert sum(counts) == RUNS and min(counts) > 0, counts  # every prompt ran once, on both backends

        await page.locator(".queue-tab-button").click()
        shown = page.locator('img[src*="/api/view?filename=pool-page_"]').first
        await expect(shown).to_be_visible()
        size = await shown.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert size == [256, 256]  # the image decoded: fetched through the pool's /view


async def test_a_setting_changed_in_the_page_is_kept_in_swarmkeepers_data_dir(
        browser: Browser, data_dir: Path, real_comfyui: RealComfyUI, request: pytest.FixtureRequest) -> None:
    async with pool_server(data_dir, [real_comfyui.url]) as pool, \
            httpx.AsyncClient(base_url=pool.url + "/ComfyBackendDirect") as http, \
            comfy_pages(browser, request.node.name) as open_page:
        await returning_user(http)
        comfy: ComfyPage = await open_page(pool.url + "/ComfyBackendDirect")  # on the main port this time
        page = comfy.page
        await set_zoom_speed(page, "1.7")
        settings = data_dir / FOLDER / "local" / "comfy.settings.json"
        async with asyncio.timeout(10):
            while not settings.is_file() or json.loads(settings.read_text()).get("Comfy.Graph.ZoomSpeed") != 1.7:
                await asyncio.sleep(0.1)

        await load(comfy)
        await expect(await zoom_speed_field(page)).to_have_value("1.7")
        assert not any(path.is_file() for path in (real_comfyui.run_dir / "base" / "user").rglob("*")
                       if "ZoomSpeed" in path.read_text(errors="replace"))  # never on a backend


async def set_zoom_speed(page: Page, value: str) -> None:
    zoom = await zoom_speed_field(page)
    await zoom.click()
    await zoom.press("Control+a")
    await page.keyboard.type(value)  # typed: PrimeVue's number field ignores a value set at once
    await zoom.press("Tab")
    await expect(zoom).to_have_value(value)


async def zoom_speed_field(page: Page) -> Any:
    """The Settings dialog (Ctrl+,) filtered to the canvas zoom speed; its number field. Found in the
    setting's own row: the dialog filters its list a moment after the search is typed, and until it
    has, the first number field in it is another setting's (a slow run typed the value there)."""
    await page.keyboard.press("Control+,")
    search = page.get_by_placeholder("Search", exact=False).first
    await search.fill("canvas zoom speed")
    row = page.locator(".p-dialog .setting-item").filter(has_text="Canvas zoom speed")
    field = row.get_by_role("spinbutton")
    await expect(field).to_be_visible()
    return field


async def test_with_accounts_the_page_keeps_each_users_settings_in_their_own_folder(
        browser: Browser, data_dir: Path, real_comfyui: RealComfyUI, request: pytest.FixtureRequest) -> None:
    write_settings(data_dir, userauthorization={"AllowLocalhostBypass": False})
    port = free_port()
    pool_url = f"http://127.0.0.1:{port}"
    async with on_loopback(test_config(data_dir, comfy_port=port, require_accounts=True)) as server, \
            httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        accounts = Accounted(APIClient(http, server.services))
        for name, role in (("olga", "owner"), ("alice", "user"), ("bob", "user")):
            await accounts.add_user(name, role)
        owner = await accounts.session_for("olga")
        added = await accounts.ok("AddNewBackend", {"type_id": "comfyui_api"}, session=owner)
        await accounts.ok("EditBackend", {"backend_id": added["id"], "title": "comfy",
                                          "settings": {"Address": real_comfyui.url}}, session=owner)
        async with asyncio.timeout(60):
            while str(server.services.registry.get(added["id"]).status) != "running":  # type: ignore[union-attr]
                await asyncio.sleep(0.1)
        assert (await http.get(pool_url + "/")).status_code == 401  # not logged in: no page, no files
        alice, bob = await accounts.token_for("alice"), await accounts.token_for("bob")
        async with httpx.AsyncClient(base_url=pool_url, headers={"Cookie": f"{COOKIE}={alice}"}) as as_alice:
            await returning_user(as_alice)

        async with comfy_pages(browser, request.node.name) as open_page:
            comfy: ComfyPage = await open_page(pool_url, alice)
            await set_zoom_speed(comfy.page, "1.3")
            settings = data_dir / FOLDER / "alice" / "comfy.settings.json"
            async with asyncio.timeout(10):
                while not settings.is_file() or json.loads(settings.read_text()).get("Comfy.Graph.ZoomSpeed") != 1.3:
                    await asyncio.sleep(0.1)
        as_bob = await http.get(pool_url + "/api/settings", headers={"Cookie": f"{COOKIE}={bob}"})
        assert as_bob.status_code == 200 and "Comfy.Graph.ZoomSpeed" not in as_bob.json()
        assert not (data_dir / FOLDER / "bob").exists() and not (data_dir / FOLDER / "local").exists()
