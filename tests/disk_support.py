"""Disks that fail as real ones do, for the all-or-nothing tests: a small tmpfs that can be filled
up (ENOSPC) or remounted read-only (EROFS). Mounting needs root, which the tests and CI run as."""

from __future__ import annotations

import contextlib
import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path


class SmallDisk:
    """A tmpfs of ``size`` mounted on ``mount``; unmounted when the fixture ends."""

    def __init__(self, mount: Path, size: str = "4m") -> None:
        self.mount = mount
        self.size = size
        self.filler = mount / "filler"

    def __enter__(self) -> SmallDisk:
        self.mount.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0700", "tmpfs", str(self.mount)],
                       check=True)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["umount", "--lazy", str(self.mount)], check=True)

    def fill(self) -> None:
        """Write zeros until the disk says it is full."""
        chunk = b"\0" * 65536
        with self.filler.open("ab", buffering=0) as handle:
            while True:
                try:
                    written = handle.write(chunk)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    chunk = chunk[: len(chunk) // 2]
                    if not chunk:
                        return
                    continue
                if not written:
                    return

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def read_only(self, on: bool = True) -> None:
        subprocess.run(["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.mount)], check=True)


@contextlib.contextmanager
def small_disk(mount: Path, size: str = "4m") -> Iterator[SmallDisk]:
    with SmallDisk(mount, size) as disk:
        yield disk


def process_alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
