"""SwarmUI's backend statuses, in SwarmUI's own order. No imports, no logic."""

from enum import StrEnum


class BackendStatus(StrEnum):
    DISABLED = "disabled"  # switched off, shut down, or unconfigured (blank address or script)
    ERRORED = "errored"  # init gave up, the process died, or the settings can never work
    WAITING = "waiting"  # queued for init (also between retries)
    LOADING = "loading"  # init in progress: connecting, starting a process
    IDLE = "idle"  # AllowIdle only: the remote is unreachable, which is not an error
    RUNNING = "running"  # usable: the only status that takes work
