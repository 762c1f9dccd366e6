"""The accounts feature: its routes, SwarmUI's RequiredAuthorization gate and the login cookie
(middleware), and at start the user source (when accounts are on) and the route wrappers (the
audit log, key-bound sessions; on in both modes)."""

from __future__ import annotations

import logging

from starlette.middleware import Middleware

from swarmkeeper.accounts import admin_routes, audit_routes, key_routes, login_routes, role_routes
from swarmkeeper.accounts.cookies import ResponseCookies
from swarmkeeper.accounts.gate import AuthGate
from swarmkeeper.accounts.hooks import audited, binding_key_sessions
from swarmkeeper.accounts.service import EXTRA_KEY, Accounts, AccountsPolicy
from swarmkeeper.accounts.source import AccountUsers
from swarmkeeper.api.routes import RouteTable
from swarmkeeper.features import Feature
from swarmkeeper.services import Services

log = logging.getLogger("swarmkeeper.accounts")


def account_routes() -> RouteTable:
    table = RouteTable()
    for routes in (login_routes.routes, admin_routes.routes, role_routes.routes, key_routes.routes,
                   audit_routes.routes):
        table.include(routes)
    return table


async def start(services: Services) -> None:
    accounts = Accounts(services.db, services.sessions, AccountsPolicy.of(services))
    await accounts.start()
    services.extra[EXTRA_KEY] = accounts
    services.routes.wrap(audited(accounts))
    services.routes.wrap(binding_key_sessions(accounts))
    if not accounts.policy.required:
        return
    services.users = AccountUsers(accounts)
    await accounts.passwords.warm_up()
    log.info("Accounts are on: callers log in (or use an API key)%s",
             "; direct local connections act as the owner" if accounts.policy.localhost_bypass else "")
    if not await accounts.users.all():
        log.warning("Accounts are on but there are no users yet: create one with "
                    "'swarmkeeper users add <name> --role owner --data_dir %s'", services.config.data_dir)


def accounts_feature() -> Feature:
    return Feature(name="accounts", routes=account_routes(),
                   middleware=lambda: [Middleware(AuthGate), Middleware(ResponseCookies)], start=start)


FEATURE = accounts_feature()
