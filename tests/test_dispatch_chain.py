"""Prompts through chained servers: a Swarm-API backend's remote backends take pool prompts, sent to
the remote server's pool, so a prompt sent to server A runs on a ComfyUI behind server B."""

from __future__ import annotations

import asyncio
from pathlib import Path

from swarmkeeper_doubles.fake_comfyui import png_size, run_fake_comfyui
from tests.comfy_peer import greeted_events, invert_graph
from tests.pool_support import events_until_done, pool_server, terminal_events


async def test_a_prompt_runs_on_a_comfyui_behind_another_server(tmp_path: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.05) as fake, pool_server(tmp_path / "B", [fake.url]) as far, \
            pool_server(tmp_path / "A", []) as near:
        parent = int((await near.api.ok("AddNewBackend", type_id="swarmswarmbackend"))["id"])
        await near.api.ok("EditBackend", backend_id=parent, title="far", settings={"Address": far.url})
        async with asyncio.timeout(30):
            while not [e for e in (await near.api.ok("ListBackends", nonreal=True)).values()
                       if e.get("parent_id") == parent and e["status"] == "running"]:
                await asyncio.sleep(0.1)
        async with near.comfy() as comfy, greeted_events(comfy, "chained") as events:
            async with asyncio.timeout(30):  # the remote's node list is read in the background first
                while "EmptyImage" not in await comfy.object_info():
                    await asyncio.sleep(0.1)
            queued = await comfy.queue_prompt(invert_graph(0x707070), "chained")
            seen = await events_until_done(events, {queued["prompt_id"]})
            assert terminal_events(seen) == {queued["prompt_id"]: ["execution_success"]}
            image = (await comfy.history(queued["prompt_id"]))[queued["prompt_id"]]["outputs"]["3"]["images"][0]
            assert png_size(await comfy.view(image["filename"], image["subfolder"], image["type"])) == (64, 64)
        forwarded = fake.calls_to("/prompt", "POST")
        assert [c.body["prompt_id"] for c in forwarded] == [queued["prompt_id"]]  # one id end to end
