"""The accounts' refusals: an APIError, so a route lets it through as SwarmUI's ``{"error"}`` answer
and the CLI prints its message."""

from __future__ import annotations

from swarmkeeper.exceptions import APIError


class AccountError(APIError):
    """A user, password, role or key request that cannot be done; the message says why."""
