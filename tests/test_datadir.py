"""datadir.py: the data folder is made 0700; looser modes are tightened and logged; symlinks are
left alone; a file in the folder's place is a clear error."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from swarmkeeper.datadir import make_private_dir, private_paths, tighten
from swarmkeeper.exceptions import DataFileError


def test_the_folder_is_made_private_and_a_file_in_its_place_is_an_error(tmp_path: Path) -> None:
    make_private_dir(tmp_path / "Data")
    assert (tmp_path / "Data").stat().st_mode & 0o777 == 0o700
    (tmp_path / "blocker").write_text("")
    with pytest.raises(DataFileError, match="blocker: is a file; the data folder must be a directory"):
        make_private_dir(tmp_path / "blocker")


def test_looser_modes_are_tightened_and_logged_symlinks_left(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "Data"
    (data / "logs").mkdir(parents=True)
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("")
    for path, mode in [(data, 0o755), (data / "logs", 0o750), (outside, 0o644)]:
        os.chmod(path, mode)
    (data / "logs" / "server.log").write_text("")
    os.chmod(data / "logs" / "server.log", 0o640)
    (data / "link").symlink_to(outside)
    with caplog.at_level(logging.WARNING, "swarmkeeper.datadir"):
        changed = tighten(private_paths(data))
    assert sorted(changed) == sorted([data, data / "logs", data / "logs" / "server.log"])
    assert [(path.stat().st_mode & 0o777) for path in changed] == [0o700, 0o700, 0o600]
    assert outside.stat().st_mode & 0o777 == 0o644  # reached only through a symlink: not ours to change
    assert len(caplog.records) == 3 and "from 640 to 600" in caplog.text
    assert tighten(private_paths(data)) == []
