"""The pool's own port (``--comfy_port``) is a second uvicorn server in the same process. Ctrl-C and
SIGTERM are the main server's to handle: uvicorn's ``Server.serve`` takes them over for as long as
it runs, so the pool port's server must not, or a SIGTERM stops only the pool port (the main server
keeps answering until the pool port has wound down) and the handlers it puts back when it stops
leave the rest of the main server's shutdown without its own (a second Ctrl-C or SIGTERM then ends
the process before its ComfyUIs are stopped)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import httpx
import pytest

from swarmkeeper.dispatch.pool.port import PoolPort
from swarmkeeper.limits import WireLimits
from tests.ports import free_port

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def owner(signum: int, frame: FrameType | None) -> None:
    """The handler the main server would have installed; never called here."""
    raise AssertionError(f"signal {signum} reached the test's handler")


@pytest.fixture
def main_server_handlers() -> Iterator[None]:
    before = {sig: signal.signal(sig, owner) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


async def test_the_pool_port_leaves_the_process_signals_to_the_main_server(main_server_handlers: None) -> None:
    port = PoolPort(lambda: None, "127.0.0.1", free_port(), WireLimits())
    assert await port.start()
    try:
        async with httpx.AsyncClient() as http:  # serving: its server's start is behind it
            assert (await http.get(f"http://127.0.0.1:{port.port}/")).status_code == 503  # no app given
        assert all(signal.getsignal(sig) is owner for sig in SIGNALS)
    finally:
        await port.stop()
    assert all(signal.getsignal(sig) is owner for sig in SIGNALS)
