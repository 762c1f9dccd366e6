"""ComfyUI's page through the pool: the time Chromium takes to show the page (from navigation to
its Workflows button being visible, a new browser context each time so nothing is cached), opened
on a real ComfyUI directly and on swarmkeeper's pool in front of that same ComfyUI, alternately,
in one run.

    .venv/bin/python bench/comfy_page_load.py [--prompts 5] [--comfy_url http://127.0.0.1:8188]

(``--prompts`` is the number of page loads each way.) Without --comfy_url a real ComfyUI is
started with scripts/comfyui-peer (and stopped after). Prints both medians and the ratio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.async_api import Browser, async_playwright  # noqa: E402

from bench.pool_support import one_comfyui_arguments, pool_in_front_of_comfyui, report_pair, run  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SETTINGS = {"Comfy.TutorialCompleted": True}  # no first-visit template browser over the page


async def load_once(browser: Browser, url: str) -> float:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    started = time.perf_counter()
    await page.goto(url + "/")
    await page.locator(".workflows-tab-button").wait_for(state="visible", timeout=120_000)
    elapsed = time.perf_counter() - started
    await context.close()
    return elapsed


async def measure(comfy_url: str, pool_url: str, loads: int) -> tuple[list[float], list[float]]:
    import httpx

    for url in (comfy_url, pool_url):
        async with httpx.AsyncClient(base_url=url) as http:
            (await http.post("/api/settings", json=SETTINGS)).raise_for_status()
    direct, pooled = [], []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        await load_once(browser, comfy_url)  # warm up both paths (ComfyUI reads its files once)
        await load_once(browser, pool_url)
        for _ in range(loads):
            direct.append(await load_once(browser, comfy_url))
            pooled.append(await load_once(browser, pool_url))
        await browser.close()
    return direct, pooled


def main() -> None:
    args = one_comfyui_arguments(__doc__ or "")
    with pool_in_front_of_comfyui(args.comfy_url) as (comfy_url, pool_url):
        direct, pooled = run(measure(comfy_url, pool_url, args.prompts))
    report_pair("page loads", args.prompts, direct, pooled, digits=0)


if __name__ == "__main__":
    main()
