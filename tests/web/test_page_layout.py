"""The page is usable at phone width and from the keyboard, and remembers "Show Advanced"."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import pytest
from playwright.async_api import APIResponse, Route, expect

from swarmkeeper.testing.dummy_backend import DummySettings
from tests.servers import APIClient, LoopbackServer
from tests.web.conftest import PHONE, Pages
from tests.web.ui import add_backend, backend_id_of, card, fill, save, saved, status_is

pytestmark = pytest.mark.browser


async def test_the_page_fits_a_phone(pages: Pages) -> None:
    page = await pages.open(PHONE)
    new = await add_backend(page, "swarmkeeper_dummy")
    await fill(new, title="A rather long backend title that has to wrap on a phone", Address="dummy://phone")
    await save(new)
    await status_is(new, "running")
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    box = await new.bounding_box()
    assert box is not None and box["width"] <= PHONE["width"]
    for button in await new.locator(".actions button").all():
        button_box = await button.bounding_box()
        assert button_box is not None and button_box["x"] + button_box["width"] <= PHONE["width"]


async def test_a_backend_can_be_added_and_saved_from_the_keyboard(pages: Pages, web_server: LoopbackServer) -> None:
    page = await pages.open()
    await page.check("#show-advanced")
    add = page.locator('#add-buttons button[data-type-id="swarmkeeper_dummy"]')
    await add.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#confirm-dialog")).to_be_visible()
    await expect(page.locator("#confirm-cancel")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.locator("#confirm-dialog")).to_be_hidden()
    assert len(web_server.services.registry) == 0

    await page.keyboard.press("Enter")
    await expect(page.locator("#confirm-cancel")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.locator("#confirm-ok")).to_be_focused()
    await page.keyboard.press("Enter")
    title = page.locator('.backend-form [name="title"]')
    await expect(title).to_be_focused()
    await page.keyboard.type("typed with keys")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await page.keyboard.type("dummy://keys")
    await page.keyboard.press("Enter")
    shown = page.locator(".card").first
    await status_is(shown, "running")
    await expect(shown.locator(".card-title")).to_have_text("typed with keys")
    await expect(shown.locator(".edit-button")).to_be_focused()


async def test_a_confirmation_is_not_answered_by_the_close_of_the_one_before(pages: Pages) -> None:
    # The browser fires a <dialog>'s `close` in a later task. A confirmation cancelled with Escape and
    # asked again at once (a fast keyboard, a busy machine) used to take that late event as its own
    # answer: the second dialog stayed open, but its OK added nothing.
    page = await pages.open()
    answers = await page.evaluate("""async () => {
        const {confirmAction} = await import('./static/dialog.js');
        const dialog = document.getElementById('confirm-dialog');
        const closed = () => new Promise((done) => dialog.addEventListener('close', done, {once: true}));
        const first = confirmAction({title: 'one', message: 'first'});
        const late = closed();
        dialog.close();
        window.secondAnswer = 'unanswered';
        confirmAction({title: 'two', message: 'second'}).then((ok) => { window.secondAnswer = ok; });
        await late;  // the first showing's late close event, delivered while the second is open
        await null;
        await null;
        return {first: await first, second: window.secondAnswer, open: dialog.open};
    }""")
    assert answers == {"first": False, "second": "unanswered", "open": True}
    await page.click("#confirm-ok")
    await expect(page.locator("#confirm-dialog")).to_be_hidden()
    await page.wait_for_function("window.secondAnswer === true")


async def test_show_advanced_reveals_the_advanced_types_and_is_remembered(pages: Pages) -> None:
    page = await pages.open()
    standard = page.locator('#add-buttons button[data-type-id="test_process"]')
    advanced = page.locator('#add-buttons button[data-type-id="swarmkeeper_dummy"]')
    await expect(standard).to_be_visible()
    await expect(advanced).to_be_hidden()
    await page.check("#show-advanced")
    await expect(advanced).to_be_visible()
    await expect(advanced).to_have_attribute("title", "A backend that only pretends, for tests.")
    await page.reload()
    await expect(page.locator("#show-advanced")).to_be_checked()
    await expect(advanced).to_be_visible()
    await advanced.click()
    await expect(page.locator("#confirm-warning")).to_contain_text("advanced users only")
    await page.click("#confirm-cancel")


async def test_internal_backends_are_shown_on_request_with_their_parent(
        pages: Pages, web_server: LoopbackServer) -> None:
    page = await pages.open()
    parent = await add_backend(page, "swarmkeeper_dummy")
    await saved(parent)
    record = web_server.services.registry.get(await backend_id_of(parent))
    assert record is not None
    child = record.spawn_child("swarmkeeper_dummy", DummySettings(Address="dummy://child"), "child")
    await expect(card(page, child.id)).to_have_count(0)
    await page.check("#show-nonreal")
    shown = card(page, child.id)
    await status_is(shown, "running")
    await expect(shown.locator(".type-name")).to_have_text(f"Dummy (tests) · internal, made by #{record.id}")
    await expect(shown.locator(".edit-button")).to_have_attribute("title", "Internal backends are managed by "
                                                                           "their parent.")


async def test_every_status_is_readable_at_a_glance(pages: Pages, web_server: LoopbackServer) -> None:
    """One card per status, each with its colour and its reason; the README's screenshot."""
    async with httpx.AsyncClient(base_url=web_server.url, timeout=10) as http:
        api = APIClient(http)

        async def backend(type_id: str, title: str, **settings: str) -> int:
            added = await api.ok("AddNewBackend", type_id=type_id)
            await api.ok("EditBackend", backend_id=added["id"], title=title, settings=settings)
            return int(added["id"])

        running = await backend("swarmkeeper_dummy", "Render node A", Address="http://10.0.0.5:8188")
        errored = await backend("swarmkeeper_dummy", "Render node B", Address="http://10.0.0.6:8188", Mode="config")
        switched_off = await backend("swarmkeeper_dummy", "Spare GPU", Address="http://10.0.0.7:8188")
        await api.ok("ToggleBackend", backend_id=switched_off, enabled=False)
        loading = await backend("swarmkeeper_dummy_sequential", "Big model box", Address="gpu-3", Mode="hang")
        waiting = await backend("swarmkeeper_dummy_sequential", "Queued box", Address="gpu-4")
        crashed = await backend("test_process", "Local worker")
        await api.wait_status(crashed, "running")
        record = web_server.services.registry.get(crashed)
        assert record is not None and record.backend.process is not None
        os.kill(record.backend.process.pid, signal.SIGKILL)
    page = await pages.open()
    expected = {
        running: ("running", ""),
        errored: ("errored", "Dummy backend settings can never work"),
        switched_off: ("disabled", "Disabled by the user."),
        loading: ("loading", "Starting..."),
        waiting: ("waiting", "Waiting to load..."),
        crashed: ("errored", "The process exited unexpectedly (killed by SIGKILL)."),
    }
    for backend_id, (status, reason) in expected.items():
        shown = card(page, backend_id)
        await status_is(shown, status)
        if reason:
            await expect(shown.locator(".reason")).to_have_text(reason)
        else:
            await expect(shown.locator(".reason")).to_be_hidden()
    colours = await page.locator(".card").evaluate_all(
        "cards => cards.map(card => getComputedStyle(card).borderLeftColor)")
    assert len(set(colours)) == 5  # five statuses shown, each in its own colour
    await expect(page.locator("#summary")).to_have_text("6 backends: 1 running, 2 errored, 1 disabled, 1 loading, "
                                                        "1 waiting")


async def test_standard_types_come_first(pages: Pages, web_server: LoopbackServer) -> None:
    page = await pages.open()
    await page.check("#show-advanced")
    shown = await page.locator("#add-buttons button").evaluate_all(
        "buttons => buttons.map(button => button.dataset.typeId)")
    registered = list(web_server.services.types)
    standard = [t.id for t in registered if t.standard]
    assert shown == standard + [t.id for t in registered if not t.standard]
    assert standard and len(shown) > len(standard)


async def test_a_list_read_before_an_add_does_not_take_the_new_card_away(pages: Pages) -> None:
    """The list is re-read on pushed changes; one asked for before an add and answered after it
    does not hold the new backend, and must not drop its card (with its open edit form)."""
    page = await pages.open()
    held: list[tuple[Route, APIResponse]] = []
    one_held = asyncio.Event()

    async def hold_the_first(route: Route) -> None:
        if one_held.is_set():
            await route.continue_()
        else:  # the server answers now; the page gets that answer only later
            held.append((route, await route.fetch()))
            one_held.set()

    await page.route("**/API/ListBackends", hold_the_first)
    await page.check("#show-nonreal")  # re-reads the list: that answer is held
    await asyncio.wait_for(one_held.wait(), 10)
    new = await add_backend(page, "swarmkeeper_dummy")
    ((stale, answer),) = held
    assert "swarmkeeper_dummy" not in await answer.text()
    async with page.expect_response("**/API/ListBackends"):
        await stale.fulfill(response=answer)
    await expect(new.locator(".backend-form")).to_be_visible()
    await expect(new.locator('.backend-form [name="title"]')).to_be_focused()
