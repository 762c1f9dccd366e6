"""Supervising child processes: launch, readiness, watching, restart policy, stop, tree kill.

This package knows processes and nothing of backends or ComfyUI:

    states.py      the internal process states, their allowed transitions, and their one mapping
                   to SwarmUI's public statuses
    policy.py      the restart policy (data) and the decision taken when a process exits
    clock.py       time, injectable (tests drive the stop sequence without waiting)
    launch.py      what to run: start script checks, interpreter choice, environment
    child.py       a real child process: spawned in its own session, output pumped line by line
    output.py      a process's output through files that outlive this server, followed line by line
    tree.py        a process and all its descendants (psutil): signal them, kill them
    adopted.py     a live process an earlier server started: identified, watched without being its parent
    records.py     the running processes on disk, for the next server to adopt
    supervisor.py  one process at a time for an owner: start until ready (or adopt), watch, restart,
                   stop, or leave it running for a later server (detach)
    command.py     run a short command (git pull) with a deadline
"""
