"""Reading a remote's ListBackends defensively, and which remote backends get a child
(swarmkeeper/backends/swarm_remote.py): pure functions, no servers."""

from __future__ import annotations

from typing import Any

import pytest

from swarmkeeper.backends.swarm_remote import RemoteBackend, loop_path, plan, read_entry, read_listing

US, B, C = "us-0000000000", "b-1111111111", "c-2222222222"


def entry(backend_id: Any, status: str = "running", **fields: Any) -> dict[str, Any]:
    return {"type": "comfyui_selfstart", "status": status, "id": backend_id, "features": ["comfyui"],
            "title": "gpu", "max_usages": 2, "can_load_models": True, "current_model": None, **fields}


def test_a_swarmui_entry_is_read_whole() -> None:
    read = read_entry(entry(3, current_model="sdxl.safetensors", swarm_chain=[B, C]))
    assert read == RemoteBackend(id=3, type="comfyui_selfstart", status="running", title="gpu",
                                 features=frozenset({"comfyui"}), max_usages=2, can_load_models=True,
                                 current_model="sdxl.safetensors", chain=(B, C))


@pytest.mark.parametrize("bad", [None, [], "x", {"status": "running"}, entry("three"), entry(True), entry(2**40),
                                 {"id": 1, "status": 5}])
def test_entries_without_id_or_status_are_skipped(bad: Any) -> None:
    assert read_entry(bad) is None


def test_odd_fields_fall_back_instead_of_failing() -> None:
    read = read_entry(entry("7", features="comfyui", max_usages="lots", can_load_models="yes", current_model=5,
                            title=None, swarm_chain=[B, 3, None]))
    assert read is not None
    assert (read.id, read.features, read.max_usages, read.can_load_models) == (7, frozenset(), 0, False)
    assert (read.current_model, read.title, read.chain) == (None, "", (B,))


def test_listing_counts_what_it_skips() -> None:
    backends, skipped = read_listing({"0": entry(0), "1": "garbage", "-1": entry(-1)})
    assert sorted(backends) == [-1, 0] and skipped == 1


def remotes(*entries: RemoteBackend) -> dict[int, RemoteBackend]:
    return {remote.id: remote for remote in entries}


def test_plan_follows_swarmui_rules() -> None:
    listed = remotes(
        RemoteBackend(0, "comfyui_selfstart", "running", features=frozenset({"comfyui"})),
        RemoteBackend(1, "comfyui_selfstart", "loading"),
        RemoteBackend(2, "comfyui_selfstart", "waiting"),
        RemoteBackend(3, "swarmswarmbackend", "running"),  # the remote's own control instance
        RemoteBackend(4, "swarmswarmbackend", "loading"),  # ... still connecting: not waited for
        RemoteBackend(-1, "swarmswarmbackend", "running", features=frozenset({"video"}), chain=(C,)),
        RemoteBackend(-2, "swarmswarmbackend", "running", chain=(C, US)),  # leads back here
    )
    forwarding = plan(listed, US, allow_forwarding=True)
    assert sorted(forwarding.linked) == [-1, 0] and list(forwarding.loops) == [-2]
    assert forwarding.loading == 1 and forwarding.features == {"comfyui", "video"}
    local_only = plan(listed, US, allow_forwarding=False)
    assert list(local_only.linked) == [0] and local_only.loops == {} and local_only.features == {"comfyui"}


def test_loop_path_names_every_hop() -> None:
    assert loop_path("http://b:7801", (C, US), US) == "this server → http://b:7801 → server c-222222 → this server"
    assert loop_path("http://b:7801", (US,), US) == "this server → http://b:7801 → this server"
