"""Managing backends through the page, in a real browser, with the dummy test type: add, edit,
toggle, restart (and force restart), free memory, read the log, delete."""

from __future__ import annotations

import asyncio
import logging

import pytest
from playwright.async_api import APIResponse, Route, expect

from swarmkeeper.backends.record import BackendRecord, backend_logger
from tests.servers import LoopbackServer
from tests.web.conftest import Pages
from tests.web.support import status_of, until
from tests.web.ui import add_backend, backend_id_of, card, confirm, edit, fill, save, saved, status_is

pytestmark = pytest.mark.browser


def record_of(server: LoopbackServer, backend_id: int) -> BackendRecord:
    record = server.services.registry.get(backend_id)
    assert record is not None, f"backend {backend_id} is not registered"
    return record


async def test_a_backend_is_added_configured_toggled_restarted_freed_and_deleted(
        pages: Pages, web_server: LoopbackServer) -> None:
    page = await pages.open()
    await expect(page.locator("#empty-note")).to_be_visible()
    await expect(page.locator("#server-status")).to_contain_text("No backends present")

    new = await add_backend(page, "swarmkeeper_dummy")
    backend_id = await backend_id_of(new)
    await status_is(new, "disabled")
    await expect(new.locator(".reason")).to_have_text("No address is set.")
    await expect(new.locator('.backend-form [name="title"]')).to_be_focused()

    await fill(new, title="GPU box", Address="dummy://gpu", Token="s3cret", OverQueue="2", Ratio="0.25", Flag=True,
               Mode="ok")
    await save(new)
    await status_is(new, "running")
    await expect(new.locator(".reason")).to_be_hidden()
    await expect(new.locator(".card-title")).to_have_text("GPU box")
    await expect(page.locator("#server-status")).to_have_text("All backends are ready.")
    settings = record_of(web_server, backend_id).settings
    assert (settings.Address, settings.Token, settings.OverQueue, settings.Ratio, settings.Flag) == (
        "dummy://gpu", "s3cret", 2, 0.25, True)

    await new.locator(".toggle").uncheck()
    await status_is(new, "disabled")
    await expect(new.locator(".reason")).to_have_text("Disabled by the user.")
    assert record_of(web_server, backend_id).enabled is False
    await new.locator(".toggle").check()
    await status_is(new, "running")
    assert record_of(web_server, backend_id).enabled is True

    inits = record_of(web_server, backend_id).backend.inits
    await new.locator(".restart-button").click()
    await confirm(page)
    await expect(new.locator(".action-message")).to_have_text("Restarting…")
    await until(lambda: record_of(web_server, backend_id).backend.inits == inits + 1
                and status_of(web_server, backend_id) == "running", "the backend restarted")
    await status_is(new, "running")

    await new.locator(".free-button").click()
    await expect(new.locator(".action-message")).to_have_text("VRAM freed.")
    assert record_of(web_server, backend_id).backend.freed == [False]

    await new.locator(".delete-button").click()
    await expect(page.locator("#confirm-message")).to_contain_text('"GPU box" is shut down and removed')
    await confirm(page)
    await expect(new).to_have_count(0)
    await expect(page.locator("#all-message")).to_have_text(f"Deleted backend #{backend_id}.")
    assert web_server.services.registry.get(backend_id) is None


async def test_an_untouched_secret_keeps_its_value_and_a_typed_one_replaces_it(
        pages: Pages, web_server: LoopbackServer) -> None:
    page = await pages.open()
    new = await add_backend(page, "swarmkeeper_dummy")
    backend_id = await backend_id_of(new)
    await fill(new, Address="dummy://a", Token="first")
    await save(new)
    await expect(new.locator(".settings-list")).to_contain_text("•••••• (saved)")

    await edit(new, title="renamed")
    await expect(new.locator('.backend-form [name="Token"]')).to_have_attribute("type", "password")
    await expect(new.locator('.backend-form [name="Token"]')).to_have_value("")
    await save(new)
    await expect(new.locator(".card-title")).to_have_text("renamed")
    assert record_of(web_server, backend_id).settings.Token == "first"

    await edit(new, Token="second")
    await saved(new)
    assert record_of(web_server, backend_id).settings.Token == "second"

    await new.locator(".edit-button").click()
    await new.locator(".secret-clear").check()
    await save(new)
    await expect(new.locator(".settings-list")).to_contain_text("(not set)")
    assert record_of(web_server, backend_id).settings.Token == ""


async def test_dropdowns_show_value_names_and_send_values(pages: Pages, web_server: LoopbackServer) -> None:
    page = await pages.open()
    new = await add_backend(page, "swarmkeeper_dummy")
    backend_id = await backend_id_of(new)
    mode = new.locator('.backend-form [name="Mode"]')
    await expect(mode.locator("option")).to_have_text(
        ["Succeeds", "Fails every time", "Never finishes", "Settings can never work",
         "Succeeds, but cannot free memory", "Succeeds, but freeing memory raises"])
    await mode.select_option(label="Settings can never work")
    await fill(new, Address="dummy://b")
    await save(new)
    await status_is(new, "errored")
    await expect(new.locator(".reason")).to_have_text("Dummy backend settings can never work")
    await expect(new.locator(".settings-list")).to_contain_text("Settings can never work")
    assert record_of(web_server, backend_id).settings.Mode == "config"


async def test_a_backend_that_fails_shows_why_on_its_card(pages: Pages) -> None:
    page = await pages.open()
    new = await add_backend(page, "swarmkeeper_dummy")
    await fill(new, Address="dummy://broken", Mode="fail")
    await save(new)
    await status_is(new, "errored")
    await expect(new.locator(".reason")).to_have_text(
        "Dummy backend at dummy://broken failed to start (gave up after 4 attempts)")
    await expect(new.locator(".restart-button")).to_be_enabled()
    await expect(page.locator("#server-status")).to_have_text(
        "Some backends have errored on the server. Check the server logs for details.")
    await expect(page.locator("#server-status")).to_have_attribute("data-class", "error")


async def test_a_stuck_backend_can_only_be_force_restarted(pages: Pages, web_server: LoopbackServer) -> None:
    page = await pages.open()
    new = await add_backend(page, "swarmkeeper_dummy")
    backend_id = await backend_id_of(new)
    await fill(new, Address="dummy://stuck", Mode="hang")
    await save(new)
    await status_is(new, "loading")
    restart = new.locator(".restart-button")
    await expect(restart).to_be_disabled()
    await expect(restart).to_have_attribute("title", "Only a running or errored backend can restart (this one is "
                                                     "loading); Force restart works in any status.")
    inits = record_of(web_server, backend_id).backend.inits
    await new.locator(".force-restart-button").click()
    await expect(page.locator("#confirm-title")).to_have_text(f"Force restart backend #{backend_id}?")
    await confirm(page)
    await expect(new.locator(".action-message")).to_have_text("Restarting…")
    await until(lambda: record_of(web_server, backend_id).backend.inits == inits + 1, "a new init started")
    await status_is(new, "loading")


async def test_memory_is_freed_on_every_running_backend_from_the_toolbar(
        pages: Pages, web_server: LoopbackServer) -> None:
    page = await pages.open()
    first = await add_backend(page, "swarmkeeper_dummy")
    await fill(first, Address="dummy://1")
    await save(first)
    await status_is(first, "running")
    backend = record_of(web_server, await backend_id_of(first)).backend
    await page.click("#free-vram")
    await expect(page.locator("#all-message")).to_have_text("Freed VRAM on 1 backend.")
    await page.click("#free-ram")
    await expect(page.locator("#all-message")).to_have_text("Freed VRAM and system RAM on 1 backend.")
    assert backend.freed == [False, True]
    await first.locator(".toggle").uncheck()
    await status_is(first, "disabled")
    await page.click("#free-vram")
    await expect(page.locator("#all-message")).to_have_text("No running backend to free memory on.")


async def test_restart_all_restarts_running_backends(pages: Pages, web_server: LoopbackServer) -> None:
    page = await pages.open()
    new = await add_backend(page, "swarmkeeper_dummy")
    await fill(new, Address="dummy://1")
    await save(new)
    await status_is(new, "running")
    await page.click("#restart-all")
    await confirm(page)
    await expect(page.locator("#all-message")).to_have_text("Restarting 1 backend.")
    await status_is(new, "running")


async def test_the_id_can_be_changed_to_reorder_backends(pages: Pages, web_server: LoopbackServer) -> None:
    page = await pages.open()
    first = await add_backend(page, "swarmkeeper_dummy")
    await saved(first)
    second = await add_backend(page, "swarmkeeper_dummy")
    await saved(second)
    first_id, second_id = await backend_id_of(first), await backend_id_of(second)
    await edit(second, id="7", title="moved")
    await save(second)
    moved = card(page, 7)
    await expect(moved.locator(".card-title")).to_have_text("moved")
    await expect(card(page, second_id)).to_have_count(0)
    ids = await page.locator(".card").evaluate_all("cards => cards.map(card => card.dataset.backendId)")
    assert ids == [str(first_id), "7"]
    assert web_server.services.registry.get(7) is not None


async def test_an_id_change_seen_by_the_live_list_first_leaves_one_card(
        pages: Pages, web_server: LoopbackServer) -> None:
    # The page re-reads the list on every pushed change. When that read shows the new id before
    # EditBackend's own answer arrives (a busy machine), the page used to make a second card for it.
    page = await pages.open()
    first = await add_backend(page, "swarmkeeper_dummy")
    await saved(first)
    second = await add_backend(page, "swarmkeeper_dummy")
    await saved(second)
    first_id = await backend_id_of(first)
    held: list[tuple[Route, APIResponse]] = []
    answered = asyncio.Event()

    async def hold(route: Route) -> None:
        held.append((route, await route.fetch()))  # applied on the server; the page waits
        answered.set()

    await page.route("**/API/EditBackend", hold)
    await edit(second, id="7", title="moved")
    await save(second)
    await asyncio.wait_for(answered.wait(), 10)
    await expect(card(page, 7)).to_have_count(1)  # shown by the live list read
    ((route, answer),) = held
    await route.fulfill(response=answer)
    await expect(card(page, 7).locator(".card-title")).to_have_text("moved")
    await expect(card(page, 7)).to_contain_text("the ID is now 7")
    await expect(page.locator(".card")).to_have_count(2)
    ids = await page.locator(".card").evaluate_all("cards => cards.map(card => card.dataset.backendId)")
    assert ids == [str(first_id), "7"]


async def test_a_backends_log_is_shown_as_it_grows(pages: Pages, web_server: LoopbackServer) -> None:
    page = await pages.open()
    new = await add_backend(page, "swarmkeeper_dummy")
    await save(new)
    backend_id = await backend_id_of(new)
    backend_logger(backend_id).info("first line from the backend")
    await new.locator(".logs-button").click()
    lines = new.locator(".log-lines")
    await expect(lines).to_contain_text("[Info] first line from the backend")
    backend_logger(backend_id).log(logging.WARNING, "second line <b>not bold</b>")
    await expect(lines).to_contain_text("[Warning] second line <b>not bold</b>")
    await expect(lines.locator("b")).to_have_count(0)
    await new.locator(".logs-button").click()
    await expect(lines).to_be_hidden()
    backend_logger(backend_id).error("third line, read while the log was hidden")
    await new.locator(".logs-button").click()
    await expect(lines).to_contain_text("[Error] third line, read while the log was hidden")
    await expect(lines.locator(".log-line")).to_have_count(3)
