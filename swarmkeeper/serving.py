"""``swarmkeeper serve``: lock the data folder, start the services, then listen.

A start that fails exits 1 with one line saying why (a corrupt database, a settings file that does
not parse, a directory where a file should be, invalid UTF-8, another server on the folder): no
traceback (unless ``--loglevel Debug``), and no hang, since whatever had started is stopped first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import uvicorn

from swarmkeeper.app import create_app, start_services
from swarmkeeper.config import ServerConfig
from swarmkeeper.datadir import make_private_dir
from swarmkeeper.datalock import DataDirLock
from swarmkeeper.exceptions import StartupError
from swarmkeeper.logs import LogStore
from swarmkeeper.net import SWARM_KEEP_ALIVE_SECONDS

log = logging.getLogger("swarmkeeper")

#: The exit code of a start that failed (uvicorn's own startup-failure code is 3).
START_FAILED = 1


def serve(config: ServerConfig, logs: LogStore, open_log_files: Callable[[], object]) -> int:
    """Run the server until it is stopped; returns the exit code. ``open_log_files`` runs once the
    folder is ours (so a second server never writes into the first one's logs)."""
    try:
        make_private_dir(config.data_dir)
        lock = DataDirLock.acquire(config.data_dir)
    except StartupError as error:
        return _failed(error)
    try:
        open_log_files()
        return _listen(config, logs)
    finally:
        lock.release()


def _listen(config: ServerConfig, logs: LogStore) -> int:
    app = create_app(config, logs)
    server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, log_config=None,
                                           access_log=False, lifespan="on", timeout_graceful_shutdown=30,
                                           timeout_keep_alive=SWARM_KEEP_ALIVE_SECONDS))
    app.state.exiting = lambda: server.should_exit  # open push streams end as soon as the server stops

    async def start_then_serve() -> int:
        try:
            app.state.services = await start_services(config, logs)
        except Exception as error:  # any start failure is one line, then exit 1
            return _failed(error)
        await server.serve()
        return 0 if server.started else 3  # 3: uvicorn's startup-failure code

    loop_factory = server.config.get_loop_factory()
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(start_then_serve())
    return 0


def _failed(error: Exception) -> int:
    reason = error.message if isinstance(error, StartupError) else f"{type(error).__name__}: {error}"
    log.error("swarmkeeper cannot start: %s", " ".join(reason.split()))
    log.debug("The start failed here:", exc_info=error)
    return START_FAILED
