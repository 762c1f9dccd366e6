"""What the browser tests do on the Backends page, in the words a user would use."""

from __future__ import annotations

from playwright.async_api import Locator, Page, expect


def card(page: Page, backend_id: int) -> Locator:
    return page.locator(f"#backend-{backend_id}")


def field(scope: Locator, name: str) -> Locator:
    """A setting's (or Title's, ID's) input inside a card's edit form."""
    return scope.locator(f'.backend-form [name="{name}"]')


def field_error(scope: Locator, name: str) -> Locator:
    """The error line shown under one field of a card's edit form."""
    return scope.locator(f'.backend-form .field:has([name="{name}"]) .field-error')


async def add_backend(page: Page, type_id: str) -> Locator:
    """Click the type's add button (ticking Show Advanced if it is hidden), confirm, and answer
    the new card, which opens in edit mode."""
    button = page.locator(f'#add-buttons button[data-type-id="{type_id}"]')
    if not await button.is_visible():
        await page.check("#show-advanced")
    await button.click()
    async with page.expect_response("**/API/AddNewBackend") as answer:
        await page.click("#confirm-ok")
    added = card(page, int((await (await answer.value).json())["id"]))
    await expect(added.locator(".backend-form")).to_be_visible()
    return added


async def backend_id_of(card_locator: Locator) -> int:
    return int(await card_locator.get_attribute("data-backend-id") or "-1")


async def save(card_locator: Locator) -> None:
    await card_locator.locator(".save-button").click()


async def saved(card_locator: Locator) -> None:
    """Save, and wait until the server has answered (the form closes)."""
    await save(card_locator)
    await expect(card_locator.locator(".backend-form")).to_have_count(0)


async def edit(card_locator: Locator, **values: str | bool) -> None:
    """Open the edit form and set fields: text for inputs and dropdowns, bool for checkboxes."""
    await card_locator.locator(".edit-button").click()
    await fill(card_locator, **values)


async def fill(card_locator: Locator, **values: str | bool) -> None:
    for name, value in values.items():
        control = field(card_locator, name)
        if isinstance(value, bool):
            await control.set_checked(value)
        elif await control.evaluate("element => element.tagName") == "SELECT":
            await control.select_option(value)
        else:
            await control.fill(value)


async def confirm(page: Page) -> None:
    await expect(page.locator("#confirm-dialog")).to_be_visible()
    await page.click("#confirm-ok")


async def status_is(card_locator: Locator, status: str, timeout: float | None = None) -> None:
    await expect(card_locator).to_have_attribute("data-status", status, timeout=timeout)
    await expect(card_locator.locator(".badge")).to_have_text(status)
