"""Explicit wiring: every part gets what it needs through its constructor or a typed field. No
string-keyed bag of services (the old ``Services.extra``, ``BackendServices.extra`` and
``ServerConfig.extra``) comes back, and the running server's Services is complete when built."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from swarmkeeper.accounts.service import Accounts
from swarmkeeper.backends.base import BackendServices
from swarmkeeper.config import ServerConfig
from swarmkeeper.dispatch.service import Dispatch
from swarmkeeper.services import Services
from tests.servers import in_process, test_config

PACKAGE = Path(__file__).resolve().parent.parent / "swarmkeeper"
CONTAINERS = [Services, BackendServices, ServerConfig]


@pytest.mark.parametrize("container", CONTAINERS, ids=lambda container: container.__name__)
def test_no_container_carries_parts_by_name(container: type) -> None:
    """No field named ``extra``, and no field that is a dictionary keyed by strings (a service
    locator by another name)."""
    fields = {field.name: str(field.type) for field in dataclasses.fields(container)}
    assert "extra" not in fields
    by_name = {name: hint for name, hint in fields.items() if re.match(r"(dict|Mapping|MutableMapping)\[str,", hint)}
    assert by_name == {}


def test_no_code_reads_or_writes_an_extra_bag() -> None:
    """The package neither uses ``.extra`` on anything nor builds Services with a placeholder."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if re.search(r"\.extra\b|\bextra=dict\(|set below", line):
                found.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert found == []


def test_services_fields_are_never_optional() -> None:
    """Every part of Services is given when it is built: none may be None, waiting to be set."""
    optional = [field.name for field in dataclasses.fields(Services) if "None" in str(field.type)]
    assert optional == []


async def test_a_running_server_has_every_part_in_place(data_dir: Path) -> None:
    async with in_process(test_config(data_dir)) as api:
        services = api.services
        assert services is not None
        assert isinstance(services.accounts, Accounts)
        assert isinstance(services.dispatch, Dispatch)
        assert services.dispatch.running_pool() is services.dispatch.pool
        assert services.registry is services.manager.registry
        assert services.metrics is services.manager.services.metrics
        assert services.server_id == services.manager.services.server_id
        status = await api.ok("GetCurrentStatus")
        assert status["status"] == {"waiting_gens": 0, "loading_models": 0, "waiting_backends": 0, "live_gens": 0}
    assert services.dispatch.running_pool() is None  # stopped with the server
