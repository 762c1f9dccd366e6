"""The ``swarmkeeper backends`` command group's arguments."""

from __future__ import annotations

import argparse

from swarmkeeper.cli_client import backend_control as control
from swarmkeeper.cli_client import backend_edits as edits
from swarmkeeper.cli_client.context import Command, Entry, Subcommands, connection_flags, flag


def _action(actions: Subcommands, name: str, command: Command, help_text: str) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=help_text, description=help_text)
    connection_flags(parser)
    parser.set_defaults(run=Entry(command))
    return parser


def _settings_flags(parser: argparse.ArgumentParser) -> None:
    flag(parser, "title", default=None, help="The backend's title.")
    flag(parser, "set", action="append", default=[], metavar="NAME=VALUE",
         help="A setting (see 'backends types TYPE' for the names); may repeat.")


def _reading(actions: Subcommands) -> None:
    listing = _action(actions, "list", edits.list_backends, "List the backends (ListBackends).")
    flag(listing, "nonreal", action="store_true", help="Include non-real backends (spawned by others).")
    flag(listing, "full_data", action="store_true", help="Include each backend's current model.")
    types = _action(actions, "types", edits.list_types,
                    "List the backend types, or one type's settings (ListBackendTypes).")
    types.add_argument("type", nargs="?", default=None, help="A type id: show its settings.")
    logs = _action(actions, "logs", control.show_logs, "Show a backend's recent log lines (ListRecentLogMessages).")
    logs.add_argument("id", type=int, help="The backend id.")
    logs.add_argument("-n", "--lines", type=int, default=100, help="How many recent lines (default 100; 0: all "
                                                                    "the server keeps).")
    logs.add_argument("-f", "--follow", action="store_true", help="Keep printing new lines until Ctrl-C.")
    flag(logs, "interval", type=float, default=1.0, help="Seconds between looks with --follow (default 1).")


def _changing(actions: Subcommands) -> None:
    add = _action(actions, "add", edits.add_backend, "Add a backend, and set its title and settings "
                                                     "(AddNewBackend, then EditBackend).")
    add.add_argument("type", help="The backend type id (see 'backends types').")
    _settings_flags(add)
    edit = _action(actions, "edit", edits.edit_backend, "Change a backend's title, settings or id (EditBackend; "
                                                        "only the settings given change).")
    edit.add_argument("id", type=int, help="The backend id.")
    _settings_flags(edit)
    flag(edit, "new_id", type=int, default=None, help="Move the backend to this id (lower ids are tried first).")
    delete = _action(actions, "delete", edits.delete_backend, "Shut down and delete a backend (DeleteBackend).")
    delete.add_argument("id", type=int, help="The backend id.")
    flag(delete, "yes", action="store_true", help="Do not ask for confirmation.")


def _controlling(actions: Subcommands) -> None:
    toggle = _action(actions, "toggle", control.toggle_backend, "Enable or disable a backend (ToggleBackend).")
    toggle.add_argument("id", type=int, help="The backend id.")
    toggle.add_argument("state", metavar="on|off", help="on or off.")
    restart = _action(actions, "restart", control.restart_backends,
                      "Restart running or errored backends (RestartBackends).")
    restart.add_argument("target", metavar="ID|all", help="A backend id, or all.")
    flag(restart, "force", action="store_true", help="Restart in any status (a backend stuck loading too).")
    free = _action(actions, "free", control.free_memory, "Free backends' memory (FreeBackendMemory).")
    free.add_argument("target", metavar="ID|all", nargs="?", default="all", help="A backend id, or all (default).")
    flag(free, "system_ram", action="store_true", help="Free system RAM too, not only VRAM.")


def backends_parser(commands: Subcommands) -> None:
    backends = commands.add_parser("backends", help="Manage the backends of a running server (through its API).",
                                   description="Manage the backends of a running server through its API. Exit "
                                               "codes: 0 done, 1 refused, 2 usage error, 3 server unreachable.")
    actions = backends.add_subparsers(dest="action", metavar="ACTION", required=True)
    _reading(actions)
    _changing(actions)
    _controlling(actions)
