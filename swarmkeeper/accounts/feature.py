"""The accounts feature: its routes, SwarmUI's RequiredAuthorization gate and the login cookie
(middleware), and at start the route wrappers (the audit log, key-bound sessions; on in both
modes). The Accounts and the user source are built with the other services (``build_accounts``,
``user_source``: app.py)."""

from __future__ import annotations

import logging

from starlette.middleware import Middleware

from swarmkeeper.accounts import admin_routes, audit_routes, key_routes, login_routes, role_routes
from swarmkeeper.accounts.cookies import ResponseCookies
from swarmkeeper.accounts.gate import AuthGate
from swarmkeeper.accounts.hooks import audited, binding_key_sessions
from swarmkeeper.accounts.service import Accounts, AccountsPolicy
from swarmkeeper.accounts.source import AccountUsers
from swarmkeeper.api.routes import RouteTable
from swarmkeeper.api.sessions import SessionStore
from swarmkeeper.api.users import LocalOwner, UserSource
from swarmkeeper.config import ServerConfig, ServerSettings
from swarmkeeper.db import Database
from swarmkeeper.features import Feature
from swarmkeeper.services import Services

log = logging.getLogger("swarmkeeper.accounts")


def account_routes() -> RouteTable:
    table = RouteTable()
    for routes in (login_routes.routes, admin_routes.routes, role_routes.routes, key_routes.routes,
                   audit_routes.routes):
        table.include(routes)
    return table


def build_accounts(config: ServerConfig, settings: ServerSettings, db: Database, sessions: SessionStore) -> Accounts:
    """The server's Accounts (read from the database when the feature starts)."""
    return Accounts(db, sessions, AccountsPolicy.of(config, settings))


def user_source(accounts: Accounts, config: ServerConfig) -> UserSource:
    """Who a request acts as: the accounts when they are on, else everyone is the local owner."""
    return AccountUsers(accounts) if accounts.policy.required else LocalOwner(config.user_id)


async def start(services: Services) -> None:
    accounts = services.accounts
    await accounts.start()
    services.routes.wrap(audited(accounts))
    services.routes.wrap(binding_key_sessions(accounts))
    if not accounts.policy.required:
        return
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
