"""GPU truth per backend: each ComfyUI backend's devices from its ``/system_stats``, read while it
runs, in ListBackends (``devices``) and in /metrics, matching what the ComfyUI answered."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from swarmkeeper.backends.comfyui_monitor import parse_devices
from swarmkeeper.clients.comfyui import ComfyClient
from swarmkeeper_doubles.fake_comfyui import fixture, run_fake_comfyui
from tests.comfy_peer import RealComfyUI
from tests.metrics_support import scrape, series, value
from tests.pool_support import pool_server

RECORDED = fixture("system_stats.json")


async def devices_of(api: Any, backend_id: int) -> list[dict[str, Any]]:
    for _ in range(200):
        devices = (await api.ok("ListBackends"))[str(backend_id)]["devices"]
        if devices:
            return list(devices)
        await asyncio.sleep(0.05)
    raise AssertionError("no devices listed")


async def test_devices_come_from_system_stats_into_list_backends_and_metrics(data_dir: Path) -> None:
    recorded = RECORDED["devices"][0]
    async with run_fake_comfyui() as one, run_fake_comfyui() as two, pool_server(data_dir, [one.url, two.url]) as pool:
        for backend_id in pool.backend_ids:
            devices = await devices_of(pool.api, backend_id)
            assert devices == [{"name": "cpu", "type": "cpu", "index": None, "vram_total": recorded["vram_total"],
                                "vram_free": recorded["vram_free"],
                                "vram_used": recorded["vram_total"] - recorded["vram_free"],
                                "torch_vram_total": recorded["torch_vram_total"],
                                "torch_vram_free": recorded["torch_vram_free"]}]
        samples = await scrape(pool.api)
        for backend_id in pool.backend_ids:
            labels = {"backend": str(backend_id), "type": "comfyui_api", "device": "cpu", "index": ""}
            assert value(samples, "swarmkeeper_backend_vram_total_bytes", **labels) == recorded["vram_total"]
            assert value(samples, "swarmkeeper_backend_vram_free_bytes", **labels) == recorded["vram_free"]
            assert value(samples, "swarmkeeper_backend_torch_vram_free_bytes", **labels) == recorded["torch_vram_free"]
        assert len(series(samples, "swarmkeeper_backend_vram_total_bytes")) == 2
        await pool.api.ok("ToggleBackend", backend_id=pool.backend_ids[0], enabled=False)
        await pool.api.wait_status(pool.backend_ids[0], "disabled")
        assert (await pool.api.ok("ListBackends"))[str(pool.backend_ids[0])]["devices"] == []


def test_bad_system_stats_devices_are_skipped_not_trusted() -> None:
    stats = {"devices": [{"name": "cuda:0 NVIDIA RTX", "type": "cuda", "index": 0, "vram_total": 8 * 2**30,
                          "vram_free": -5, "torch_vram_total": "lots", "torch_vram_free": True},
                         "not a device", 7]}
    (device,) = parse_devices(stats)
    assert (device.name, device.index, device.vram_total, device.vram_free, device.torch_vram_total,
            device.torch_vram_free, device.vram_used) == ("cuda:0 NVIDIA RTX", 0, 8 * 2**30, 0, 0, 0, 8 * 2**30)
    assert parse_devices({"devices": "none"}) == () and parse_devices({}) == ()


@pytest.mark.comfyui
async def test_a_real_comfyuis_devices_are_listed(data_dir: Path, real_comfyui: RealComfyUI) -> None:
    async with ComfyClient(real_comfyui.url, timeout=60) as client:
        stats = await client.system_stats()
    async with pool_server(data_dir, [real_comfyui.url]) as pool:
        devices = await devices_of(pool.api, pool.backend_ids[0])
        assert [(d["name"], d["type"], d["vram_total"]) for d in devices] == [
            (d["name"], d["type"], d["vram_total"]) for d in stats["devices"]]
        samples = await scrape(pool.api)
        assert len(series(samples, "swarmkeeper_backend_vram_total_bytes")) == len(stats["devices"])
