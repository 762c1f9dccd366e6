"""The Swarm-API backend's settings (SwarmUI's ``SwarmSwarmBackendSettings``, reference §8.4),
and how they become a connection to the remote server."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from swarmkeeper.backends.settings import Private, boolean, integer, text
from swarmkeeper.clients.swarm import SwarmClient, normalize_address, parse_header_lines, valid_header_value
from swarmkeeper.exceptions import BackendConfigError

TYPE_ID = "swarmswarmbackend"
#: Shortest and longest ConnectionAttemptTimeoutSeconds honoured (0 or a week would hang things).
MIN_TIMEOUT, MAX_TIMEOUT = 1, 600


def authorization_header() -> Any:
    """The remote's ``AuthorizationHeader`` setting, as SwarmUI declares it (Swarm-API and autoscaling)."""
    return text("", "If the remote instance has an 'Authorization:' header required, specify it here.\nFor example, "
                    "'Bearer abc123'.\nIf you don't know what this is, you don't need it.", secret=True)


def other_headers() -> Any:
    """The remote's ``OtherHeaders`` setting (Swarm-API and autoscaling)."""
    return text("", "Any other headers here, newline separated, for example:\nMyHeader: MyVal\nSecondHeader: secondVal",
                private=Private.HEADER_VALUES, multiline=True)


def connection_attempt_timeout() -> Any:
    """The remote's ``ConnectionAttemptTimeoutSeconds`` setting (Swarm-API and autoscaling)."""
    return integer(30, "When attempting to connect to the backend, this is the maximum time Swarm will wait before "
                       "considering the connection to be failed.\nNote that depending on other configurations, it "
                       "may fail faster than this.\nFor local network machines, set this to a low value (eg 5) to "
                       "avoid 'Loading...' delays.")


@dataclass(frozen=True)
class SwarmSettings:
    Address: str = text("", "The network address of the other Swarm instance.\nUsually starts with 'http://' and "
                            "ends with ':7801'.")
    AllowIdle: bool = boolean(False, "Whether the backend is allowed to revert to an 'idle' state if the API address "
                                     "is unresponsive.\nAn idle state is not considered an error, but cannot "
                                     "generate.\nIt will automatically return to 'running' if the API becomes "
                                     "available.")
    AllowForwarding: bool = boolean(True, "Whether remote Swarm backends should be followed through.\nIf false, only "
                                          "backends directly local to the remote machine are used.\nIf true, the "
                                          "remote backend can chain further connected backends.")
    AllowWebsocket: bool = boolean(True, "Whether the backend is allowed to use WebSocket connections.\nIf true, the "
                                         "backend will work normally and provide previews and updates and all.\nIf "
                                         "false, the backend will freeze while generating until the generation "
                                         "completes.\nFalse may be needed for some limited network environments.")
    AuthorizationHeader: str = authorization_header()
    OtherHeaders: str = other_headers()
    ConnectionAttemptTimeoutSeconds: int = connection_attempt_timeout()


@dataclass(frozen=True)
class Connection:
    """Where the remote is and what every request to it carries, checked once."""

    address: str
    headers: dict[str, str]
    timeout: float

    @classmethod
    def from_settings(cls, settings: SwarmSettings, log: logging.Logger) -> Connection:
        """BackendConfigError for settings that can never work; header lines that cannot be used
        are logged (by number, never by value) and skipped, as SwarmUI skips them."""
        try:
            address = normalize_address(settings.Address)
        except ValueError as error:
            raise BackendConfigError(f"Invalid Address: {error}") from None
        headers, bad = parse_header_lines(settings.OtherHeaders)
        for number in bad:
            log.warning("OtherHeaders line %s is not a 'Name: value' header line; it is skipped", number)
        authorization = settings.AuthorizationHeader.strip()
        if authorization:
            if not valid_header_value(authorization):
                raise BackendConfigError("AuthorizationHeader holds a line break or a character a header cannot "
                                         "carry (only printable ASCII is allowed)")
            headers = {name: value for name, value in headers.items() if name.lower() != "authorization"}
            headers["Authorization"] = authorization
        timeout = float(min(max(settings.ConnectionAttemptTimeoutSeconds, MIN_TIMEOUT), MAX_TIMEOUT))
        return cls(address, headers, timeout)

    def client(self) -> SwarmClient:
        return SwarmClient(self.address, headers=self.headers, timeout=self.timeout)
