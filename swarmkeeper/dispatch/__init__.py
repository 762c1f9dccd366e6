"""Dispatch: spreading work over every backend (SwarmUI's scheduler, reference §7).

    requests.py   what a request for a backend is, the policy it is decided by, the outcomes
    select.py     one request against the backends: candidates, refusals with reasons, strategies
    scheduler.py  the queue of waiting requests: passes, claims, timeouts, the stall guard (no I/O)
    needs.py      what a ComfyUI prompt needs of a backend (node classes, combo values) as a filter
    targets.py    how the pool reaches a backend: its PromptTarget (Backend.prompt_target), any type
    pool/         the ComfyUI-compatible server in front of all backends
    graph.py      the standard text-to-image graph; generate.py: SwarmUI's generation routes
    idle.py       the idle memory policy; stats.py: status counts and metrics; feature.py: wiring
"""
