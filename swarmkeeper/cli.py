"""The ``swarmkeeper`` command. Commands are thin: they parse flags and call the library."""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import io
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from swarmkeeper import __version__, dotnet
from swarmkeeper.cli_client import backends_parser, status_parser
from swarmkeeper.cli_client.context import Subcommands
from swarmkeeper.net import SWARM_KEEP_ALIVE_SECONDS

if TYPE_CHECKING:
    from swarmkeeper.limits import WireLimits


def _bool_flag(text: str) -> bool:
    value = dotnet.parse_bool(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, not '{text}'")
    return value


def _origins_flag(text: str) -> tuple[str, ...]:
    from swarmkeeper.dispatch.pool.origin import parse_allowed

    try:
        return parse_allowed(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_flag(parser: argparse.ArgumentParser, name: str, **options: object) -> None:
    """SwarmUI spells flags with underscores (``--data_dir``); hyphens work too."""
    spellings = [f"--{name}"]
    if "_" in name:
        spellings.append(f"--{name.replace('_', '-')}")
    parser.add_argument(*spellings, dest=name, **options)  # type: ignore[arg-type]


def serve_parser(commands: Subcommands) -> None:
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
    _add_flag(serve, "require_accounts", type=_bool_flag, nargs="?", const=True, default=False,
              help="Callers must log in or use an API key (as UserAuthorization.AuthorizationRequired; see "
                   "'swarmkeeper users' to create the first owner).")
    _add_flag(serve, "public_metrics", type=_bool_flag, nargs="?", const=True, default=False,
              help="GET /metrics answers anyone who can connect, even with accounts on (default false: it needs "
                   "a credential with view_logs).")
    _add_flag(serve, "backend_types", action="append", default=[], metavar="MODULE",
              help="Also register the BACKEND_TYPES of this Python module (a plug-in); may repeat.")
    _add_flag(serve, "log_format", choices=["text", "json"], default="text",
              help="Log line format of the console and the log files: SwarmUI's text (default) or JSON lines.")
    _add_flag(serve, "log_max_mb", type=float, default=10.0,
              help="Rotate <data_dir>/logs/server.log and each backend-<id>.log past this size (default 10; "
                   "0 writes no log files).")
    _add_flag(serve, "log_backups", type=int, default=5, help="Rotated log files kept per log (default 5).")
    _add_flag(serve, "comfy_port", type=int, default=7802,
              help="Port of the ComfyUI-compatible pool: point any ComfyUI client here (default 7802; -1: only "
                   "under /ComfyBackendDirect/ on the main port).")
    _add_flag(serve, "allowed_origins", type=_origins_flag, default=(), metavar="ORIGINS",
              help="Comma-separated origins (https://host[:port]) besides the server's own whose pages may call "
                   "the ComfyUI pool from a browser (default none: other sites' requests get 403).")
    _add_flag(serve, "ready_requires_backend", type=_bool_flag, nargs="?", const=True, default=True,
              help="/health/ready answers 503 until a backend is running (default true).")
    _add_flag(serve, "keep_backends", type=_bool_flag, nargs="?", const=True, default=False,
              help="On a graceful stop, leave self-started ComfyUIs running (with their loaded models) for the next "
                   "start to adopt, instead of stopping them (true/false; bare flag means true).")
    _add_flag(serve, "require_control_within", type=float, default=0.0, metavar="MINUTES",
              help="Shut down when no AdminTakeControl call (an autoscaling master's ping) came within this many "
                   "minutes (default 0: never). For autoscaled workers.")
    _add_flag(serve, "no_persist", type=_bool_flag, nargs="?", const=True, default=False,
              help="Write nothing to the data folder: the database in memory, no Settings.fds, no backend saves, no "
                   "log files (true/false; bare flag means true). For autoscaled workers.")
    _limit_flags(serve)
    serve.set_defaults(run=run_serve)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, not '{text}'")
    return value


def _limit_flags(serve: argparse.ArgumentParser) -> None:
    """The limits on the wire (docs/security.md, section 8), for both ports."""
    _add_flag(serve, "header_timeout", type=_positive, default=10.0,
              help="Seconds a client has to send a request's headers; then 408 and closed (default 10).")
    _add_flag(serve, "body_timeout", type=_positive, default=30.0,
              help="Seconds an API request's body may pause between two chunks (default 30).")
    _add_flag(serve, "keep_alive_timeout", type=_positive, default=None,
              help="Seconds an idle connection stays open between requests (default 130 on the main port, "
                   "75 on the pool's).")
    _add_flag(serve, "max_connections", type=int, default=2048,
              help="Open connections per port; the next is answered 503 and closed (default 2048; the open-file "
                   "limit is raised to fit).")
    _add_flag(serve, "max_connections_per_address", type=int, default=256,
              help="Open connections per port from one client address, so one client cannot take them all; "
                   "addresses in --forwarded_allow_ips are exempt (default 256; 0: no cap).")
    _add_flag(serve, "anonymous_body_mb", type=_positive, default=1.0,
              help="Largest API request body from a caller not identified before its body is read (no login "
                   "cookie, API key or X-Session-Id header) when accounts are on; default 1.")
    _add_flag(serve, "forwarded_allow_ips", default="",
              help="Comma-separated addresses or networks (or *) whose X-Forwarded-For/-Proto headers are "
                   "believed: your reverse proxy's (default: nobody's).")


def wire_limits(args: argparse.Namespace) -> WireLimits:
    from swarmkeeper.limits import MB, WireLimits, parse_allowed_ips

    return WireLimits(header_timeout=args.header_timeout, body_timeout=args.body_timeout,
                      keep_alive_timeout=args.keep_alive_timeout, max_connections=args.max_connections,
                      max_connections_per_address=args.max_connections_per_address,
                      anonymous_body_bytes=max(1, int(args.anonymous_body_mb * MB)),
                      forwarded_allow_ips=parse_allowed_ips(args.forwarded_allow_ips))


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from swarmkeeper.app import create_app
    from swarmkeeper.config import ServerConfig
    from swarmkeeper.limits import ensure_descriptors, server_config
    from swarmkeeper.logfiles import RotationPolicy, setup_log_files
    from swarmkeeper.logformat import formatter_for
    from swarmkeeper.logs import LogStore, parse_level, setup_logging
    from swarmkeeper.serving import START_FAILED, hold_data_dir, run_server

    try:
        level = parse_level(args.loglevel)
    except ValueError as error:
        print(f"swarmkeeper: {error}", file=sys.stderr)
        return 2
    try:
        limits = wire_limits(args)
    except ValueError as error:
        print(f"swarmkeeper: {error}", file=sys.stderr)
        return 2
    logs = LogStore()
    formatter = formatter_for(args.log_format)
    setup_logging(level, logs, formatter)
    limits = ensure_descriptors(limits, ports=2 if args.comfy_port >= 0 else 1)
    config = ServerConfig(host=args.host, port=args.port, data_dir=args.data_dir, backends_file=args.backends_file,
                          wire=limits,
                          settings_file=args.settings_file, lock_settings=args.lock_settings,
                          loglevel=args.loglevel, user_id=args.user_id, require_accounts=args.require_accounts,
                          public_metrics=args.public_metrics,
                          ready_requires_backend=args.ready_requires_backend, comfy_port=args.comfy_port,
                          allowed_origins=args.allowed_origins,
                          backend_type_modules=tuple(args.backend_types), keep_backends=args.keep_backends,
                          require_control_within=args.require_control_within, no_persist=args.no_persist)
    log_mb = 0 if args.no_persist else max(args.log_max_mb, 0)
    policy = RotationPolicy(max_bytes=int(log_mb * 1024 * 1024), backups=max(args.log_backups, 0))
    lock = hold_data_dir(config.data_dir)  # held until the process ends, however it ends
    if lock is None:
        return START_FAILED
    setup_log_files(config.data_dir, level, formatter, policy)
    app = create_app(config, logs)
    server = uvicorn.Server(server_config(app, limits, keep_alive=SWARM_KEEP_ALIVE_SECONDS, host=config.host,
                                          port=config.port, log_config=None, access_log=False, lifespan="on",
                                          timeout_graceful_shutdown=30))
    app.state.exiting = lambda: server.should_exit  # open push streams end as soon as the server stops
    app.state.request_shutdown = lambda: setattr(server, "should_exit", True)  # ShutdownServer: as Ctrl-C
    return run_server(server, app, config, logs)  # a start that fails: one line, exit code 1


def _data_dir_flag(parser: argparse.ArgumentParser) -> None:
    _add_flag(parser, "data_dir", type=Path, default=Path("Data"), help="The server's data folder (default Data).")


def users_parser(commands: Subcommands) -> None:
    from swarmkeeper.accounts import commands as run

    users = commands.add_parser("users", help="Manage user accounts (works on the data folder's database).")
    actions = users.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="Add a user; the password is asked for, or read with --password_stdin.")
    add.add_argument("name", type=run.user_name_arg, help="Lower-case letters, digits and . _ - @ (3 to 40).")
    add.add_argument("--role", default="user", help="The user's role (default user): owner, admin, poweruser, user, "
                                                    "guest, or a custom role made with AdminAddRole.")
    _add_flag(add, "password_stdin", action="store_true", help="Read the password from the first line of stdin.")
    add.set_defaults(run=run.run(run.users_add, password=True))
    listing = actions.add_parser("list", help="List users and their roles.")
    listing.set_defaults(run=run.run(run.users_list))
    set_role = actions.add_parser("set-role", help="Change a user's role.")
    set_role.add_argument("name")
    set_role.add_argument("role", help="owner, admin, poweruser, user, guest, or a custom role.")
    set_role.set_defaults(run=run.run(run.users_set_role))
    set_password = actions.add_parser("set-password", help="Set a user's password (ends their logins).")
    set_password.add_argument("name")
    _add_flag(set_password, "password_stdin", action="store_true", help="Read the password from stdin.")
    set_password.set_defaults(run=run.run(run.users_set_password, password=True))
    remove = actions.add_parser("remove", help="Remove a user, with their logins, sessions and API keys.")
    remove.add_argument("name")
    remove.set_defaults(run=run.run(run.users_remove))
    for parser in (add, listing, set_role, set_password, remove):
        _data_dir_flag(parser)


def keys_parser(commands: Subcommands) -> None:
    from swarmkeeper.accounts import commands as run

    keys = commands.add_parser("keys", help="Manage API keys (Authorization: Bearer) for scripts and bots.")
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="Create a key; it is printed once, on stdout.")
    create.add_argument("--user", required=True, help="The user the key acts as.")
    create.add_argument("--name", required=True, help="What the key is for (e.g. nightly-bot).")
    create.add_argument("--role", default="", help="A narrower role for the key (default: the user's own role); "
                                                   "built-in or custom.")
    _add_flag(create, "expires_days", type=float, default=0.0, help="Days until it expires (default 0: never).")
    create.set_defaults(run=run.run(run.keys_create))
    listing = actions.add_parser("list", help="List keys by name and prefix (never the key itself).")
    listing.add_argument("--user", default=None, help="Only this user's keys.")
    listing.set_defaults(run=run.run(run.keys_list))
    revoke = actions.add_parser("revoke", help="Revoke a key at once (by id or swk_ prefix).")
    revoke.add_argument("id")
    revoke.set_defaults(run=run.run(run.keys_revoke))
    for parser in (create, listing, revoke):
        _data_dir_flag(parser)


def audit_parser(commands: Subcommands) -> None:
    from swarmkeeper.accounts import commands as run

    audit = commands.add_parser("audit", help="Read the audit log, newest first.")
    audit.add_argument("--backend", default=None, help="Only entries about this backend id.")
    audit.add_argument("--user", default=None, help="Only entries by this user.")
    audit.add_argument("--limit", type=int, default=50, help="How many entries (default 50).")
    audit.add_argument("--json", action="store_true", help="One JSON object per line.")
    _data_dir_flag(audit)
    audit.set_defaults(run=run.run(run.audit_show))


def logs_parser(commands: Subcommands) -> None:
    import os

    from swarmkeeper.cli_client.logs import DEFAULT_URL, KEY_ENV, URL_ENV

    logs = commands.add_parser("logs", help="Print a backend's log lines (a self-started ComfyUI's output too) "
                                            "from a running server.")
    logs.add_argument("backend_id", type=int, help="The backend's id (ListBackends shows them).")
    _add_flag(logs, "url", default=os.environ.get(URL_ENV, DEFAULT_URL),
              help=f"The server's address (default ${URL_ENV} or {DEFAULT_URL}).")
    _add_flag(logs, "api_key", default=os.environ.get(KEY_ENV),
              help=f"An API key, sent as 'Authorization: Bearer <key>' (default ${KEY_ENV}).")
    logs.add_argument("-f", "--follow", action="store_true", help="Keep printing new lines as they come (Ctrl-C "
                                                                  "stops).")
    logs.add_argument("-n", "--lines", type=int, default=0, help="Only the last N lines already there (default: "
                                                                 "all the server keeps).")
    _add_flag(logs, "interval", type=float, default=1.0, help="Seconds between polls with --follow (default 1).")
    logs.set_defaults(run=run_logs)


def run_logs(args: argparse.Namespace) -> int:
    import asyncio

    from swarmkeeper.cli_client.logs import LogRequest, print_logs

    request = LogRequest(backend_id=args.backend_id, url=args.url, api_key=args.api_key, follow=args.follow,
                         lines=max(0, args.lines), interval=max(0.1, args.interval))
    try:
        return asyncio.run(print_logs(request))
    except KeyboardInterrupt:
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swarmkeeper", description="A backend manager that speaks SwarmUI's "
                                                                     "BackendAPI.")
    parser.add_argument("--version", action="version", version=f"swarmkeeper {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_parser(commands)
    users_parser(commands)
    keys_parser(commands)
    audit_parser(commands)
    backends_parser(commands)
    status_parser(commands)
    logs_parser(commands)
    return parser


def dump_stacks_on_sigusr1() -> None:
    """``kill -USR1 <pid>`` prints every thread's stack to stderr and the process carries on: how
    to see where a stuck server or command is, even when Python itself cannot run (faulthandler
    writes from C)."""
    if not hasattr(signal, "SIGUSR1"):
        return
    # Not when stderr is no file (main() called with stderr captured in memory): nowhere to write.
    with contextlib.suppress(AttributeError, ValueError, io.UnsupportedOperation):
        faulthandler.register(signal.SIGUSR1, all_threads=True)


def main(argv: Sequence[str] | None = None) -> None:
    dump_stacks_on_sigusr1()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        raise SystemExit(2)
    raise SystemExit(args.run(args))
