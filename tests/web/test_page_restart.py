"""The page outlives its server: it says it is reconnecting while the server is down (a crash),
and is live again, with the same backends, once it is back. Its open stream never holds up a
server that is asked to stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.servers import APIClient, ServerProcess
from tests.web.conftest import pages_of
from tests.web.ui import card, status_is

pytestmark = pytest.mark.browser


@pytest.fixture
async def server_process(data_dir: Path) -> AsyncIterator[ServerProcess]:
    """``swarmkeeper serve`` as a child process (stopped at the end if still running)."""
    server = await asyncio.to_thread(ServerProcess(data_dir).start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def add_running_dummy(server: ServerProcess, title: str) -> int:
    async with server.client() as http:
        api = APIClient(http)
        added = await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
        await api.ok("EditBackend", backend_id=added["id"], title=title, settings={"Address": "dummy://x"})
    return int(added["id"])


async def test_the_page_reconnects_after_its_server_crashes_and_comes_back(
        browser: Browser, server_process: ServerProcess, request: pytest.FixtureRequest) -> None:
    async with pages_of(browser, server_process, request) as pages:
        page = await pages.open()
        first = await add_running_dummy(server_process, "before the crash")
        await status_is(card(page, first), "running")

        await asyncio.to_thread(server_process.kill)
        await expect(page.locator("#live-indicator")).to_have_text("Reconnecting…")
        await asyncio.to_thread(server_process.start)
        await expect(page.locator("#live-indicator")).to_have_text("Live")
        await status_is(card(page, first), "running")

        second = await add_running_dummy(server_process, "after the restart")
        await expect(card(page, second).locator(".card-title")).to_have_text("after the restart")
        await expect(page.locator("#page-message")).to_be_hidden()


async def test_an_open_page_does_not_hold_up_the_server_stopping(
        browser: Browser, server_process: ServerProcess, request: pytest.FixtureRequest) -> None:
    async with pages_of(browser, server_process, request) as pages:
        page = await pages.open()
        await asyncio.to_thread(server_process.stop)
        await expect(page.locator("#live-indicator")).to_have_text("Reconnecting…")
    assert "timeout graceful shutdown exceeded" not in server_process.output()
    assert "Shutdown complete" in server_process.output()
