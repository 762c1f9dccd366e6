"""Logging in: the throttle counts the attempt, the password is checked, then a login token
(SwarmUI's ``swarm_token``).

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
from swarmkeeper.accounts.throttle import Refusal
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


def throttle_keys(name: str, address: str) -> tuple[str, str]:
    """The keys an attempt counts against: the user's and the address's."""
    return f"user:{name}", f"address:{address}"


async def log_in(accounts: Accounts, given_name: str, given_password: str, address: str) -> LoginOutcome:
    check_input(given_name, given_password)
    name = lookup_name(given_name)
    refusal = await begin_attempt(accounts, name, address)
    if refusal is not None:
        return LoginOutcome(error_id="ratelimit", message=refusal.message())
    if not await accounts.check_password(name, login_digest(name, given_password)):
        log.info("Failed login for %s from %s", shown_name(name), address)
        return LoginOutcome(error_id="invalid_login", message=INVALID_LOGIN)
    accounts.throttle.succeeded(*throttle_keys(name, address))
    token = await accounts.tokens.issue(name, accounts.policy.token_days * DAY, address)
    await accounts.audit.record(user=name, route="Login", address=address, outcome=OK)
    log.info("User %s logged in from %s", name, address)
    return LoginOutcome(user=name, token=token)


async def begin_attempt(accounts: Accounts, name: str, address: str) -> Refusal | None:
    """Count a password attempt (Login, ChangePassword) before its check; the refusal if it may
    not go ahead. A lockout it causes is logged and written to the audit log."""
    start = accounts.throttle.begin(throttle_keys(name, address))
    if start.locked:
        await _locked(accounts, name, list(start.locked), address)
    return start.refusal


async def _locked(accounts: Accounts, name: str, locked: list[str], address: str) -> None:
    seconds = accounts.throttle.policy.lock_seconds
    shown = [key if key.startswith("address:") else f"user:{shown_name(name)}" for key in locked]
    log.warning("Too many failed logins (%s): locked for %s seconds", ", ".join(shown), int(seconds))
    await accounts.audit.record(user=name if f"user:{name}" in locked else "", route=LOCKOUT_ROUTE, address=address,
                                changes={"locked": sorted(locked), "seconds": seconds}, outcome="locked")
