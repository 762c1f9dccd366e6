"""``swarmkeeper backends list|types|add|edit|delete``: reading and changing the backend list."""

from __future__ import annotations

from typing import Any

from swarmkeeper.cli_client.context import Context, ExitCode, Refused, UsageError
from swarmkeeper.cli_client.output import BACKEND_HEADERS, backend_detail, backend_rows, clean, table
from swarmkeeper.cli_client.settings_args import check_names, parse_assignments, type_description
from swarmkeeper.clients.swarm import SwarmAPIError
from swarmkeeper.types import JSONObject


async def list_backends(context: Context) -> int:
    args = context.args
    listing = await context.call("ListBackends", nonreal=args.nonreal, full_data=args.full_data)
    if context.json:
        context.print_json(listing)
    elif listing:
        context.print(table(BACKEND_HEADERS, backend_rows(listing)))
    else:
        context.print("No backends.")
    return ExitCode.OK


async def list_types(context: Context) -> int:
    type_id = context.args.type
    if type_id is None:
        answer = await context.call("ListBackendTypes")
        if context.json:
            context.print_json(answer)
        else:
            rows = [[t.get("id"), t.get("name"), t.get("is_standard"), clean(t.get("description"), 70)]
                    for t in answer.get("list") or [] if isinstance(t, dict)]
            context.print(table(["ID", "NAME", "STANDARD", "DESCRIPTION"], rows))
        return ExitCode.OK
    description = await type_description(context, type_id)
    if description is None:
        raise Refused(f"the server has no backend type '{type_id}' (see 'swarmkeeper backends types')")
    if context.json:
        context.print_json(description)
    else:
        context.print(type_settings_text(description))
    return ExitCode.OK


def type_settings_text(description: JSONObject) -> str:
    rows = [[s.get("name"), s.get("type"), s.get("is_secret"), ", ".join(s.get("values") or []),
             clean(s.get("description"), 70)] for s in description.get("settings") or [] if isinstance(s, dict)]
    header = f"{clean(description.get('id'))}: {clean(description.get('name'))}"
    return header + "\n" + table(["SETTING", "TYPE", "SECRET", "VALUES", "DESCRIPTION"], rows)


async def add_backend(context: Context) -> int:
    args = context.args
    settings = parse_assignments(args.set)
    if settings:
        description = await type_description(context, args.type)
        if description is not None:  # an unknown type: AddNewBackend's own refusal says so
            check_names(settings, description)
    added = await context.call("AddNewBackend", type_id=args.type)
    result = added
    if settings or args.title is not None:
        result = await _configure_new(context, added, args.title or "", settings)
    _show_backend(context, result)
    return ExitCode.OK


async def _configure_new(context: Context, added: JSONObject, title: str, settings: dict[str, str]) -> JSONObject:
    """EditBackend on a backend just added; if the server refuses the settings, the backend is
    deleted again, so a failed ``add`` leaves nothing half made."""
    try:
        return await context.call("EditBackend", backend_id=added["id"], title=title, settings=settings)
    except SwarmAPIError as error:
        await context.call("DeleteBackend", backend_id=added["id"])
        raise Refused(f"the server refused the settings: {error.message} (backend #{added['id']} was removed "
                      "again)") from None


async def edit_backend(context: Context) -> int:
    args = context.args
    settings = parse_assignments(args.set)
    if not settings and args.title is None and args.new_id is None:
        raise UsageError("nothing to change: give --title, --set Name=value or --new_id")
    entry = await backend_entry(context, args.id)
    if settings:
        description = await type_description(context, str(entry.get("type")))
        if description is not None:
            check_names(settings, description)
    params: dict[str, Any] = {"backend_id": args.id, "settings": settings,
                              "title": args.title if args.title is not None else entry.get("title", "")}
    if args.new_id is not None:
        params["new_id"] = args.new_id
    _show_backend(context, await context.call("EditBackend", **params))
    return ExitCode.OK


async def delete_backend(context: Context) -> int:
    args = context.args
    if not args.yes:
        await confirm_delete(context, args.id)
    answer = await context.call("DeleteBackend", backend_id=args.id)
    if context.json:
        context.print_json(answer)
    if answer.get("result") != "Deleted.":
        raise Refused(f"there is no backend #{args.id}")
    if not context.json:
        context.print(f"Deleted backend #{args.id}.")
    return ExitCode.OK


async def confirm_delete(context: Context, backend_id: int) -> None:
    if not context.stdin.isatty():
        raise UsageError("refusing to delete without --yes (standard input is not a terminal to ask on)")
    entry = await backend_entry(context, backend_id)
    title = f" '{clean(entry.get('title'))}'" if entry.get("title") else ""
    print(f"Delete backend #{backend_id}{title} ({clean(entry.get('type'))})? [y/N] ", end="", file=context.err,
          flush=True)
    if context.stdin.readline().strip().lower() not in ("y", "yes"):
        raise Refused("not deleted")


async def backend_entry(context: Context, backend_id: int) -> JSONObject:
    """The backend's ListBackends entry (non-real ones included), or Refused."""
    listing = await context.call("ListBackends", nonreal=True)
    entry = listing.get(str(backend_id))
    if not isinstance(entry, dict):
        raise Refused(f"there is no backend #{backend_id}")
    return entry


def _show_backend(context: Context, entry: JSONObject) -> None:
    if context.json:
        context.print_json(entry)
    else:
        context.print(backend_detail(entry))
