"""What a user's role (GetNewSession's permissions) may not do is shown disabled, with the
reason; what the server refuses anyway is shown where it was asked."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from playwright.async_api import Locator, expect

from tests.servers import APIClient, LoopbackServer
from tests.web.conftest import Pages
from tests.web.support import RoleUsers
from tests.web.ui import card, status_is

pytestmark = pytest.mark.browser


async def add_running_dummy(server: LoopbackServer) -> int:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        api = APIClient(http)
        added = await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
        await api.ok("EditBackend", backend_id=added["id"], title="", settings={"Address": "dummy://x"})
        await api.wait_status(added["id"], "running")
    return int(added["id"])


async def disabled_because(control: Locator, permission: str, flag: str) -> None:
    await expect(control).to_be_disabled()
    await expect(control).to_have_attribute(
        "title", f'Your account cannot do this: it needs the "{permission}" permission ({flag}).')


async def test_a_poweruser_sees_what_their_role_cannot_do_disabled_with_the_reason(
        pages: Pages, web_server: LoopbackServer) -> None:
    backend_id = await add_running_dummy(web_server)
    web_server.services.users = RoleUsers("poweruser", "pat")
    page = await pages.open()
    await expect(page.locator("#user-name")).to_have_text("pat")
    await expect(page.locator("#permission-note")).to_have_text(
        'Some buttons are disabled because your account lacks these permissions: "Add/Remove Backends", '
        '"Edit Backends", "Toggle Backends", "View Logs".')
    await page.check("#show-advanced")
    for button in await page.locator("#add-buttons button").all():
        await disabled_because(button, "Add/Remove Backends", "add_remove_backends")
    shown = card(page, backend_id)
    await status_is(shown, "running")
    await disabled_because(shown.locator(".edit-button"), "Edit Backends", "edit_backends")
    await disabled_because(shown.locator(".toggle"), "Toggle Backends", "toggle_backends")
    await disabled_because(shown.locator(".delete-button"), "Add/Remove Backends", "add_remove_backends")
    await disabled_because(shown.locator(".logs-button"), "View Logs", "view_logs")
    for allowed in (".restart-button", ".force-restart-button", ".free-button"):
        await expect(shown.locator(allowed)).to_be_enabled()
    for allowed in ("#restart-all", "#free-vram", "#free-ram"):
        await expect(page.locator(allowed)).to_be_enabled()
    await shown.locator(".free-button").click()
    await expect(shown.locator(".action-message")).to_have_text("VRAM freed.")


async def test_a_user_who_may_not_view_backends_is_told_so(pages: Pages, web_server: LoopbackServer) -> None:
    web_server.services.users = RoleUsers("user", "uma")
    page = await pages.open(wait_live=False)
    await expect(page.locator("#blocked-message")).to_have_text(
        'Your account cannot do this: it needs the "View Backends List" permission (view_backends_list).')
    await expect(page.locator("#backends-view")).to_be_hidden()


async def test_a_locked_server_refusal_is_shown_on_the_card(pages: Pages, web_server: LoopbackServer) -> None:
    backend_id = await add_running_dummy(web_server)
    page = await pages.open()
    shown = card(page, backend_id)
    await status_is(shown, "running")
    services = web_server.services
    services.config = dataclasses.replace(services.config, lock_settings=True)  # as --lock_settings does
    await shown.locator(".toggle").click()  # not uncheck(): the refused switch flips back at once
    await expect(shown.locator(".action-message")).to_have_text("Settings are locked.")
    await expect(shown.locator(".action-message")).to_have_attribute("role", "alert")
    await expect(shown.locator(".toggle")).to_be_checked()
    await page.check("#show-advanced")
    await page.click('#add-buttons button[data-type-id="swarmkeeper_dummy"]')
    await page.click("#confirm-ok")
    await expect(page.locator("#add-message")).to_have_text("Could not add the backend: Settings are locked.")
