"""Ports for the servers tests start: never from the kernel's ephemeral range, and a block of
their own per pytest worker.

The kernel hands ports of its ephemeral range (32768-60999 here) to every outgoing connection and to
every ``bind(0)``; a port a test picked there and bound a moment later can be taken meanwhile, by
an outgoing connection of anything on the machine or by the other worker's pick (pytest-xdist
runs two). Ports below that range are handed out by nobody but this allocator: each worker counts
through its own slice of 10000-32767 (a random start, so runs on one machine rarely meet), and
skips a port that has a listener. scripts/test's side-by-side runs (not xdist) name their slice
in ``SWARMKEEPER_TEST_SLICE``.
"""

from __future__ import annotations

import os
import random
import socket

LOW, HIGH = 10000, 32768  # below the kernel's ephemeral range
#: Self-start backends count up from a base port: a block is this many ports, one per backend.
BLOCK = 100


def _slice() -> range:
    # scripts/test runs two pytest processes side by side (no xdist) and names their slices.
    side_by_side = os.environ.get("SWARMKEEPER_TEST_SLICE")  # "index/count"
    if side_by_side:
        worker, _, count = side_by_side.partition("/")
        workers = int(count)
    else:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    size = (HIGH - LOW) // max(workers, 1)
    start = LOW + int(worker or 0) * size
    return range(start, start + size)


_PORTS = _slice()
_offset = random.randrange(len(_PORTS) // BLOCK) * BLOCK  # where this worker's next port is


def _take(count: int) -> int:
    """The first of the next ``count`` ports of the slice (from its start again at its end)."""
    global _offset
    if _offset + count > len(_PORTS):
        _offset = 0
    first = _PORTS[_offset]
    _offset += count
    return first


def _listened(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """A port of this worker's slice that nothing listens on."""
    for _ in range(len(_PORTS)):
        port = _take(1)
        if not _listened(port):
            return port
    raise RuntimeError(f"no free port in {_PORTS}")


def port_block() -> int:
    """The first of ``BLOCK`` ports of this worker's slice that no later call hands out again (a
    self-start ``BackendStartingPort``: its backends take the ports after it)."""
    global _offset
    _offset = -(-_offset // BLOCK) * BLOCK  # to the next block's start
    return _take(BLOCK)
