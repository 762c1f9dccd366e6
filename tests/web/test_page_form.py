"""Whatever a user types (empty, huge, markup, script tags) is shown back as text and never run;
the server's errors appear next to the field that caused them."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.servers import APIClient, LoopbackServer
from tests.web.conftest import Pages
from tests.web.ui import add_backend, backend_id_of, card, edit, field, field_error, fill, save, status_is

pytestmark = pytest.mark.browser

MARKUP = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b>'


async def assert_nothing_ran(page: Page) -> None:
    assert await page.evaluate("window.__pwned") is None
    assert await page.locator("#backends img, #backends script, #backends b").count() == 0


async def test_markup_typed_into_the_form_is_shown_as_text(pages: Pages, web_server: LoopbackServer) -> None:
    page = await pages.open()
    new = await add_backend(page, "swarmkeeper_dummy")
    await fill(new, title=MARKUP, Address=MARKUP)
    await save(new)
    await expect(new.locator(".card-title")).to_have_text(MARKUP)
    await new.locator(".settings-details summary").click()
    await expect(new.locator(".settings-list")).to_contain_text(MARKUP)
    await assert_nothing_ran(page)
    record = web_server.services.registry.get(await backend_id_of(new))
    assert record is not None and (record.title, record.settings.Address) == (MARKUP, MARKUP)


async def test_markup_arriving_from_elsewhere_is_shown_as_text(pages: Pages, web_server: LoopbackServer) -> None:
    page = await pages.open()
    async with httpx.AsyncClient(base_url=web_server.url, timeout=10) as http:
        api = APIClient(http)
        added = await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
        await api.ok("EditBackend", backend_id=added["id"], title=MARKUP,
                     settings={"Address": MARKUP, "Mode": "config"})
    shown = card(page, added["id"])
    await status_is(shown, "errored")
    await expect(shown.locator(".card-title")).to_have_text(MARKUP)
    await shown.locator(".delete-button").click()
    await expect(page.locator("#confirm-message")).to_contain_text(MARKUP)
    await page.click("#confirm-cancel")
    await assert_nothing_ran(page)


async def test_an_empty_number_is_refused_next_to_its_field(pages: Pages, web_server: LoopbackServer) -> None:
    page = await pages.open()
    new = await add_backend(page, "swarmkeeper_dummy")
    await fill(new, OverQueue="")
    await save(new)
    await expect(field_error(new, "OverQueue")).to_have_text(
        "Invalid value '' for setting 'OverQueue', must be type 'Int32'")
    await expect(field(new, "OverQueue")).to_have_attribute("aria-invalid", "true")
    await expect(field(new, "OverQueue")).to_be_focused()
    await fill(new, OverQueue="3")
    await save(new)
    await expect(new.locator(".backend-form")).to_have_count(0)
    record = web_server.services.registry.get(await backend_id_of(new))
    assert record is not None and record.settings.OverQueue == 3


async def test_huge_input_is_refused_next_to_its_field_and_kept_in_the_form(pages: Pages) -> None:
    page = await pages.open()
    new = await add_backend(page, "swarmkeeper_dummy")
    huge = "x" * 70000
    await fill(new, Address=huge)
    await save(new)
    await expect(field_error(new, "Address")).to_have_text(
        "Setting 'Address' is too long (70000 characters, the limit is 65536).")
    await expect(field(new, "Address")).to_have_value(huge)
    await fill(new, Address="", title="t" * 70000)
    await save(new)
    await expect(field_error(new, "title")).to_have_text(
        "Title is too long (70000 characters, the limit is 65536).")
    await expect(field_error(new, "Address")).to_have_text("")


async def test_id_errors_appear_next_to_the_id(pages: Pages) -> None:
    page = await pages.open()
    first = await add_backend(page, "swarmkeeper_dummy")
    await save(first)
    second = await add_backend(page, "swarmkeeper_dummy")
    await fill(second, id="not a number")
    await save(second)
    await expect(field_error(second, "id")).to_have_text("The ID must be a whole number, 0 or more.")
    await fill(second, id=str(await backend_id_of(first)))
    await save(second)
    await expect(field_error(second, "id")).to_have_text(f"Backend ID {await backend_id_of(first)} is already in use.")
    await fill(second, id="99999999999")
    await save(second)
    await expect(field_error(second, "id")).to_have_text(
        "Invalid value '99999999999' for parameter 'new_id', must be type 'Int32'")


async def test_cancel_and_escape_leave_the_backend_as_it_was(pages: Pages, web_server: LoopbackServer) -> None:
    page = await pages.open()
    new = await add_backend(page, "swarmkeeper_dummy")
    await new.locator(".cancel-button").click()
    await expect(new.locator(".backend-form")).to_have_count(0)
    await edit(new, title="never saved")
    await field(new, "title").press("Escape")
    await expect(new.locator(".backend-form")).to_have_count(0)
    await expect(new.locator(".edit-button")).to_be_focused()
    record = web_server.services.registry.get(await backend_id_of(new))
    assert record is not None and record.title == ""
