"""Fixtures of the web tests: a real server on loopback, Debian's Chromium driven by Playwright
(never Playwright's own browser download), and pages that save a screenshot when the test ends."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from tests.servers import ROOT, LoopbackServer, ServerProcess, on_loopback, test_config
from tests.web.support import WEB_TYPES, backend_logs

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OUTPUT = ROOT / "test-output"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}

expect.set_options(timeout=10_000)


@pytest.fixture
async def web_server(data_dir: Path) -> AsyncIterator[LoopbackServer]:
    """A server with the dummy and process test types, its backend log lines kept."""
    async with on_loopback(test_config(data_dir, backend_type_modules=WEB_TYPES)) as server:
        with backend_logs(server.services.logs):
            yield server


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


class Pages:
    """Opens pages of the server; when the test ends, saves each page's screenshot into
    test-output/ and fails the test if a page had a JavaScript error."""

    def __init__(self, browser: Browser, server: LoopbackServer | ServerProcess, test_name: str) -> None:
        self.browser = browser
        self.server = server
        self.name = re.sub(r"[^\w.-]+", "_", test_name)
        self.opened: list[Page] = []
        self.errors: list[str] = []

    async def open(self, viewport: dict[str, int] | None = None, *, wait_live: bool = True) -> Page:
        context = await self.browser.new_context(viewport=viewport or DESKTOP)
        page = await context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("console", self._console)
        self.opened.append(page)
        await page.goto(self.server.url + "/")
        if wait_live:
            await expect(page.locator("#live-indicator")).to_have_text("Live")
        return page

    def _console(self, message: ConsoleMessage) -> None:
        # The browser reports HTTP error answers (a refused session, say) itself; those are the
        # API's business. Anything else logged as an error is the page's own failure.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"console error: {message.text}")

    def screenshot_path(self, index: int) -> Path:
        return OUTPUT / (f"{self.name}.png" if index == 0 else f"{self.name}-{index + 1}.png")

    async def close(self) -> None:
        OUTPUT.mkdir(exist_ok=True)
        for index, page in enumerate(self.opened):
            await page.screenshot(path=self.screenshot_path(index), full_page=True)
            await page.context.close()


@contextlib.asynccontextmanager
async def pages_of(browser: Browser, server: LoopbackServer | ServerProcess,
                   request: pytest.FixtureRequest) -> AsyncIterator[Pages]:
    opened = Pages(browser, server, request.node.name)
    yield opened
    await opened.close()
    assert not opened.errors, opened.errors


@pytest.fixture
async def pages(browser: Browser, web_server: LoopbackServer, request: pytest.FixtureRequest) -> AsyncIterator[Pages]:
    """Pages of ``web_server``."""
    async with pages_of(browser, web_server, request) as opened:
        yield opened
