"""The restart policy, as data, and the decision taken when a supervised process exits.

Noticing an exit (the supervisor's watcher) is separate from deciding what to do about it
(:func:`decide`), so the rule can be read, and tested, on its own.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class RestartPolicy:
    """How a process is restarted and stopped. Names in comments are the settings users see."""

    #: AutoRestart: relaunch a process that dies after it was ready (SwarmUI: true).
    auto_restart: bool = True
    #: Seconds between an unexpected exit and the relaunch (SwarmUI waits 2 s).
    restart_delay: float = 2.0
    #: The first signal of a stop (SIGINT, as SwarmUI; ComfyUI says "Stopped server").
    stop_signal: signal.Signals = signal.SIGINT
    #: Seconds to wait after the stop signal before sending SIGTERM.
    stop_wait: float = 10.0
    #: Seconds to wait after SIGTERM before killing the whole process tree.
    term_wait: float = 10.0
    #: Seconds between readiness probes while a process starts.
    probe_interval: float = 0.1
    #: Seconds a process adopted from an earlier server has to answer its readiness probe before
    #: it is stopped and a new one launched (one that was still starting gets the same time).
    adopt_wait: float = 30.0


class ExitDecision(StrEnum):
    EXPECTED = "expected"  # a stop was asked: nothing to do
    RESTART = "restart"  # relaunch after the restart delay
    FAIL = "fail"  # leave it dead, with the reason


def decide(policy: RestartPolicy, *, stopping: bool, was_ready: bool) -> ExitDecision:
    """What to do about an exit. A process that never became ready is not relaunched (its
    launch is broken, and relaunching would loop), as SwarmUI's ``everLoaded`` rule."""
    if stopping:
        return ExitDecision.EXPECTED
    if policy.auto_restart and was_ready:
        return ExitDecision.RESTART
    return ExitDecision.FAIL
