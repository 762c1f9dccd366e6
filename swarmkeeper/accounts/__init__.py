"""User accounts, login tokens, API keys, login throttling and the audit log.

    names.py        what a user name, role and key name may be (clear errors, nothing echoed)
    passwords.py    SwarmUI's client prehash and argon2 hashing (off the event loop)
    store.py        the users table
    tokens.py       login tokens: SwarmUI's ``swarm_token`` cookie
    apikeys.py      API keys (``Authorization: Bearer swk_...``), stored hashed
    throttle.py     password attempts (counted as they start) slow down, then lock, per address and per user
    audit.py        the audit log table; redact.py keeps secrets out of it
    service.py      Accounts: the pieces together (what the routes and the CLI call)
    source.py       AccountUsers: the UserSource the transport asks "who is calling?"
    gate.py         SwarmUI's RequiredAuthorization gate; cookies.py sets response cookies
    hooks.py        wrappers put around routes: the audit log, key-bound sessions
    *_routes.py     the API routes; feature.py plugs it all in; commands.py backs the CLI
"""
