"""Backends.fds: SwarmUI's format in and out, atomic saves, changes on disk before the answer,
and nothing lost to a kill -9."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import httpx

from swarmkeeper import fds
from swarmkeeper.files import write_atomic
from tests.servers import APIClient, ServerProcess, in_process, test_config

#: A file as SwarmUI writes it (tabs, comment lines before each setting, `\x` for empty text),
#: with one entry of a type this server does not know.
SWARM_FILE = """\
0:
\ttype: swarmkeeper_dummy
\ttitle: My GPU
\tenabled: true
\tsettings:
\t\t#Anything; blank leaves the backend unconfigured (disabled).
\t\tAddress: dummy://gpu0
\t\t#A secret, never shown back.
\t\tToken: s3cret\\sword
\t\t#How many extra requests may queue up on this backend.
\t\t#max_usages = 1 + this.
\t\tOverQueue: 2
\t\t#A decimal setting.
\t\tRatio: 0.25
\t\t#A boolean setting.
\t\tFlag: true
\t\t#What init does.
\t\tMode: ok
\t\t#How long init takes, in seconds.
\t\tInitSeconds: 0
3:
\ttype: auto_webui_selfstart
\ttitle: \\x
\tenabled: false
\tsettings:
\t\tStartScript: /opt/a1111/webui.sh
\t\tExtraArgs: \\x
\t\tGPU_ID: 1
5:
\ttype: swarmkeeper_dummy
\ttitle: \\x
\tenabled: false
\tsettings:
\t\t#Anything; blank leaves the backend unconfigured (disabled).
\t\tAddress: \\x
\t\t#A secret, never shown back.
\t\tToken: \\x
\t\t#How many extra requests may queue up on this backend.
\t\t#max_usages = 1 + this.
\t\tOverQueue: 1
\t\t#A decimal setting.
\t\tRatio: 0.5
\t\t#A boolean setting.
\t\tFlag: false
\t\t#What init does.
\t\tMode: ok
\t\t#How long init takes, in seconds.
\t\tInitSeconds: 0
"""


async def test_swarmui_file_loads_lists_and_saves_back_byte_stable(data_dir: Path) -> None:
    path = data_dir / "Backends.fds"
    write_atomic(path, SWARM_FILE)
    async with in_process(test_config(data_dir)) as api:
        listing = await api.ok("ListBackends")
        assert list(listing) == ["0", "5"]
        assert listing["0"]["title"] == "My GPU"
        assert listing["0"]["settings"]["Token"] == "\t<secret>"
        assert listing["0"]["settings"]["OverQueue"] == 2 and listing["0"]["settings"]["Ratio"] == 0.25
        assert listing["5"]["enabled"] is False
        entry = await api.wait_status(0, "running")
        assert entry["max_usages"] == 3
        assert api.services is not None
        await api.services.manager.persist()
    assert path.read_text() == SWARM_FILE


async def test_unknown_types_are_kept_and_their_ids_not_reused(data_dir: Path) -> None:
    path = data_dir / "Backends.fds"
    write_atomic(path, SWARM_FILE)
    async with in_process(test_config(data_dir)) as api:
        added = await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
        assert added["id"] == 6
        assert await api.error("EditBackend", backend_id=5, title="", settings={}, new_id=3) == (
            "Backend ID 3 is already in use.")
        await api.ok("DeleteBackend", backend_id=0)
    saved = fds.loads(path.read_text())
    assert list(saved) == ["3", "5", "6"]
    assert saved["3"]["settings"]["StartScript"] == "/opt/a1111/webui.sh"


async def test_changes_are_on_disk_before_the_answer(data_dir: Path) -> None:
    path = data_dir / "Backends.fds"
    async with in_process(test_config(data_dir)) as api:
        await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
        assert list(fds.loads(path.read_text())) == ["0"]
        await api.ok("EditBackend", backend_id=0, title="Renamed", settings={"Token": "abc", "OverQueue": "4"})
        saved = fds.loads(path.read_text())["0"]
        assert saved["title"] == "Renamed"
        assert saved["settings"]["Token"] == "abc" and saved["settings"]["OverQueue"] == 4
        await api.ok("ToggleBackend", backend_id=0, enabled=False)
        assert fds.loads(path.read_text())["0"]["enabled"] is False
        await api.ok("DeleteBackend", backend_id=0)
        assert list(fds.loads(path.read_text())) == []


async def test_file_is_private(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    mode = stat.S_IMODE((data_dir / "Backends.fds").stat().st_mode)
    assert mode == 0o600


async def test_restart_keeps_backends_and_resets_modcount(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        for _ in range(3):
            await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
        await api.ok("EditBackend", backend_id=1, title="kept", settings={"Address": "x"})
        await api.ok("DeleteBackend", backend_id=2)
    async with in_process(test_config(data_dir)) as api:
        listing = await api.ok("ListBackends")
        assert list(listing) == ["0", "1"]
        assert listing["1"]["title"] == "kept" and listing["1"]["modcount"] == 0
        assert (await api.ok("AddNewBackend", type_id="swarmkeeper_dummy"))["id"] == 2


async def test_recovers_from_a_write_cut_between_renames(data_dir: Path) -> None:
    path = data_dir / "Backends.fds"
    data_dir.mkdir(parents=True)
    (data_dir / "Backends.fds~2").write_text(SWARM_FILE)
    (data_dir / "Backends.fds~1").write_text("0:\n\ttype: swarmkeeper_dummy\n\ttitle: half-writ")
    async with in_process(test_config(data_dir)) as api:
        assert list(await api.ok("ListBackends")) == ["0", "5"]
    assert not path.with_name("Backends.fds~2").exists()


async def test_unreadable_file_is_moved_aside_not_overwritten(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "Backends.fds").write_text("0:\n\ttype: x\n\t\t\tbroken: indentation\n  nonsense")
    async with in_process(test_config(data_dir)) as api:
        assert await api.ok("ListBackends") == {}
        await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    kept = [p for p in data_dir.iterdir() if ".unreadable-" in p.name]
    assert len(kept) == 1 and "nonsense" in kept[0].read_text()


async def test_backends_file_flag(data_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "mine.fds"
    async with in_process(test_config(data_dir, backends_file=elsewhere)) as api:
        await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    assert list(fds.loads(elsewhere.read_text())) == ["0"]
    assert not (data_dir / "Backends.fds").exists()


async def test_kill_9_in_a_burst_of_edits_loses_nothing_answered(data_dir: Path) -> None:
    server = ServerProcess(data_dir).start()
    answered: dict[int, str] = {}
    try:
        async with server.client() as http:
            api = APIClient(http)
            for _ in range(8):
                await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")

            async def edit_forever(backend_id: int) -> None:
                for n in range(10_000):
                    title = f"edit-{backend_id}-{n}"
                    response = await api.call("EditBackend", backend_id=backend_id, title=title, settings={})
                    if response.status_code == 200 and response.json().get("title") == title:
                        answered[backend_id] = title

            tasks = [asyncio.create_task(edit_forever(i)) for i in range(8)]
            while sum(1 for _ in answered) < 8 or min(int(t.split("-")[2]) for t in answered.values()) < 5:
                await asyncio.sleep(0.02)
            server.kill()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(result, httpx.TransportError) for result in results)
    finally:
        if server.process and server.process.poll() is None:
            server.kill()
    saved = fds.loads((data_dir / "Backends.fds").read_text())
    for backend_id, title in answered.items():
        saved_title = str(saved[str(backend_id)]["title"])
        # the last answered edit is on disk (a later one may have reached the disk unanswered)
        assert int(saved_title.split("-")[2]) >= int(title.split("-")[2]), (backend_id, title, saved_title)
    restarted = ServerProcess(data_dir).start()
    try:
        async with restarted.client() as http:
            listing = await APIClient(http).ok("ListBackends")
        assert len(listing) == 8
    finally:
        restarted.stop()


def test_settings_file_written_with_defaults_and_read_back(tmp_path: Path) -> None:
    from swarmkeeper.config import ServerSettings

    path = tmp_path / "Settings.fds"
    settings = ServerSettings.load(path)
    assert settings.backends.MaxBackendInitAttempts == 3
    text = path.read_text()
    assert "Backends:" in text and "MaxBackendInitAttempts: 3" in text and "#How many times to retry" in text
    path.write_text(text.replace("MaxBackendInitAttempts: 3", "MaxBackendInitAttempts: 7")
                    + "Paths:\n\tModelRoot: Models\n")
    assert ServerSettings.load(path).backends.MaxBackendInitAttempts == 7
    assert "ModelRoot" in path.read_text()
    os.chmod(path, 0o600)
