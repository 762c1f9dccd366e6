"""``swarmkeeper users``: the first owner is made from the command line, before any login; every
change is written to the audit log; bad input gets a one-line message and exit code 1 (2 for a
bad argument)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from swarmkeeper import cli
from swarmkeeper.accounts.commands import opened
from swarmkeeper.accounts.passwords import client_prehash
from tests.accounts_support import PASSWORD


def run(data: Path, *argv: str, stdin: str = "", tty: bool = False) -> tuple[int, str, str]:
    out, err, given = io.StringIO(), io.StringIO(), io.StringIO(stdin)
    given.isatty = lambda: tty  # type: ignore[method-assign]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", given)
        patch.setattr("sys.stdout", out)
        patch.setattr("sys.stderr", err)
        patch.setattr("getpass.getpass", lambda prompt="": given.readline().rstrip("\n"))
        with pytest.raises(SystemExit) as done:
            cli.main([*argv, "--data_dir", str(data)])
    return int(done.value.code or 0), out.getvalue(), err.getvalue()


async def _check(data: Path, name: str, password: str) -> bool:
    async with opened(data) as accounts:
        return await accounts.check_password(name, client_prehash(name, password))


def check(data: Path, name: str, password: str) -> bool:
    return asyncio.run(_check(data, name, password))


def test_the_users_commands(tmp_path: Path) -> None:
    data = tmp_path / "Data"
    assert run(data, "users", "add", "root", "--role", "owner", stdin=f"{PASSWORD}\n{PASSWORD}\n", tty=True)[:2] == (
        0, "Added user root (owner).\n")
    assert run(data, "users", "add", "bob", "--password_stdin", stdin="bob's password\n")[0] == 0
    assert [line.split()[:2] for line in run(data, "users", "list")[1].splitlines()] == [["bob", "user"],
                                                                                          ["root", "owner"]]
    assert check(data, "root", PASSWORD) and check(data, "bob", "bob's password")
    assert run(data, "users", "set-role", "bob", "admin")[0] == 0
    assert run(data, "users", "set-password", "bob", "--password_stdin", stdin="a new one!\n")[0] == 0
    assert check(data, "bob", "a new one!") and not check(data, "bob", "bob's password")
    assert run(data, "users", "remove", "bob")[1] == "Removed user bob, with their logins, sessions and API keys.\n"
    assert "bob" not in run(data, "users", "list")[1]
    log = [json.loads(line) for line in run(data, "audit", "--json")[1].splitlines()]
    assert [(entry["user"], entry["route"], entry["changes"]) for entry in log] == [
        ("(command line)", "users remove", {"name": "bob"}),
        ("(command line)", "users set-password", {"name": "bob"}),
        ("(command line)", "users set-role", {"name": "bob", "role": "admin"}),
        ("(command line)", "users add", {"name": "bob", "role": "user"}),
        ("(command line)", "users add", {"name": "root", "role": "owner"})]


@pytest.mark.parametrize(("argv", "stdin", "tty", "code", "message"), [
    (("users", "add", "bob"), "", False, 1, "swarmkeeper: No terminal to ask for the password: pipe it in with "
                                            "--password_stdin.\n"),
    (("users", "add", "bob"), "one password\nanother one\n", True, 1, "swarmkeeper: The two passwords differ.\n"),
    (("users", "add", "bob", "--password_stdin"), "a" * 64 + "\n", False, 1,
     "swarmkeeper: A password of exactly 64 hex digits would be read as SwarmUI's client-side prehash; "
     "choose another.\n"),
    (("users", "add", "local", "--password_stdin"), PASSWORD + "\n", False, 1,
     "swarmkeeper: The name 'local' is the local owner's (--user_id); choose another.\n"),
    (("users", "set-role", "ghost", "admin"), "", False, 1, "swarmkeeper: No such user.\n"),
    (("users", "remove", "ghost"), "", False, 1, "swarmkeeper: No such user.\n"),
    (("users", "add", "bob", "--role", "boss", "--password_stdin"), PASSWORD + "\n", False, 1,
     "swarmkeeper: Unknown role; use one of: owner, admin, poweruser, user, guest.\n"),
])
def test_mistakes_get_one_line(tmp_path: Path, argv: tuple[str, ...], stdin: str, tty: bool, code: int,
                               message: str) -> None:
    assert run(tmp_path / "Data", *argv, stdin=stdin, tty=tty)[::2] == (code, message)


def test_a_bad_name_is_refused_before_the_password_is_asked(tmp_path: Path) -> None:
    code, _, err = run(tmp_path / "Data", "users", "add", "Bad Name", tty=True)
    assert code == 2 and "User names are lower-case." in err and not (tmp_path / "Data").exists()


async def _add_role(data: Path, name: str) -> frozenset[str]:
    async with opened(data) as accounts:
        await accounts.roles.add(name)
        return accounts.roles.permissions_of(name)


def test_a_custom_role_can_be_given_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "Data"
    data.mkdir()
    assert asyncio.run(_add_role(data, "night_ops")) == frozenset()
    assert run(data, "users", "add", "nina", "--role", "night_ops", "--password_stdin", stdin=PASSWORD + "\n")[0] == 0
    code, out, _ = run(data, "users", "list")
    assert code == 0 and "night_ops" in out


def test_a_database_that_is_not_one_is_one_line_and_the_folder_is_private(tmp_path: Path) -> None:
    data = tmp_path / "Data"
    assert run(data, "users", "list")[0] == 0
    assert data.stat().st_mode & 0o777 == 0o700 and (data / "swarmkeeper.db").stat().st_mode & 0o777 == 0o600
    (data / "swarmkeeper.db").write_bytes(b"not a database" * 300)
    code, out, err = run(data, "users", "list")
    assert (code, out) == (1, "") and err.startswith(f"swarmkeeper: {data}/swarmkeeper.db: is not a usable")
    assert err.count("\n") == 1
