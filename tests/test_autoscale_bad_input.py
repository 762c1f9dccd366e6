"""Bad start scripts and settings, through the API: a clear reason on the backend, nothing launched
twice, nothing left running."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from swarmkeeper.backends.autoscale import AutoScaler
from tests.autoscale_support import FAST, none_left, protocol, write_script
from tests.metrics_support import scrape, value
from tests.servers import APIClient, in_process, test_config


async def autoscaler(api: APIClient, **settings: Any) -> int:
    backend_id = int((await api.ok("AddNewBackend", type_id="autoscalingbackend"))["id"])
    await api.ok("EditBackend", backend_id=backend_id, title="Farm", settings=settings)
    return backend_id


async def reason_when(api: APIClient, backend_id: int, words: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    entry: dict[str, Any] = {}
    while time.monotonic() < deadline:
        entry = (await api.ok("ListBackends", nonreal=True))[str(backend_id)]
        if words in entry["status_reason"]:
            return entry
        await asyncio.sleep(0.05)
    raise AssertionError(f"never said {words!r}: {entry}")


LAUNCH_NOW = {"MinBackends": 1, "MinWaitAfterFailure": 10, "StartScriptTimeoutSeconds": 1,
              "ConnectionAttemptTimeoutSeconds": 1}


@pytest.mark.parametrize(("body", "words", "outcome"), [
    (protocol("DeclareFailed: the cluster is full") + "sleep 30\n",
     "Last failed launch: #1: The start script declared a failure: the cluster is full", "declared_failed"),
    ("sleep 30\n", "Last failed launch: #1: The start script gave no NewURL within 1 s; it was stopped.", "failed"),
    ("head -c 2000 /dev/urandom\necho\nexit 1\n", "Last failed launch: #1: The start script ended (exit code 1) "
                                                   "without giving a NewURL", "failed"),
    (protocol("NewURL: file:///etc/passwd") + "sleep 30\n",
     "Last failed launch: #1: The start script printed NewURL 'file:///etc/passwd', not an http(s) URL.", "failed"),
    (protocol("DoRetries: 0") + protocol("NewURL: http://127.0.0.1:9/") + "sleep 30\n",
     "Last failed launch: #1: the worker at http://127.0.0.1:9/ did not answer in time", "unreachable"),
])
async def test_a_failed_launch_is_the_reason_and_waits(tmp_path: Path, body: str, words: str, outcome: str) -> None:
    script = write_script(tmp_path / "launch.sh", body)
    async with in_process(test_config(tmp_path / "data", autoscale=FAST)) as api:
        backend_id = await autoscaler(api, StartScript=str(script), **LAUNCH_NOW)
        entry = await reason_when(api, backend_id, words)
        assert entry["status"] == "running"
        assert "next start allowed in" in entry["status_reason"]  # MinWaitAfterFailure: no second launch
        assert "Not refilling to MinBackends (1) yet: waiting after a failed launch" in entry["status_reason"]
        assert api.services is not None
        scaler = api.services.registry.get(backend_id).backend  # type: ignore[union-attr]
        assert isinstance(scaler, AutoScaler) and scaler.launches == 1
        await none_left(tmp_path)
        for _ in range(100):  # an unreachable worker's launch is counted once its processes are ended
            if value(await scrape(api), "swarmkeeper_autoscale_launches_total", outcome=outcome) == 1:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"no {outcome} launch counted")


async def test_unusable_settings_are_errored_with_the_reason(tmp_path: Path) -> None:
    plain = tmp_path / "plain.sh"
    plain.write_text("#!/bin/sh\n")
    async with in_process(test_config(tmp_path / "data", autoscale=FAST)) as api:
        missing = await autoscaler(api, StartScript=str(tmp_path / "gone.sh"))
        entry = await api.wait_status(missing, "errored")
        gone = tmp_path / "gone.sh"
        assert entry["status_reason"] == f"StartScript '{gone}' does not exist (looked for {gone})."
        not_executable = await autoscaler(api, StartScript=str(plain))
        entry = await api.wait_status(not_executable, "errored")
        assert "is not executable" in entry["status_reason"]
        backwards = await autoscaler(api, StartScript=str(plain), MinBackends=4, MaxBackends=2)
        entry = await api.wait_status(backwards, "errored")
        assert entry["status_reason"] == ("Nonsensical settings, refusing to start: MinBackends (4) is above "
                                          "MaxBackends (2).")
        ray = await autoscaler(api, Provider="ray", RayResources="A100")
        entry = await api.wait_status(ray, "errored")
        assert entry["status_reason"] == "RayResources: 'A100' is not name=amount."
        unset = int((await api.ok("AddNewBackend", type_id="autoscalingbackend"))["id"])
        entry = await api.wait_status(unset, "disabled")
        assert entry["status_reason"] == "No StartScript is set."
        assert await api.error("EditBackend", backend_id=unset, title="x", settings={"Provider": "k8s"}) == (
            "Invalid value 'k8s' for setting 'Provider', must be one of: script, ray")
