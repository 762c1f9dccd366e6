r"""Issue 13, point 5: text that cannot be stored is refused at the door. Lone surrogates
(``"\ud800"`` is valid JSON), NUL and control characters are sent to a real server in every text
parameter of the backend routes and in settings; each gets SwarmUI's ``{"error"}`` naming the
parameter and the character, never ``internal_error`` or a bare 500, and leaves ListBackends and
Backends.fds as they were. Text already in memory or on disk never breaks ListBackends or a save."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarmkeeper import fds
from swarmkeeper.backends.swarm import TYPE_ID as SWARM_TYPE
from swarmkeeper.files import write_atomic
from tests.servers import APIClient, LoopbackServer, on_loopback, test_config

SURROGATE = "a lone surrogate (U+D800) at position 0"


class RawAPI:
    """Posts bodies as exact JSON text (\\ud800 escapes included), as a hostile client would."""

    def __init__(self, http: httpx.AsyncClient, session_id: str) -> None:
        self.http = http
        self.session_id = session_id

    async def send(self, route: str, **params: Any) -> httpx.Response:
        body = json.dumps({"session_id": self.session_id, **params})  # ensure_ascii: "\ud800" stays an escape
        return await self.http.post(f"/API/{route}", content=body, headers={"Content-Type": "application/json"})

    async def error(self, route: str, **params: Any) -> str:
        response = await self.send(route, **params)
        assert response.status_code == 200, response.text
        data = response.json()
        assert list(data) == ["error"], data
        return str(data["error"])


@pytest.fixture
async def server(data_dir: Path) -> AsyncIterator[LoopbackServer]:
    async with on_loopback(test_config(data_dir)) as running:
        yield running


@pytest.fixture
async def clients(server: LoopbackServer) -> AsyncIterator[tuple[APIClient, RawAPI]]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        api = APIClient(http)
        yield api, RawAPI(http, await api.new_session())


async def one_backend(api: APIClient) -> None:
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    await api.ok("EditBackend", backend_id=0, title="GPU", settings={"Address": "a", "Token": "secret"})
    await api.wait_status(0, "running")


def parameter_error(name: str, what: str) -> str:
    return f"Invalid value for parameter '{name}': it contains {what}, which cannot be stored."


PARAMETER_CASES = [
    ("AddNewBackend", {"type_id": "\ud800"}, parameter_error("type_id", SURROGATE)),
    ("AddNewBackend", {"type_id": "swarmkeeper_dummy\x00"},
     parameter_error("type_id", "NUL (U+0000) at position 17")),
    ("EditBackend", {"backend_id": 0, "title": "\ud800", "settings": {}}, parameter_error("title", SURROGATE)),
    ("EditBackend", {"backend_id": 0, "title": "a\x00b", "settings": {}},
     parameter_error("title", "NUL (U+0000) at position 1")),
    ("EditBackend", {"backend_id": 0, "title": "two\nlines", "settings": {}},
     parameter_error("title", "a control character (U+000A) at position 3")),
    ("EditBackend", {"backend_id": 0, "title": "tab\there", "settings": {}},
     parameter_error("title", "a control character (U+0009) at position 3")),
    ("EditBackend", {"backend_id": 0, "title": "\x1b[31mred", "settings": {}},
     parameter_error("title", "a control character (U+001B) at position 0")),
    ("EditBackend", {"backend_id": 0, "title": "del\x7f", "settings": {}},
     parameter_error("title", "a control character (U+007F) at position 3")),
    ("EditBackend", {"backend_id": 0, "title": "c1\x85", "settings": {}},
     parameter_error("title", "a control character (U+0085) at position 2")),
    ("EditBackend", {"backend_id": "\ud800", "title": "", "settings": {}}, parameter_error("backend_id", SURROGATE)),
    ("EditBackend", {"backend_id": 0, "title": "", "settings": {}, "new_id": "\x00"},
     parameter_error("new_id", "NUL (U+0000) at position 0")),
    ("ToggleBackend", {"backend_id": 0, "enabled": "\ud800"}, parameter_error("enabled", SURROGATE)),
    ("DeleteBackend", {"backend_id": "0\x00"}, parameter_error("backend_id", "NUL (U+0000) at position 1")),
    ("RestartBackends", {"backend": "\ud800"}, parameter_error("backend", SURROGATE)),
    ("ListBackends", {"unused\ud800": 1},
     "Invalid parameter name: it contains a lone surrogate (U+D800) at position 6, which cannot be stored."),
    ("FreeBackendMemory", {"backend": "all\x07"},
     parameter_error("backend", "a control character (U+0007) at position 3")),
]

SETTINGS_CASES = [
    ({"Address": "\ud800"}, parameter_error("settings.Address", SURROGATE)),
    ({"Token": "x\x00"}, parameter_error("settings.Token", "NUL (U+0000) at position 1")),
    ({"OverQueue": "\ud800"}, parameter_error("settings.OverQueue", SURROGATE)),
    ({"Flag": ["ok", {"deep": "\x00"}]}, parameter_error("settings.Flag[1].deep", "NUL (U+0000) at position 0")),
    ({"\ud800": "x"}, "Invalid parameter name in 'settings': it contains " + SURROGATE + ", which cannot be stored."),
    ({"Address": "a\nb"}, "Setting 'Address' contains a control character (U+000A) at position 1, which cannot be "
                          "stored."),
    ({"Token": "\x07"}, "Setting 'Token' contains a control character (U+0007) at position 0, which cannot be stored."),
    ({"Mode": "ok\r"}, "Setting 'Mode' contains a control character (U+000D) at position 2, which cannot be stored."),
]


async def test_every_text_parameter_refuses_what_cannot_be_stored(clients: tuple[APIClient, RawAPI],
                                                                  data_dir: Path) -> None:
    api, raw = clients
    await one_backend(api)
    listing = await api.ok("ListBackends")
    saved = (data_dir / "Backends.fds").read_bytes()
    for route, params, message in PARAMETER_CASES:
        assert await raw.error(route, **params) == message, (route, params)
        assert await api.ok("ListBackends") == listing, (route, params)
        assert (data_dir / "Backends.fds").read_bytes() == saved, (route, params)


async def test_settings_refuse_what_cannot_be_stored(clients: tuple[APIClient, RawAPI], data_dir: Path) -> None:
    api, raw = clients
    await one_backend(api)
    listing = await api.ok("ListBackends")
    saved = (data_dir / "Backends.fds").read_bytes()
    for settings, message in SETTINGS_CASES:
        assert await raw.error("EditBackend", backend_id=0, title="GPU", settings=settings) == message, settings
        assert await api.ok("ListBackends") == listing, settings
        assert (data_dir / "Backends.fds").read_bytes() == saved, settings


async def test_a_multi_line_setting_takes_line_breaks_and_tabs_only(clients: tuple[APIClient, RawAPI],
                                                                    data_dir: Path) -> None:
    api, raw = clients
    await api.ok("AddNewBackend", type_id=SWARM_TYPE)
    headers = "X-One: 1\r\nX-Two:\t2\n"
    await api.ok("EditBackend", backend_id=0, title="remote", settings={"OtherHeaders": headers})
    assert fds.loads((data_dir / "Backends.fds").read_text())["0"]["settings"]["OtherHeaders"] == headers
    assert await raw.error("EditBackend", backend_id=0, title="remote", settings={"OtherHeaders": "X: \x0b"}) == (
        "Setting 'OtherHeaders' contains a control character (U+000B) at position 3, which cannot be stored.")


async def test_ordinary_unicode_is_stored(clients: tuple[APIClient, RawAPI], data_dir: Path) -> None:
    api, raw = clients
    await one_backend(api)
    title = "GPU \U0001f600 è 中 \u200b"  # an astral character arrives as a surrogate pair: a whole character
    response = await raw.send("EditBackend", backend_id=0, title=title, settings={"Address": "ü"})
    assert response.json()["title"] == title
    assert fds.loads((data_dir / "Backends.fds").read_text())["0"]["title"] == title


async def test_bad_text_in_memory_breaks_neither_listing_nor_saves(server: LoopbackServer,
                                                                    clients: tuple[APIClient, RawAPI],
                                                                    data_dir: Path) -> None:
    """Defence in depth: should a lone surrogate reach a record by another road (a backend's own
    status text), ListBackends still answers and every save still works."""
    api, _ = clients
    await one_backend(api)
    record = server.services.registry.get(0)
    assert record is not None
    record.title = "bad \ud800"
    record.set_status(record.status, "reason \udfff")
    listing = await api.ok("ListBackends")
    assert (listing["0"]["title"], listing["0"]["status_reason"]) == ("bad \ud800", "reason \udfff")
    await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
    assert fds.loads((data_dir / "Backends.fds").read_text())["0"]["title"] == "bad \ufffd"


BAD_FILE = (
    "0:\n"
    "\ttype: swarmkeeper_dummy\n"
    "\ttitle: nul\x00 bell\x07 esc\x1b\n"
    "\tenabled: true\n"
    "\tsettings:\n"
    "\t\tAddress: a\x00b\n"
    "\t\tToken:\n"
    "\t\t\tnested: section\n"
    "\t\tOverQueue:\n"
    "\t\t- 1\n"
    "1:\n"
    "\ttype: swarmkeeper_dummy\n"
    "\ttitle:\n"
    "\t\tnot: text\n"
    "\tsettings= aGk=\n"
    "2:\n"
    "\ttype: some_plugin_type\n"
    "\tblob= AAEC\n"
    "\tlist:\n"
    "\t- x\x01y\n"
)


async def test_odd_values_on_disk_break_neither_listing_nor_saves(data_dir: Path) -> None:
    write_atomic(data_dir / "Backends.fds", BAD_FILE)
    async with on_loopback(test_config(data_dir)) as running, \
            httpx.AsyncClient(base_url=running.url, timeout=30) as http:
        api = APIClient(http)
        listing = await api.ok("ListBackends")
        assert list(listing) == ["0", "1"]
        assert listing["0"]["title"] == "nul\x00 bell\x07 esc\x1b"
        assert listing["0"]["settings"]["OverQueue"] == 1  # the default: a list is no integer
        await api.ok("AddNewBackend", type_id="swarmkeeper_dummy")
        await api.ok("ToggleBackend", backend_id=1, enabled=False)
    saved = fds.loads((data_dir / "Backends.fds").read_text())
    assert list(saved) == ["0", "1", "2", "3"]
    assert saved["0"]["title"] == "nul\x00 bell\x07 esc\x1b" and saved["0"]["settings"]["Address"] == "a\x00b"
    assert saved["2"]["blob"] == b"\x00\x01\x02" and saved["2"]["list"] == ["x\x01y"]


async def test_a_self_started_comfyui_never_gets_a_nul_in_its_arguments(clients: tuple[APIClient, RawAPI]) -> None:
    api, raw = clients
    backend_id = (await api.ok("AddNewBackend", type_id="comfyui_selfstart"))["id"]
    assert await raw.error("EditBackend", backend_id=backend_id, title="", settings={"ExtraArgs": "--cpu \x00"}) == (
        parameter_error("settings.ExtraArgs", "NUL (U+0000) at position 6"))
    assert await raw.error("EditBackend", backend_id=backend_id, title="", settings={"StartScript": "main.py\n"}) == (
        "Setting 'StartScript' contains a control character (U+000A) at position 7, which cannot be stored.")
