"""The states of a pool job and the transitions allowed between them (as ``process/states.py``
has for processes). ``Job.move`` (jobs.py) is the one writer of a job's state and checks every
change against this table; this module imports nothing of the pool.

    QUEUED ──▶ SENDING ──▶ SUBMITTED ──▶ RUNNING ──▶ DONE
       ▲          │            │            │
       └──────────┴────────────┘            └──▶ FAILED / CANCELLED (from any live state)
        another backend, when one refused it or was lost before it started
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"  # waiting for a backend (in the scheduler)
    SENDING = "sending"  # a backend slot is claimed; POST /prompt to it under way
    SUBMITTED = "submitted"  # in the backend's own queue
    RUNNING = "running"  # the backend said execution_start
    DONE = "done"  # the backend finished it (success, error or interrupted)
    FAILED = "failed"  # the pool gave up on it (no backend, backend lost mid-run)
    CANCELLED = "cancelled"  # deleted from the queue before it ran


S = JobState
FINISHED = (S.DONE, S.FAILED, S.CANCELLED)
ACTIVE = (S.SENDING, S.SUBMITTED, S.RUNNING)

#: Every allowed transition, with why it happens. Anything else is a bug, and raises.
TRANSITIONS: dict[tuple[JobState, JobState], str] = {
    (S.QUEUED, S.SENDING): "the scheduler granted it a backend slot: it is being sent there",
    (S.SENDING, S.SUBMITTED): "the backend accepted it into its own queue",
    (S.SENDING, S.RUNNING): "the backend started it before its answer to POST /prompt was read",
    (S.SUBMITTED, S.RUNNING): "the backend said execution_start",
    (S.SENDING, S.QUEUED): "the backend refused it or could not be reached: another backend is asked for",
    (S.SUBMITTED, S.QUEUED): "the backend was lost before it started it: another backend is asked for",
    (S.RUNNING, S.DONE): "the backend said it ended (execution_success, _error or _interrupted)",
    (S.SUBMITTED, S.DONE): "it ended while the backend's event socket was down (read from its history)",
    (S.SENDING, S.DONE): "it ended, as the backend's history told after a reconnect, before POST /prompt answered",
    (S.QUEUED, S.FAILED): "no backend can take it (the scheduler gave up, or every backend refused it)",
    (S.SENDING, S.FAILED): "the pool failed while sending it (an internal error)",
    (S.SUBMITTED, S.FAILED): "the pool failed while it waited in the backend's queue (an internal error)",
    (S.RUNNING, S.FAILED): "the backend running it was lost (or the pool failed while following it)",
    (S.QUEUED, S.CANCELLED): "deleted from the queue (or the server stopped) before a backend took it",
    (S.SENDING, S.CANCELLED): "deleted while being sent, and the backend does not hold it (or the server stopped)",
    (S.SUBMITTED, S.CANCELLED): "deleted from the backend's queue before it started (or the server stopped)",
    (S.RUNNING, S.CANCELLED): "the server stopped while it ran",
}


class TransitionError(RuntimeError):
    """A job state change that the table does not allow."""


def check_transition(old: JobState, new: JobState) -> str:
    """The reason of an allowed transition; TransitionError for any other."""
    try:
        return TRANSITIONS[(old, new)]
    except KeyError:
        raise TransitionError(f"job state cannot go from {old} to {new}") from None
