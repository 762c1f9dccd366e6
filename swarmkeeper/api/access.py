"""A signal that someone's rights may have shrunk: a session ended, a role changed, a key was
revoked, a user was removed. Whatever holds a long-lived grant (the push stream) waits on it and
checks its caller again at once, instead of at its next periodic check."""

from __future__ import annotations

import asyncio


class AccessChanges:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake every current waiter (later waiters wait for the next change)."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self) -> None:
        """Until the next :meth:`notify`."""
        await self._event.wait()
