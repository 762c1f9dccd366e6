"""The issue's proof, against a real ComfyUI: a "ComfyUI API By URL" backend is added through the
page, pointed at ComfyUI, turns running, is edited, toggled off and on, restarted, has its memory
freed, and is deleted; and a self-started ComfyUI killed from outside (SIGKILL) shows errored with
its reason within a second (the self-start type notices its process die; a by-URL backend would
not notice a ComfyUI it does not own until it next talks to it)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.comfy_peer import RealComfyUI, peer
from tests.servers import LoopbackServer
from tests.web.conftest import Pages
from tests.web.support import status_of, until
from tests.web.ui import add_backend, backend_id_of, confirm, edit, fill, save, saved, status_is

pytestmark = [pytest.mark.browser, pytest.mark.comfyui]

WITHIN_A_SECOND = 1000  # ms
COMFY_START = 120_000  # ms: a self-started ComfyUI on CPU takes a while to answer


@pytest.fixture
def start_script() -> Path:
    """The real ComfyUI's start script (scripts/comfyui-peer install makes it)."""
    found = peer("path", "--script")
    if found.returncode != 0:
        pytest.fail(f"real ComfyUI missing ({found.stderr.strip()}); scripts/setup --test installs it")
    return Path(found.stdout.strip())


async def test_a_comfyui_by_url_backend_is_managed_through_the_page(
        pages: Pages, web_server: LoopbackServer, real_comfyui: RealComfyUI) -> None:
    page = await pages.open()
    await expect(page.locator('#add-buttons button[data-type-id="comfyui_api"]')).to_have_text("ComfyUI API By URL")
    new = await add_backend(page, "comfyui_api")
    backend_id = await backend_id_of(new)
    await status_is(new, "disabled")
    await expect(new.locator(".reason")).to_contain_text("No address is set")

    await fill(new, title="Real ComfyUI", Address=real_comfyui.url)
    await save(new)
    await status_is(new, "running")
    await expect(new.locator(".card-title")).to_have_text("Real ComfyUI")
    await expect(page.locator("#server-status")).to_have_text("All backends are ready.")

    await edit(new, title="Real ComfyUI, deeper queue", OverQueue="3")
    await saved(new)
    await until(lambda: status_of(web_server, backend_id) == "running", "running again after the edit")
    await status_is(new, "running")
    await expect(new.locator(".facts")).to_contain_text("0 of 4")
    record = web_server.services.registry.get(backend_id)
    assert record is not None and (record.title, record.settings.OverQueue) == ("Real ComfyUI, deeper queue", 3)

    await new.locator(".toggle").uncheck()
    await status_is(new, "disabled")
    await new.locator(".toggle").check()
    await status_is(new, "running")

    await new.locator(".restart-button").click()
    await confirm(page)
    await expect(new.locator(".action-message")).to_have_text("Restarting…")
    await until(lambda: status_of(web_server, backend_id) == "running", "running again after the restart")
    await status_is(new, "running")

    await new.locator(".free-button").click()
    await expect(new.locator(".action-message")).to_have_text("VRAM freed.")
    await page.click("#free-ram")
    await expect(page.locator("#all-message")).to_have_text("Freed VRAM and system RAM on 1 backend.")

    await new.locator(".delete-button").click()
    await confirm(page)
    await expect(new).to_have_count(0)
    assert web_server.services.registry.get(backend_id) is None


async def test_a_self_started_comfyui_killed_from_outside_shows_errored_within_a_second(
        pages: Pages, web_server: LoopbackServer, start_script: Path) -> None:
    page = await pages.open()
    new = await add_backend(page, "comfyui_selfstart")
    backend_id = await backend_id_of(new)
    await fill(new, title="Local ComfyUI", StartScript=str(start_script), AutoRestart=False)
    await save(new)
    await status_is(new, "running", timeout=COMFY_START)
    record = web_server.services.registry.get(backend_id)
    assert record is not None and record.backend.pid is not None
    os.kill(record.backend.pid, signal.SIGKILL)
    await status_is(new, "errored", timeout=WITHIN_A_SECOND)
    await expect(new.locator(".reason")).to_contain_text("was killed by SIGKILL unexpectedly",
                                                         timeout=WITHIN_A_SECOND)
    await new.locator(".logs-button").click()
    await expect(new.locator(".log-lines")).to_contain_text("To see the GUI go to")  # ComfyUI's own output
