"""The states of a supervised process, the transitions allowed between them, and their one
mapping to SwarmUI's public statuses (which users see in ``ListBackends``).

Internal states are finer than SwarmUI's: ``BACKOFF`` (crashed, relaunching soon) and
``STARTING`` both show as ``loading``; ``STOPPING`` and ``STOPPED`` both show as ``disabled``.
"""

from __future__ import annotations

from enum import StrEnum

from swarmkeeper.backends.status import BackendStatus


class ProcessState(StrEnum):
    STOPPED = "stopped"  # nothing runs: never started, or stopped on request
    STARTING = "starting"  # launched; waiting for it to answer its readiness probe
    RUNNING = "running"  # it answered: ready for work
    BACKOFF = "backoff"  # it died after being ready; it is relaunched after the restart delay
    STOPPING = "stopping"  # a stop was asked: signals are on their way
    FATAL = "fatal"  # it died and will not be relaunched; a restart, edit or toggle clears it


S = ProcessState

#: Every allowed transition, with why it happens. Anything else is a bug, and raises.
TRANSITIONS: dict[tuple[ProcessState, ProcessState], str] = {
    (S.STOPPED, S.STARTING): "launched",
    (S.FATAL, S.STARTING): "launched again after a failure",
    (S.STARTING, S.RUNNING): "the readiness probe succeeded",
    (S.STARTING, S.FATAL): "it exited (or could not be spawned) before it was ready",
    (S.RUNNING, S.BACKOFF): "it exited unexpectedly after being ready, and the policy restarts it",
    (S.RUNNING, S.FATAL): "it exited unexpectedly after being ready, and the policy does not restart it",
    (S.BACKOFF, S.STARTING): "the restart delay passed: relaunched",
    (S.BACKOFF, S.FATAL): "the relaunch could not be spawned",
    (S.STARTING, S.STOPPING): "a stop was asked while it started",
    (S.RUNNING, S.STOPPING): "a stop was asked while it ran",
    (S.BACKOFF, S.STOPPING): "a stop was asked while a relaunch was pending",
    (S.FATAL, S.STOPPING): "a stop was asked after it died (cleans up what is left)",
    (S.STOPPED, S.STOPPING): "a stop was asked when nothing ran (cleans up what is left)",
    (S.STOPPING, S.STOPPED): "the process tree is gone",
}


class TransitionError(RuntimeError):
    """A state change that the table does not allow."""


def check_transition(old: ProcessState, new: ProcessState) -> str:
    """The reason of an allowed transition; TransitionError for any other."""
    try:
        return TRANSITIONS[(old, new)]
    except KeyError:
        raise TransitionError(f"process state cannot go from {old} to {new}") from None


_PUBLIC: dict[ProcessState, BackendStatus] = {
    S.STOPPED: BackendStatus.DISABLED,
    S.STARTING: BackendStatus.LOADING,
    S.RUNNING: BackendStatus.RUNNING,
    S.BACKOFF: BackendStatus.LOADING,
    S.STOPPING: BackendStatus.DISABLED,
    S.FATAL: BackendStatus.ERRORED,
}


def public_status(state: ProcessState) -> BackendStatus:
    """The SwarmUI status a backend shows while its process is in ``state`` (the only mapping)."""
    return _PUBLIC[state]
