"""A first image from ComfyUI's own page, the way a newcomer gets it: ``scripts/demo`` (what ``make
demo`` runs) as a child process, with its self-starting ComfyUI backend on the project's tiny model;
a text-to-image workflow saved through the pool's userdata API is opened from the page's Workflows
panel and queued with Run; its image shows in the page and, fetched through the pool's ``/view``,
decodes as a PNG of the asked size.

With ``SWARMKEEPER_SCREENSHOTS=1`` the test also saves the page as the README's screenshot,
``docs/images/comfy-page.png``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from PIL import Image
from playwright.async_api import Browser, Page, expect

from tests.ports import free_port
from tests.servers import ROOT
from tests.web.test_comfy_page import ComfyPage, comfy_pages, returning_user

pytestmark = [pytest.mark.browser, pytest.mark.comfyui]

SIZE = 128
PREFIX = "pool-txt2img"
SCREENSHOT = ROOT / "docs" / "images" / "comfy-page.png"
DEMO_START = 300  # s: the demo's own ComfyUI starts on a loaded 2-core machine (15 s idle)
SAMPLING = 120_000  # ms: the first prompt loads the checkpoint (1-5 s) and samples 2 steps on the CPU

#: Zooms and pans ComfyUI's canvas so the graph (x 0-1340, y -30-490 with titles) fills the page right
#: of the side panel; ComfyUI's own fit-to-view centres it on the whole canvas, partly under the panel.
FIT_BESIDE_PANEL = """() => {
    const canvas = window.app.canvas, rect = canvas.canvas.getBoundingClientRect();
    const [left, top] = [330, 160];  // right of the Queue panel (300 px wide at DESKTOP), under the Run bar
    const [width, height] = [window.innerWidth - 30 - left, window.innerHeight - 40 - top];
    const scale = Math.min(width / 1340, height / 520);
    canvas.ds.scale = scale;
    canvas.ds.offset[0] = (left - rect.left) / scale;
    canvas.ds.offset[1] = (top + height / 2 - rect.top) / scale - 230;
    canvas.setDirty(true, true);
}"""


@dataclass(frozen=True)
class Demo:
    """``scripts/demo`` running: its pool's address and the model it made."""

    pool_url: str
    model: str


def link(link_id: int, source: int, slot: int, target: int, target_slot: int, kind: str) -> list[Any]:
    return [link_id, source, slot, target, target_slot, kind]


def node(node_id: int, kind: str, box: tuple[int, int, int, int], widgets: list[Any],
         inputs: list[tuple[str, str, int]], outputs: list[tuple[str, list[int]]]) -> dict[str, Any]:
    """A node as the page saves it: ``box`` is x, y, width, height; ``inputs`` are (name, type, link),
    ``outputs`` (type, links)."""
    x, y, width, height = box
    return {"id": node_id, "type": kind, "pos": [x, y], "size": [width, height], "flags": {}, "order": node_id - 1,
            "mode": 0, "properties": {"Node name for S&R": kind}, "widgets_values": widgets,
            "inputs": [{"name": name, "type": kind_, "link": link_id} for name, kind_, link_id in inputs],
            "outputs": [{"name": kind_, "type": kind_, "links": links} for kind_, links in outputs]}


def txt2img_workflow(model: str, size: int) -> dict[str, Any]:
    """CheckpointLoaderSimple → CLIPTextEncode ×2 → EmptyLatentImage → KSampler (2 steps) →
    VAEDecode → SaveImage, as the page saves a workflow."""
    nodes = [
        node(1, "CheckpointLoaderSimple", (0, 180, 300, 100), [model], [],
             [("MODEL", [1]), ("CLIP", [2, 3]), ("VAE", [8])]),
        node(2, "CLIPTextEncode", (340, 0, 320, 150), ["a lighthouse on a cliff at dusk"], [("clip", "CLIP", 2)],
             [("CONDITIONING", [4])]),
        node(3, "CLIPTextEncode", (340, 190, 320, 150), ["blurry"], [("clip", "CLIP", 3)], [("CONDITIONING", [5])]),
        node(4, "EmptyLatentImage", (340, 380, 320, 110), [size, size, 1], [], [("LATENT", [6])]),
        node(5, "KSampler", (700, 0, 300, 490), [42, "fixed", 2, 7.0, "euler", "normal", 1.0],
             [("model", "MODEL", 1), ("positive", "CONDITIONING", 4), ("negative", "CONDITIONING", 5),
              ("latent_image", "LATENT", 6)], [("LATENT", [7])]),
        node(6, "VAEDecode", (1040, 0, 300, 50), [], [("samples", "LATENT", 7), ("vae", "VAE", 8)], [("IMAGE", [9])]),
        node(7, "SaveImage", (1040, 100, 300, 390), [PREFIX], [("images", "IMAGE", 9)], []),
    ]
    links = [link(1, 1, 0, 5, 0, "MODEL"), link(2, 1, 1, 2, 0, "CLIP"), link(3, 1, 1, 3, 0, "CLIP"),
             link(4, 2, 0, 5, 1, "CONDITIONING"), link(5, 3, 0, 5, 2, "CONDITIONING"),
             link(6, 4, 0, 5, 3, "LATENT"), link(7, 5, 0, 6, 0, "LATENT"), link(8, 1, 2, 6, 1, "VAE"),
             link(9, 6, 0, 7, 0, "IMAGE")]
    return {"last_node_id": 7, "last_link_id": 9, "nodes": nodes, "links": links, "groups": [], "config": {},
            "extra": {}, "version": 0.4}


def wait_until_ready(process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the demo prints that it is ready; fails with its output if it exits or takes too long."""
    deadline = time.monotonic() + DEMO_START
    while "demo: ready." not in log.read_text(errors="replace"):
        if process.poll() is not None:
            pytest.fail(f"scripts/demo exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"scripts/demo was not ready in {DEMO_START} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def dump_stacks(demo_pid: int) -> None:
    """Have the demo's swarmkeeper server print its threads' stacks into the demo's log (SIGUSR1,
    swarmkeeper.cli), so a stop that hangs says where."""
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(demo_pid).children(recursive=True):
            if "swarmkeeper" in " ".join(child.cmdline()):
                child.send_signal(signal.SIGUSR1)
    time.sleep(2)  # faulthandler writes at once; let the log file take it


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """The demo, its swarmkeeper and that server's ComfyUI: none outlives a failed test."""
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(process.pid).children(recursive=True):
            child.kill()
    process.kill()
    process.wait()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """``scripts/demo`` on its own data folder and free ports; stopped as Ctrl-C stops it. Asked for
    before ``browser``: its start-up wait blocks, before the browser's event loop has work."""
    comfy_port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as output:
        process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "scripts" / "demo"),
                                    "--data_dir", str(tmp_path / "DemoData"), "--port", str(free_port()),
                                    "--comfy_port", str(comfy_port)],
                                   stdout=output, stderr=subprocess.STDOUT, cwd=ROOT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_until_ready(process, log)
        yield Demo(f"http://127.0.0.1:{comfy_port}", "tiny-sd15.ckpt")
    finally:
        process.send_signal(signal.SIGINT)  # the demo stops swarmkeeper, which stops its ComfyUI
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            dump_stacks(process.pid)
            kill_tree(process)
            pytest.fail(f"scripts/demo did not stop on Ctrl-C:\n{log.read_text()[-8000:]}")


async def test_a_text_to_image_workflow_queued_from_the_demos_page_shows_its_image(
        demo: Demo, browser: Browser, request: pytest.FixtureRequest) -> None:
    async with httpx.AsyncClient(base_url=demo.pool_url, timeout=60) as http:
        saved = await http.post("/api/userdata/workflows%2Ftext-to-image.json",
                                content=json.dumps(txt2img_workflow(demo.model, SIZE)).encode())
        assert saved.status_code == 200, saved.text
        await returning_user(http)
        hidden = await http.post("/api/settings", json={"Comfy.Minimap.Visible": False})  # over the graph
        assert hidden.status_code == 200, hidden.text

        async with comfy_pages(browser, request.node.name) as open_page:
            comfy: ComfyPage = await open_page(demo.pool_url)
            page = comfy.page
            await page.locator(".workflows-tab-button").click()
            await page.get_by_text("text-to-image.json", exact=True).click()
            await expect(page.get_by_text("text-to-image", exact=True).first).to_be_visible()  # its tab
            await page.get_by_role("button", name="Run", exact=True).click()

            await page.locator(".queue-tab-button").click()
            shown = page.locator(f'img[src*="/api/view?filename={PREFIX}_"]').first
            await expect(shown).to_be_visible(timeout=SAMPLING)
            size = await shown.evaluate("img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])")
            assert size == [SIZE, SIZE]  # loaded and decoded in the page
            source = await shown.get_attribute("src")
            assert source is not None
            fetched = await http.get(source.removeprefix(demo.pool_url))
            assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png", fetched.headers
            with Image.open(io.BytesIO(fetched.content)) as image:
                assert (image.format, image.size) == ("PNG", (SIZE, SIZE))
            if os.environ.get("SWARMKEEPER_SCREENSHOTS") == "1":
                await readme_screenshot(page)


async def readme_screenshot(page: Page) -> None:
    """The page as the README shows it: the Nodes 2.0 banner dismissed, the whole graph in view
    (beside the Queue panel, which covers the canvas's left), its image in the Save Image node and in
    the Queue panel."""
    banner = page.locator("div.bg-gradient-to-r").filter(has_text="Introducing Nodes 2.0")
    await banner.get_by_role("button").last.click()
    await expect(banner).to_be_hidden()
    await page.evaluate(FIT_BESIDE_PANEL)
    await page.screenshot(path=SCREENSHOT)
