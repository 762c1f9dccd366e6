"""Logging in: throttle check, password check, then a login token (SwarmUI's ``swarm_token``).

Answers have SwarmUI's Login shapes: ``{"success": "true"}``, or ``{"error_id": "invalid_login"}``
/ ``{"error_id": "ratelimit"}`` with an ``error`` text. A wrong name and a wrong password answer
alike, and take as long. A lockout is written to the audit log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from swarmkeeper.accounts.audit import OK
from swarmkeeper.accounts.errors import AccountError
from swarmkeeper.accounts.names import check_user_name, lookup_name
from swarmkeeper.accounts.passwords import MAX_LENGTH, login_digest
from swarmkeeper.accounts.service import DAY, Accounts
from swarmkeeper.types import JSONObject

log = logging.getLogger("swarmkeeper.accounts")

INVALID_LOGIN = "Invalid username or password."
MAX_NAME_INPUT = 200
LOCKOUT_ROUTE = "LoginLockout"


@dataclass(frozen=True)
class LoginOutcome:
    user: str = ""
    token: str = ""
    error_id: str = ""
    message: str = ""

    def answer(self) -> JSONObject:
        if not self.error_id:
            return {"success": "true"}
        return {"error_id": self.error_id, "error": self.message}


def shown_name(name: str) -> str:
    """A typed name as logs may show it: valid names as they are, anything else described."""
    try:
        return check_user_name(name)
    except AccountError:
        return f"(an invalid user name of {len(name)} characters)"


def check_input(given_name: str, given_password: str) -> None:
    """Refuse absurd input before any work is spent on it (without echoing it)."""
    if len(given_name) > MAX_NAME_INPUT:
        raise AccountError(f"User names are at most {MAX_NAME_INPUT} characters long.")
    if len(given_password) > MAX_LENGTH * 4:
        raise AccountError(f"Passwords are at most {MAX_LENGTH} characters long.")


async def log_in(accounts: Accounts, given_name: str, given_password: str, address: str) -> LoginOutcome:
    check_input(given_name, given_password)
    name = lookup_name(given_name)
    keys = [f"address:{address}", f"user:{name}"]
    refusal = accounts.throttle.check(keys)
    if refusal is not None:
        return LoginOutcome(error_id="ratelimit", message=refusal.message())
    if not await accounts.check_password(name, login_digest(name, given_password)):
        await _failed(accounts, name, keys, address)
        return LoginOutcome(error_id="invalid_login", message=INVALID_LOGIN)
    accounts.throttle.succeeded(f"user:{name}")
    token = await accounts.tokens.issue(name, accounts.policy.token_days * DAY, address)
    await accounts.audit.record(user=name, route="Login", address=address, outcome=OK)
    log.info("User %s logged in from %s", name, address)
    return LoginOutcome(user=name, token=token)


async def _failed(accounts: Accounts, name: str, keys: list[str], address: str) -> None:
    log.info("Failed login for %s from %s", shown_name(name), address)
    locked = accounts.throttle.failed(keys)
    if not locked:
        return
    seconds = accounts.throttle.policy.lock_seconds
    shown = [key if key.startswith("address:") else f"user:{shown_name(name)}" for key in locked]
    log.warning("Too many failed logins (%s): locked for %s seconds", ", ".join(shown), int(seconds))
    await accounts.audit.record(user=name if f"user:{name}" in locked else "", route=LOCKOUT_ROUTE, address=address,
                                changes={"locked": locked, "seconds": seconds}, outcome="locked")
