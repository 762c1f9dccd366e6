"""Fixtures shared by every test module; each names the variant of server it builds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.accounts_support import Accounted, accounts_server
from tests.ctrl_c import hear_ctrl_c
from tests.servers import APIClient, in_process, test_config

hear_ctrl_c()  # the children that tests stop with SIGINT must hear it (tests/ctrl_c.py)

#: The session's shared real ComfyUIs (started in the background once the tests are known, if one asks for them).
pytest_plugins = ["tests.comfy_peer"]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "Data"


@pytest.fixture
async def app_client(data_dir: Path) -> AsyncIterator[APIClient]:
    """An in-process server with the dummy backend types, account-less, settings unlocked."""
    async with in_process(test_config(data_dir)) as client:
        yield client


@pytest.fixture
async def app_client_locked(data_dir: Path) -> AsyncIterator[APIClient]:
    """As app_client, started with --lock_settings."""
    async with in_process(test_config(data_dir, lock_settings=True)) as client:
        yield client


@pytest.fixture
async def app_client_with_accounts(data_dir: Path) -> AsyncIterator[Accounted]:
    """An in-process server started with --require_accounts, no localhost bypass, called from a
    remote address; no users yet (see tests/accounts_support.py for making them)."""
    async with accounts_server(data_dir) as server:
        yield server
