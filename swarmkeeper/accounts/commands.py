"""What ``swarmkeeper users|keys|audit`` do. They work on the data folder's database directly, so
the first owner can be made before anyone can log in, and they work while a server runs (it reads
users and keys from the database on every call). Each change is written to the audit log as done
by ``(command line)``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from swarmkeeper.accounts.callers import account_user
from swarmkeeper.accounts.errors import AccountError
from swarmkeeper.accounts.names import check_user_name
from swarmkeeper.accounts.passwords import check_plain_password, client_prehash, is_digest
from swarmkeeper.accounts.service import Accounts, AccountsPolicy
from swarmkeeper.api.sessions import SessionStore
from swarmkeeper.config import ServerConfig
from swarmkeeper.datadir import make_private_dir
from swarmkeeper.db import Database
from swarmkeeper.exceptions import StartupError
from swarmkeeper.types import JSONObject

CLI_USER = "(command line)"
Command = Callable[[Accounts, argparse.Namespace], Awaitable[int]]


@contextlib.asynccontextmanager
async def opened(data_dir: Path) -> AsyncIterator[Accounts]:
    db = await Database.open(ServerConfig(data_dir=data_dir).db_path)
    try:
        sessions = SessionStore(db)
        await sessions.load()
        accounts = Accounts(db, sessions, AccountsPolicy())
        await accounts.start()
        yield accounts
    finally:
        await db.close()


def run(command: Command, *, password: bool = False) -> Callable[[argparse.Namespace], int]:
    """A CLI entry point: ask for the password first if the command needs one, open the database,
    run, and print an AccountError (or a database that cannot be opened) as a one-line message."""

    def entry(args: argparse.Namespace) -> int:
        async def main() -> int:
            async with opened(args.data_dir) as accounts:
                return await command(accounts, args)

        try:
            args.password = read_password(args) if password else None
            make_private_dir(args.data_dir)
            return asyncio.run(main())
        except (AccountError, StartupError) as error:
            print(f"swarmkeeper: {error.message}", file=sys.stderr)
            return 1

    return entry


def read_password(args: argparse.Namespace) -> str:
    """From stdin (one line) with --password_stdin, else asked twice at the terminal."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise AccountError("The two passwords differ.")
    else:
        raise AccountError("No terminal to ask for the password: pipe it in with --password_stdin.")
    if is_digest(password):
        raise AccountError("A password of exactly 64 hex digits would be read as SwarmUI's client-side prehash; "
                           "choose another.")
    return check_plain_password(password)


async def audit(accounts: Accounts, route: str, changes: JSONObject) -> None:
    await accounts.audit.record(user=CLI_USER, route=route, address="local", changes=changes)


def printable(text: str) -> str:
    """Text safe to print to a terminal: anything unprintable shown as an escape."""
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode() for char in text)


def when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "-"


# --- users ---

async def users_add(accounts: Accounts, args: argparse.Namespace) -> int:
    name = args.name
    await accounts.add_user(name, client_prehash(name, args.password), args.role)
    await audit(accounts, "users add", {"name": name, "role": args.role})
    print(f"Added user {name} ({args.role}).")
    return 0


async def users_list(accounts: Accounts, args: argparse.Namespace) -> int:
    for account in await accounts.users.all():
        print(f"{account.name:<40} {account.role:<10} created {when(account.created)}")
    return 0


async def users_set_role(accounts: Accounts, args: argparse.Namespace) -> int:
    await accounts.set_role(args.name, args.role)
    await audit(accounts, "users set-role", {"name": args.name, "role": args.role})
    print(f"{args.name} is now {args.role}; it applies to their next call.")
    return 0


async def users_set_password(accounts: Accounts, args: argparse.Namespace) -> int:
    await accounts.account(args.name)
    await accounts.set_password(args.name, client_prehash(args.name, args.password))
    await audit(accounts, "users set-password", {"name": args.name})
    print(f"Password of {args.name} changed; their logins and sessions have ended.")
    return 0


async def users_remove(accounts: Accounts, args: argparse.Namespace) -> int:
    await accounts.remove_user(args.name)
    await audit(accounts, "users remove", {"name": args.name})
    print(f"Removed user {args.name}, with their logins, sessions and API keys.")
    return 0


# --- keys ---

async def keys_create(accounts: Accounts, args: argparse.Namespace) -> int:
    user = account_user(await accounts.account(args.user), accounts.roles.permissions_of)
    key, text = await accounts.create_key(user, args.name, args.role, args.expires_days)
    await audit(accounts, "keys create", {"user": key.user, "id": key.id, "name": key.name, "role": key.role})
    print(f"Created API key {key.prefix} ('{key.name}') for {key.user}. It is shown only this once:", file=sys.stderr)
    print(text)
    return 0


async def keys_list(accounts: Accounts, args: argparse.Namespace) -> int:
    for key in await accounts.keys.listing(args.user):
        state = f"revoked {when(key.revoked)}" if key.revoked else f"expires {when(key.expires)}"
        print(f"{key.prefix}  {key.name:<24} {key.user:<20} {key.role or '(user role)':<12} created "
              f"{when(key.created)}  {state}  last used {when(key.last_used)}")
    return 0


async def keys_revoke(accounts: Accounts, args: argparse.Namespace) -> int:
    key_id = args.id.strip().removeprefix("swk_")
    if await accounts.keys.get(key_id) is None:
        raise AccountError("No such API key.")
    revoked = await accounts.revoke_key(key_id)
    await audit(accounts, "keys revoke", {"id": key_id})
    print(f"Revoked swk_{key_id}." if revoked else f"swk_{key_id} was already revoked.")
    return 0


# --- audit ---

async def audit_show(accounts: Accounts, args: argparse.Namespace) -> int:
    entries = await accounts.audit.query(backend=args.backend, user=args.user, limit=args.limit)
    for entry in entries:
        if args.json:
            print(json.dumps(entry.describe(), ensure_ascii=False))
            continue
        target = f"backend {entry.backend_id}" if entry.backend_id is not None else "-"
        if entry.new_backend_id is not None:
            target += f" -> {entry.new_backend_id}"
        changes = json.dumps(entry.changes, ensure_ascii=True)
        print(printable(f"{entry.describe()['time_text']}  {entry.user:<20} {entry.route:<22} {target:<16} "
                        f"{entry.outcome}  {entry.address}  {changes}"))
    return 0


def user_name_arg(text: str) -> str:
    """argparse type for a new user's name: refused before anything is asked."""
    try:
        return check_user_name(text)
    except AccountError as error:
        raise argparse.ArgumentTypeError(error.message) from None
