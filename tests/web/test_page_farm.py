"""The farm view: prompts run through the pool on two backends (fake ComfyUIs answering as the
recorded traffic does) and the page, fed only by the push stream, shows the counts and charts move;
what it shows at the end matches /metrics, parsed. Readable at phone width."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from swarmkeeper_doubles.fake_comfyui import run_fake_comfyui
from tests.metrics_support import scrape, value
from tests.pool_support import PoolServer, pool_server
from tests.servers import ROOT
from tests.web.conftest import PHONE, Pages, pages_of

pytestmark = pytest.mark.browser

MODEL = {"checkpoints": ["sd15.safetensors"]}
IMAGES = 8


@pytest.fixture
async def farm(data_dir: Path) -> AsyncIterator[PoolServer]:
    async with run_fake_comfyui(job_seconds=0.6, models=MODEL) as one, \
            run_fake_comfyui(job_seconds=0.6, models=MODEL) as two, \
            pool_server(data_dir, [one.url, two.url]) as pool:
        yield pool


@pytest.fixture
async def farm_pages(browser: Browser, farm: PoolServer, request: pytest.FixtureRequest) -> AsyncIterator[Pages]:
    async with pages_of(browser, farm, request) as opened:  # type: ignore[arg-type]  # it has the url
        yield opened


async def number(page: Page, selector: str) -> int:
    text = await page.locator(selector).first.text_content() or ""
    found = re.search(r"\d+", text)
    assert found, text
    return int(found.group())


async def test_prompts_through_the_pool_move_the_farm_views_counts_and_charts(
        farm_pages: Pages, farm: PoolServer) -> None:
    page = await farm_pages.open()
    view = page.locator("#farm")
    await expect(view).to_be_visible()
    for backend_id in farm.backend_ids:
        await expect(page.locator(f"#farm-backend-{backend_id} [data-farm=images]")).to_have_text("0 images")
    await expect(page.locator(".farm-pool-chart")).to_have_attribute("data-total", "0")
    generating = asyncio.create_task(farm.api.call("GenerateText2Image", images=IMAGES, prompt="a farm",
                                                   model="sd15", steps=2))
    await expect(page.locator("[data-farm=pool-queue]")).not_to_have_text("0")
    await expect(page.locator("[data-farm=pool-running]")).not_to_have_text("0")
    seen_running = [await number(page, f"#farm-backend-{backend_id} [data-farm=running]")
                    for backend_id in farm.backend_ids]
    answer = (await asyncio.wait_for(generating, 60)).json()
    assert len(answer.get("images", [])) == IMAGES, answer
    await expect(page.locator("[data-farm=pool-total]")).to_have_text(str(IMAGES))
    await expect(page.locator("[data-farm=pool-queue]")).to_have_text("0")
    await expect(page.locator(".farm-pool-chart")).to_have_attribute("data-total", str(IMAGES))
    assert await number(page, "[data-farm=pool-rate]") <= IMAGES
    shown = {backend_id: await number(page, f"#farm-backend-{backend_id} [data-farm=images]")
             for backend_id in farm.backend_ids}
    assert all(shown.values()) and sum(shown.values()) == IMAGES, shown  # both backends did work
    assert any(seen_running), seen_running
    for backend_id in farm.backend_ids:
        chart = page.locator(f"#farm-backend-{backend_id} .farm-backend-chart")
        await expect(chart).to_have_attribute("data-total", str(shown[backend_id]))
        await expect(page.locator(f"#farm-backend-{backend_id} [data-farm=model]")).to_contain_text("sd15")
    await matches_metrics(page, farm, shown)
    await page.screenshot(path=ROOT / "test-output" / "farm-view-desktop.png", full_page=True)


async def matches_metrics(page: Page, farm: PoolServer, shown: dict[int, int]) -> None:
    """What the page shows is what /metrics says."""
    samples = await scrape(farm.api)
    for backend_id, images in shown.items():
        labels = {"backend": str(backend_id), "type": "comfyui_api"}
        assert value(samples, "swarmkeeper_backend_images_total", **labels) == images
        in_flight = value(samples, "swarmkeeper_backend_jobs_in_flight", **labels)
        queued = value(samples, "swarmkeeper_backend_jobs_queued", **labels)
        await expect(page.locator(f"#farm-backend-{backend_id} [data-farm=running]")).to_have_text(
            f"{int(in_flight - queued)} running")
        total = value(samples, "swarmkeeper_backend_vram_total_bytes", device="cpu", index="", **labels)
        free = value(samples, "swarmkeeper_backend_vram_free_bytes", device="cpu", index="", **labels)
        await expect(page.locator(f"#farm-backend-{backend_id} [data-farm=vram]")).to_have_text(
            f"VRAM {(total - free) / 2**30:.1f} GiB of {total / 2**30:.1f} GiB")
    assert value(samples, "swarmkeeper_dispatch_jobs_total", outcome="success") == sum(shown.values())
    assert value(samples, "swarmkeeper_dispatch_live") == 0


async def test_the_farm_view_reads_at_phone_width(farm_pages: Pages, farm: PoolServer) -> None:
    page = await farm_pages.open(PHONE)
    await expect(page.locator("#farm .farm-backend")).to_have_count(2)
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    # Measured in one go inside the page: each `farm` event redraws the rows, so a row found in one
    # call can be gone (detached, no box) by the next.
    edges = await page.locator("#farm .farm-backend").evaluate_all(
        "rows => rows.map(row => { const box = row.getBoundingClientRect(); return [box.left, box.right]; })")
    assert len(edges) == 2 and all(left >= 0 and right <= PHONE["width"] for left, right in edges), edges
