"""The Ray provider's settings as read: each form of RayResources and WorkerCommand, and the reason
for each value that cannot work; the actor's placeholders."""

from __future__ import annotations

import pytest

from swarmkeeper.backends.autoscale import AutoScalingSettings, ray_options
from swarmkeeper.backends.autoscale_ray_actor import fill
from swarmkeeper.backends.autoscale_ray_link import driver_env
from swarmkeeper.backends.autoscale_ray_options import RayOptions, parse_command, parse_resources


@pytest.mark.parametrize(("text", "resources"), [
    ("", {}),
    ('{"A100": 1, "fast_disk": 0.5}', {"A100": 1.0, "fast_disk": 0.5}),
    ("A100=1, fast_disk = 0.5", {"A100": 1.0, "fast_disk": 0.5}),
    ("A100=1\nfast_disk=2\n", {"A100": 1.0, "fast_disk": 2.0}),
])
def test_resources_are_json_or_name_amount_pairs(text: str, resources: dict[str, float]) -> None:
    assert parse_resources(text) == resources


@pytest.mark.parametrize(("settings", "reason"), [
    ({"RayResources": "A100"}, "RayResources: 'A100' is not name=amount."),
    ({"RayResources": '{"A100": 1'}, "RayResources: not valid JSON (Expecting ',' delimiter)."),
    ({"RayResources": "[1]"}, "RayResources: not a JSON object."),
    ({"RayResources": '{"A100": "lots"}'}, "RayResources: the amount of 'A100' is not a number."),
    ({"RayResources": "A100=-1"}, "RayResources: the amount of 'A100' must be 0 or more."),
    ({"RayResources": "GPU=2"}, "RayResources: 'GPU' cannot be a custom resource (use CPUsPerWorker, "
                                "GPUsPerWorker)."),
    ({"GPUsPerWorker": 1.5}, "GPUsPerWorker above 1 must be a whole number (Ray's rule; it is 1.5)."),
    ({"CPUsPerWorker": -1}, "CPUsPerWorker must be 0 or more (it is -1)."),
    ({"WorkerCommand": "  "}, "WorkerCommand is empty."),
    ({"WorkerCommand": "python 'main.py"}, "WorkerCommand cannot be read (No closing quotation)."),
])
def test_settings_that_cannot_work_say_why(settings: dict[str, object], reason: str) -> None:
    assert ray_options(AutoScalingSettings(Provider="ray", **settings)).problem() == reason  # type: ignore[arg-type]


def test_the_defaults_ask_for_one_gpu_and_run_comfyui() -> None:
    options = ray_options(AutoScalingSettings(Provider="ray"))
    assert options.problem() is None
    assert options.request() == {"gpus": 1.0, "cpus": 1.0, "resources": {}, "folder": "", "env": {},
                                 "argv": ["python", "main.py", "--listen", "{host}", "--port", "{port}"]}
    assert options.retries == 24  # 120 s in SwarmUI's 5 s retries
    assert RayOptions(gpus=0.5, start_seconds=1).problem() is None and RayOptions(start_seconds=1).retries == 1


def test_the_actor_fills_in_its_node_and_port() -> None:
    argv = parse_command("'{python}' main.py --listen {host} --port={port} --extra '{not a placeholder}'")
    assert fill(argv, {"host": "10.0.0.7", "port": "8190", "python": "/usr/bin/python3"}) == [
        "/usr/bin/python3", "main.py", "--listen", "10.0.0.7", "--port=8190", "--extra", "{not a placeholder}"]


def test_only_a_cluster_on_loopback_is_told_it_may_stay_local() -> None:
    assert driver_env("127.0.0.1:6379")["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    assert driver_env("localhost:6379")["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in driver_env("10.0.0.5:6379")
    assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in driver_env("")
