"""Backends.fds on disk: reading it, and writing it atomically (files.py). Knows the file, not
the registry. The file holds secrets in clear text (as SwarmUI's does), so it is mode 0600.

Saves are group-committed: callers that ask while a write is under way share the next write,
so a burst of edits costs a few writes, and every caller returns only once its change is on disk.
A write that fails (a full disk, a read-only folder) raises its OSError to the caller that made
it, leaves the file as it was and removes its half-written ``~1``; the callers that shared it
then try their own write, so each caller hears the outcome of a write that held its change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from swarmkeeper import fds
from swarmkeeper.files import read_text, sidecar, write_atomic

log = logging.getLogger("swarmkeeper.store")


class BackendStore:
    def __init__(self, path: Path, *, persist: bool = True) -> None:
        self.path = path
        #: False with --no_persist: saves succeed and write nothing.
        self.persist = persist
        self._lock = asyncio.Lock()
        self._wanted = 0  # saves asked for
        self._done = 0  # saves whose snapshot is on disk
        #: The text of each entry of the last save, by the entry's identity: (entry, key, text).
        self._texts: dict[int, tuple[fds.Section, str, str]] = {}

    def load(self) -> fds.Section:
        """The file's root section (empty when there is no file). A file that does not parse is
        moved aside (never overwritten) and an empty registry starts, with an error logged. One
        that cannot be read as text (a directory, invalid UTF-8, no permission) raises
        DataFileError and is left where it is: the server does not start."""
        text = read_text(self.path)
        if text is None:
            return fds.Section()
        try:
            return fds.loads(text)
        except fds.FDSError as error:
            aside = sidecar(self.path, f".unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(self.path, aside)
            log.error("Backends file %s could not be read (%s); it was moved to %s and no backends "
                      "were loaded", self.path, error, aside)
            return fds.Section()

    async def save(self, render: Callable[[], fds.Section]) -> None:
        """Write the registry as ``render()`` gives it, at the latest moment, sharing the write
        with any other caller that arrives while one is under way."""
        self._wanted += 1
        ticket = self._wanted
        async with self._lock:
            if self._done >= ticket:
                return
            covered = self._wanted
            if not self.persist:
                self._done = covered
                return
            root = render()  # the registry as it is now, read on the event loop
            try:
                await asyncio.to_thread(self._dump_and_write, root)
            except OSError:
                with contextlib.suppress(OSError):
                    sidecar(self.path, "~1").unlink(missing_ok=True)
                raise
            self._done = covered


    def _dump_and_write(self, root: fds.Section) -> None:
        """On a worker thread (saves never overlap: the lock): with 1,000 backends the text alone
        was ~40 ms of Python per save on the event loop, once per add or edit. The sections
        ``render`` gives are not changed by anyone afterwards."""
        write_atomic(self.path, self._text_of(root))

    def _text_of(self, root: fds.Section) -> str:
        """``fds.dumps(root)``, reusing the text of every entry that is the very same section as
        in the last save (the manager hands back an unchanged backend's section): a save costs
        what changed."""
        if root.trailing_comments or any(root.comments(key) for key in root):
            return fds.dumps(root)
        texts: dict[int, tuple[fds.Section, str, str]] = {}
        parts: list[str] = []
        for key, entry in root.items():
            known = self._texts.get(id(entry))
            if known is not None and known[0] is entry and known[1] == key:
                text = known[2]
            else:
                text = fds.dumps(fds.Section({key: entry}))
            if isinstance(entry, fds.Section):
                texts[id(entry)] = (entry, key, text)
            parts.append(text)
        self._texts = texts
        return "".join(parts)
