"""The ``swarmkeeper`` command. Commands are thin: they parse flags and call the library."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from swarmkeeper import __version__, dotnet


def _bool_flag(text: str) -> bool:
    value = dotnet.parse_bool(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, not '{text}'")
    return value


def _add_flag(parser: argparse.ArgumentParser, name: str, **options: object) -> None:
    """SwarmUI spells flags with underscores (``--data_dir``); hyphens work too."""
    spellings = [f"--{name}"]
    if "_" in name:
        spellings.append(f"--{name.replace('_', '-')}")
    parser.add_argument(*spellings, dest=name, **options)  # type: ignore[arg-type]


def serve_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = commands.add_parser("serve", help="Run the server.",
                                description="Run the server, with SwarmUI's own flags.")
    _add_flag(serve, "host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
    _add_flag(serve, "port", type=int, default=7801, help="Port to listen on (default 7801).")
    _add_flag(serve, "data_dir", type=Path, default=Path("Data"),
              help="Folder for Backends.fds, Settings.fds, the database and logs (default Data; created).")
    _add_flag(serve, "backends_file", type=Path, default=None,
              help="Path of the backends file (default <data_dir>/Backends.fds).")
    _add_flag(serve, "settings_file", type=Path, default=None,
              help="Path of the server settings file (default <data_dir>/Settings.fds).")
    _add_flag(serve, "lock_settings", type=_bool_flag, nargs="?", const=True, default=False,
              help="Refuse every change to backends through the API (true/false; bare flag means true).")
    _add_flag(serve, "loglevel", default="Info",
              help="Console log level: Verbose, Debug, Info, Init, Warning, Error or None (default Info).")
    _add_flag(serve, "user_id", default="local", help="The local user's name in account-less mode.")
    _add_flag(serve, "backend_types", action="append", default=[], metavar="MODULE",
              help="Also register the BACKEND_TYPES of this Python module (a plug-in); may repeat.")
    serve.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from swarmkeeper.app import create_app
    from swarmkeeper.config import ServerConfig
    from swarmkeeper.logs import LogStore, parse_level, setup_logging

    try:
        level = parse_level(args.loglevel)
    except ValueError as error:
        print(f"swarmkeeper: {error}", file=sys.stderr)
        return 2
    logs = LogStore()
    setup_logging(level, logs)
    config = ServerConfig(host=args.host, port=args.port, data_dir=args.data_dir, backends_file=args.backends_file,
                          settings_file=args.settings_file, lock_settings=args.lock_settings,
                          loglevel=args.loglevel, user_id=args.user_id,
                          backend_type_modules=tuple(args.backend_types))
    app = create_app(config, logs)
    server = uvicorn.Server(uvicorn.Config(app, host=config.host, port=config.port, log_config=None,
                                           access_log=False, lifespan="on", timeout_graceful_shutdown=30))
    app.state.exiting = lambda: server.should_exit  # open push streams end as soon as the server stops
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else 3  # 3: uvicorn's startup-failure code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swarmkeeper", description="A backend manager that speaks SwarmUI's "
                                                                     "BackendAPI.")
    parser.add_argument("--version", action="version", version=f"swarmkeeper {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        raise SystemExit(2)
    raise SystemExit(args.run(args))
