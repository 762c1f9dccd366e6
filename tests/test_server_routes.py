"""SwarmUI's Server tab routes against real servers: the Server Info panels' answers (resources,
connected users with their generations), interrupting a user, shutting a server process down, and
the update routes' refusal."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psutil

from swarmkeeper.resources import GPUReader
from swarmkeeper.server.routes import UPDATES_REFUSAL
from swarmkeeper_doubles.fake_comfyui import run_fake_comfyui
from tests.accounts_support import accounts_server
from tests.pool_support import pool_server
from tests.servers import APIClient, ServerProcess, in_process, on_loopback, test_config

MODEL = {"checkpoints": ["sd15.safetensors"]}
GPU_KEYS = {"id", "name", "temperature", "utilization_gpu", "utilization_memory", "total_memory", "free_memory",
            "used_memory"}
USER_KEYS = {"id", "last_active_seconds", "active_sessions", "last_active", "waiting_gens", "loading_models",
             "waiting_backends", "live_gens"}


async def test_resource_info_and_connected_users_have_swarmuis_shapes(data_dir: Path) -> None:
    async with on_loopback(test_config(data_dir)) as server, httpx.AsyncClient(base_url=server.url) as http:
        api = APIClient(http)
        info = await api.ok("GetServerResourceInfo")
        assert set(info) == {"cpu", "system_ram", "gpus"}
        assert 0.0 <= info["cpu"]["usage"] <= 1.0 and info["cpu"]["cores"] == psutil.cpu_count()
        ram = info["system_ram"]
        assert ram["total"] > 0 and ram["used"] + ram["free"] == ram["total"]
        assert info["gpus"] == {}  # no NVIDIA library here
        users = (await api.ok("ListConnectedUsers"))["users"]
        assert [set(user) for user in users] == [USER_KEYS]
        assert users[0]["id"] == "local" and users[0]["active_sessions"] == [{"address": "127.0.0.1", "count": 1}]
        assert users[0]["last_active_seconds"] < 60 and users[0]["live_gens"] == 0


async def test_update_routes_say_updates_come_from_the_package_manager(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        assert await api.error("CheckForUpdates") == UPDATES_REFUSAL
        assert await api.error("UpdateAndRestart", doUpdateServer=True, extensionsToUpdate=["x"]) == UPDATES_REFUSAL
        assert "package manager" in UPDATES_REFUSAL
        assert await api.error("ShutdownServer") == (
            "This server was not started by 'swarmkeeper serve'; stop it the way it was started.")
        assert await api.error("AdminInterruptUser", name="ghost") == "No user by that name exists."
        assert await api.ok("AdminInterruptUser", name="local") == {"success": True}


async def test_a_busy_user_is_listed_with_their_generations_and_can_be_interrupted(data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=30, models=MODEL) as fake, pool_server(data_dir, [fake.url]) as pool:
        generating = asyncio.create_task(pool.api.call("GenerateText2Image", images=2, prompt="x", model="sd15"))
        watcher = APIClient(pool.api.http)
        user: dict[str, Any] = {}
        for _ in range(200):
            users = (await watcher.ok("ListConnectedUsers"))["users"]
            user = users[0] if users else {}
            if user.get("live_gens") == 1:
                break
            await asyncio.sleep(0.05)
        assert (user["waiting_gens"], user["live_gens"]) == (2, 1), user
        assert user["active_sessions"] == [{"address": "127.0.0.1", "count": 2}]
        assert await watcher.ok("AdminInterruptUser", name="local") == {"success": True}
        answer = (await asyncio.wait_for(generating, 20)).json()
        assert "error" in answer and "interrupted" in answer["error"].lower(), answer
        users = (await watcher.ok("ListConnectedUsers"))["users"]
        assert (users[0]["waiting_gens"], users[0]["live_gens"]) == (0, 0)


async def test_shutdown_server_stops_the_process_cleanly(data_dir: Path) -> None:
    server = ServerProcess(data_dir).start()
    try:
        async with server.client() as http:
            api = APIClient(http)
            assert await api.ok("ShutdownServer") == {"success": True}
        assert server.process is not None
        code = await asyncio.to_thread(server.process.wait, 30)
        assert code == 0
        assert "requested server shutdown" in server.output() and "Shutdown complete" in server.output()
    finally:
        if server.process is not None and server.process.poll() is None:
            server.stop()


class FakeNVML:
    """Answers as NVIDIA's nvidia-ml-py does (a device handle per index; bytes or str names)."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self) -> None:
        self.started = 0

    def nvmlInit(self) -> None:
        self.started += 1

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes | str:
        return b"NVIDIA GeForce RTX 4090" if handle == 0 else "NVIDIA A100-SXM4-80GB"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(total=24 * 2**30, free=20 * 2**30, used=4 * 2**30)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=87, memory=40)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return 71


def test_gpus_read_through_nvml_in_swarmuis_shape() -> None:
    nvml = FakeNVML()
    reader = GPUReader(nvml)
    gpus = reader.read()
    assert list(gpus) == ["0", "1"] and all(set(gpu) == GPU_KEYS for gpu in gpus.values())
    assert gpus["0"] == {"id": 0, "name": "NVIDIA GeForce RTX 4090", "temperature": 71, "utilization_gpu": 87,
                         "utilization_memory": 40, "total_memory": 24 * 2**30, "free_memory": 20 * 2**30,
                         "used_memory": 4 * 2**30}
    assert gpus["1"]["name"] == "NVIDIA A100-SXM4-80GB"
    reader.read()
    assert nvml.started == 1  # initialised once


def test_without_nvidia_ml_py_there_are_no_gpus() -> None:
    assert importlib.util.find_spec("pynvml") is None  # not installed here: the reader must cope
    assert GPUReader().read() == {}


async def test_with_accounts_each_user_is_listed_with_the_address_of_their_sessions(data_dir: Path) -> None:
    async with accounts_server(data_dir) as server:
        await server.add_user("root", "owner")
        await server.add_user("ann", "user")
        root = await server.session_for("root")
        await server.session_for("ann")
        await server.session_for("ann")
        users = (await server.ok("ListConnectedUsers", session=root))["users"]
        assert [(user["id"], user["active_sessions"]) for user in users] == [
            ("ann", [{"address": "203.0.113.7", "count": 2}]), ("root", [{"address": "203.0.113.7", "count": 1}])]
        await server.add_user("idle", "user")  # an account with no session: known, nothing to stop
        assert await server.ok("AdminInterruptUser", {"name": "idle"}, session=root) == {"success": True}
        assert await server.error("AdminInterruptUser", {"name": "ghost"}, session=root) == (
            "No user by that name exists.")
        ann = await server.session_for("ann")
        refused = await server.call("ListConnectedUsers", session=ann)
        assert refused.json() == {"error_id": "bad_permissions", "error": "You lack permissions for this route."}
