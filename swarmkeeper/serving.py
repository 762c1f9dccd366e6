"""``swarmkeeper serve``'s start: lock the data folder, start the services, then listen.

A start that fails exits 1 with one line saying why (a corrupt database, a settings file that does
not parse, a directory where a file should be, invalid UTF-8, another server on the folder): no
traceback (unless ``--loglevel Debug``), and no hang, since whatever had started is stopped first.
The services start before uvicorn runs the app's lifespan, which then finds them in ``app.state``:
a failure inside the lifespan would be logged by uvicorn as a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from swarmkeeper.app import start_services
from swarmkeeper.config import ServerConfig
from swarmkeeper.datadir import make_private_dir
from swarmkeeper.datalock import DataDirLock
from swarmkeeper.exceptions import StartupError
from swarmkeeper.logs import LogStore

log = logging.getLogger("swarmkeeper")

def freeze_what_is_loaded() -> None:
    """Leave what the start loaded (modules, settings, the backends' records) out of the collector's
    passes from now on: it lives as long as the server. At 1,000 backends a full pass took ~94 ms of
    CPU (a stall every answer waiting then sees); with this, ~28 ms (docs/performance.md). The price:
    a backend loaded now and deleted later stays in memory (record and backend refer to each other,
    a cycle only the collector frees), a few KB each."""
    gc.collect()  # no garbage is frozen with it
    gc.freeze()


#: The exit code of a start that failed (uvicorn's own, when it cannot listen, is 3).
START_FAILED = 1


def hold_data_dir(folder: Path) -> DataDirLock | None:
    """Make the data folder (0700) and lock it for this process; None, the reason logged, if another
    server holds it or it cannot be made. Call it before anything else writes there (log files)."""
    try:
        make_private_dir(folder)
        return DataDirLock.acquire(folder)
    except StartupError as error:
        _failed(error)
        return None


def run_server(server: uvicorn.Server, app: Starlette, config: ServerConfig, logs: LogStore) -> int:
    """Start the services, then serve ``app`` until stopped; the exit code."""

    async def start_then_serve() -> int:
        try:
            app.state.services = await start_services(config, logs)
        except Exception as error:  # any start failure is one line, then exit 1
            return _failed(error)
        freeze_what_is_loaded()
        await server.serve()
        return 0 if server.started else 3  # 3: uvicorn's startup-failure code

    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=server.config.get_loop_factory()) as run:
        return run.run(start_then_serve())
    return 0  # Ctrl-C during the start: what had started was stopped


def _failed(error: Exception) -> int:
    reason = error.message if isinstance(error, StartupError) else f"{type(error).__name__}: {error}"
    log.error("swarmkeeper cannot start: %s", " ".join(reason.split()))
    log.debug("The start failed here:", exc_info=error)
    return START_FAILED
