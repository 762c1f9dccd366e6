"""A suite started as a background job of a script (``make test &``, ``(... &)``, CI runners that do
so) ignores Ctrl-C: a shell without job control starts such jobs with SIGINT ignored, and every
process below inherits that. Then the tests that stop a child as a user's Ctrl-C would
(``swarmkeeper logs -f``, ``scripts/demo``) wait on a child that never hears it: both were seen as
"hangs" under load until this was found. A Python handler, unlike an ignored signal, is not
inherited across exec: installing Python's own makes every child start with the default again.
"""

from __future__ import annotations

import signal


def hear_ctrl_c() -> None:
    """Undo an inherited ``SIG_IGN`` for SIGINT in this process (so in the children it starts)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
