"""The one mapping from a supervised process's state to SwarmUI's public status (what users see
in ``ListBackends``) for backends that run a process.

Internal states are finer than SwarmUI's: ``BACKOFF`` (crashed, relaunching soon) and
``STARTING`` both show as ``loading``; ``STOPPING`` and ``STOPPED`` both show as ``disabled``.
``ADOPTING`` (a process an earlier server started, being probed) shows as ``loading`` and
``DETACHED`` (left running for the next server) as ``disabled``.
"""

from __future__ import annotations

from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.process.states import ProcessState

S = ProcessState

_PUBLIC: dict[ProcessState, BackendStatus] = {
    S.STOPPED: BackendStatus.DISABLED,
    S.STARTING: BackendStatus.LOADING,
    S.RUNNING: BackendStatus.RUNNING,
    S.BACKOFF: BackendStatus.LOADING,
    S.STOPPING: BackendStatus.DISABLED,
    S.FATAL: BackendStatus.ERRORED,
    S.ADOPTING: BackendStatus.LOADING,
    S.DETACHED: BackendStatus.DISABLED,
}


def public_status(state: ProcessState) -> BackendStatus:
    """The SwarmUI status a backend shows while its process is in ``state`` (the only mapping)."""
    return _PUBLIC[state]
