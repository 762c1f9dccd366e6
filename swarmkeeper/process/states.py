"""The states of a supervised process and the transitions allowed between them. This module
knows nothing of backends: how each state shows to users is ``backends.process_status``.
"""

from __future__ import annotations

from enum import StrEnum


class ProcessState(StrEnum):
    STOPPED = "stopped"  # nothing runs: never started, or stopped on request
    STARTING = "starting"  # launched; waiting for it to answer its readiness probe
    RUNNING = "running"  # it answered: ready for work
    BACKOFF = "backoff"  # it died after being ready; it is relaunched after the restart delay
    STOPPING = "stopping"  # a stop was asked: signals are on their way
    FATAL = "fatal"  # it died and will not be relaunched; a restart, edit or toggle clears it
    ADOPTING = "adopting"  # a live process an earlier server started: waiting for it to answer
    DETACHED = "detached"  # left running for the next server to adopt (--keep_backends); no longer watched


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
    (S.STOPPED, S.ADOPTING): "a live process an earlier server started was found: probing it",
    (S.ADOPTING, S.RUNNING): "the adopted process answered its readiness probe",
    (S.ADOPTING, S.STOPPING): "the adopted process did not answer in time (or exited), or a stop was asked",
    (S.STARTING, S.DETACHED): "the server stops and keeps its backends: left starting for the next server",
    (S.RUNNING, S.DETACHED): "the server stops and keeps its backends: left running for the next server",
    (S.ADOPTING, S.DETACHED): "the server stops and keeps its backends: left for the next server to probe",
    (S.DETACHED, S.STOPPING): "a stop was asked after it was left running (nothing of ours to stop)",
}


class TransitionError(RuntimeError):
    """A state change that the table does not allow."""


def check_transition(old: ProcessState, new: ProcessState) -> str:
    """The reason of an allowed transition; TransitionError for any other."""
    try:
        return TRANSITIONS[(old, new)]
    except KeyError:
        raise TransitionError(f"process state cannot go from {old} to {new}") from None
