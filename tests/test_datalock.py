"""datalock.py: one holder per data folder; the message names the holder's pid; release frees it.
(The cross-process case, with kill -9, is tests/test_serving.py's.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swarmkeeper.datalock import LOCK_FILE, DataDirLock
from swarmkeeper.exceptions import DataDirInUse


def test_a_second_holder_is_refused_with_the_first_pid_until_it_releases(tmp_path: Path) -> None:
    first = DataDirLock.acquire(tmp_path)
    with pytest.raises(DataDirInUse) as refused:
        DataDirLock.acquire(tmp_path)  # another open file: flock refuses it even in this process
    assert refused.value.pid == os.getpid() and refused.value.folder == tmp_path
    assert f"{tmp_path} is in use by another swarmkeeper server (pid {os.getpid()})" in refused.value.message
    first.release()
    assert not first.held
    second = DataDirLock.acquire(tmp_path)
    assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    assert (tmp_path / LOCK_FILE).stat().st_mode & 0o777 == 0o600
    second.release()


def test_a_lock_file_left_behind_does_not_block(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text("999999999\n")  # a holder long gone: the kernel holds no lock
    lock = DataDirLock.acquire(tmp_path)
    assert lock.held and (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    lock.release()
