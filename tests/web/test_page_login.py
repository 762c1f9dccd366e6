"""With accounts on, the page asks for a login (SwarmUI's Login route and swarm_token cookie),
shows the user's name, hides nothing it may not explain, and logs out."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from swarmkeeper import fds
from swarmkeeper.accounts.passwords import client_prehash
from swarmkeeper.config import ServerSettings, UserAuthorizationSettings
from swarmkeeper.files import write_atomic
from tests.servers import LoopbackServer, on_loopback, test_config
from tests.web.conftest import Pages, pages_of
from tests.web.support import WEB_TYPES

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


@pytest.fixture
def no_localhost_bypass(data_dir: Path) -> Path:
    """A Settings.fds without the localhost bypass: the browser runs on this machine."""
    settings = dataclasses.replace(ServerSettings(),
                                   userauthorization=UserAuthorizationSettings(AllowLocalhostBypass=False))
    data_dir.mkdir(parents=True)
    write_atomic(data_dir / "Settings.fds", fds.dumps(settings.to_fds()))
    return data_dir


@pytest.fixture
async def accounts_server(no_localhost_bypass: Path) -> AsyncIterator[LoopbackServer]:
    """Accounts required; users alice (owner) and pat (poweruser)."""
    config = test_config(no_localhost_bypass, backend_type_modules=WEB_TYPES, require_accounts=True)
    async with on_loopback(config) as server:
        accounts = server.services.accounts
        await accounts.add_user("alice", client_prehash("alice", PASSWORD), "owner")
        await accounts.add_user("pat", client_prehash("pat", PASSWORD), "poweruser")
        yield server


@pytest.fixture
async def account_pages(browser: Browser, accounts_server: LoopbackServer,
                        request: pytest.FixtureRequest) -> AsyncIterator[Pages]:
    async with pages_of(browser, accounts_server, request) as opened:
        yield opened


async def log_in(page: Page, username: str, password: str) -> None:
    await page.fill("#login-username", username)
    await page.fill("#login-password", password)
    await page.press("#login-password", "Enter")


async def test_the_page_asks_for_a_login_and_refuses_wrong_ones(account_pages: Pages) -> None:
    page = await account_pages.open(wait_live=False)
    await expect(page.locator("#login-view")).to_be_visible()
    await expect(page.locator("#backends-view")).to_be_hidden()
    await expect(page.locator("#login-username")).to_be_focused()
    await page.click("#login-button")
    await expect(page.locator("#login-error")).to_have_text("Enter your username.")
    await log_in(page, "alice", "wrong password")
    await expect(page.locator("#login-error")).to_have_text("Wrong username or password.")
    await log_in(page, '<img src=x onerror="window.__pwned=1">', PASSWORD)
    await expect(page.locator("#login-error")).to_have_text("Wrong username or password.")
    assert await page.evaluate("window.__pwned") is None
    await expect(page.locator("#backends-view")).to_be_hidden()


async def test_after_logging_in_the_page_is_live_and_logging_out_ends_it(account_pages: Pages) -> None:
    page = await account_pages.open(wait_live=False)
    await log_in(page, "alice", PASSWORD)
    await expect(page.locator("#live-indicator")).to_have_text("Live")
    await expect(page.locator("#login-view")).to_be_hidden()
    await expect(page.locator("#user-name")).to_have_text("alice")
    await expect(page.locator("#permission-note")).to_be_hidden()
    await expect(page.locator("#add-buttons button").first).to_be_enabled()
    cookies = {cookie["name"]: cookie for cookie in await page.context.cookies()}
    assert cookies["swarm_token"]["httpOnly"] is True

    await page.reload()
    await expect(page.locator("#live-indicator")).to_have_text("Live")
    await expect(page.locator("#user-name")).to_have_text("alice")

    await page.click("#logout-button")
    await expect(page.locator("#login-view")).to_be_visible()
    await expect(page.locator("#backends-view")).to_be_hidden()
    await expect(page.locator("#user-box")).to_be_hidden()
    assert "swarm_token" not in {cookie["name"] for cookie in await page.context.cookies()}
    answer = await page.evaluate("""fetch('API/GetNewSession', {method: 'POST', body: '{}',
        headers: {'Content-Type': 'application/json'}}).then(response => response.json())""")
    assert "session_id" not in answer and answer["error"]


async def test_a_poweruser_logs_in_to_a_page_with_what_they_cannot_do_disabled(account_pages: Pages) -> None:
    page = await account_pages.open(wait_live=False)
    await log_in(page, "pat", PASSWORD)
    await expect(page.locator("#live-indicator")).to_have_text("Live")
    await expect(page.locator("#user-name")).to_have_text("pat")
    await expect(page.locator("#permission-note")).to_contain_text('"Add/Remove Backends"')
    add = page.locator('#add-buttons button[data-type-id="test_process"]')
    await expect(add).to_be_disabled()
    await expect(add).to_have_attribute(
        "title", 'Your account cannot do this: it needs the "Add/Remove Backends" permission (add_remove_backends).')


async def test_a_login_that_ends_elsewhere_brings_back_the_login_form(
        account_pages: Pages, accounts_server: LoopbackServer) -> None:
    page = await account_pages.open(wait_live=False)
    await log_in(page, "alice", PASSWORD)
    await expect(page.locator("#live-indicator")).to_have_text("Live")
    await accounts_server.services.accounts.end_logins("alice")
    await expect(page.locator("#login-view")).to_be_visible()
    await expect(page.locator("#login-error")).to_have_text("Your login has ended. Log in again to continue.")
