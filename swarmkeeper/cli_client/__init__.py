"""Commands that talk to a running server through its public API (``swarmkeeper backends ...``,
``swarmkeeper status``), through :class:`~swarmkeeper.clients.swarm.SwarmClient` only.

Every command takes ``--url`` (default ``$SWARMKEEPER_URL`` or http://127.0.0.1:7801),
``--api_key`` (default ``$SWARMKEEPER_API_KEY``, sent as ``Authorization: Bearer <key>``),
``--timeout`` and ``--json`` (the API's JSON answer instead of a table). Exit codes
(:class:`~swarmkeeper.cli_client.context.ExitCode`): 0 done, 1 the server refused (its
``{"error"}`` answer is printed), 2 usage error, 3 the server cannot be reached.
"""

from swarmkeeper.cli_client.backends import backends_parser
from swarmkeeper.cli_client.status import status_parser

__all__ = ["backends_parser", "status_parser"]
