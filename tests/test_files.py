"""files.py: what cannot be read as text is a clear error and stays where it is; writes are 0600."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmkeeper.exceptions import DataFileError
from swarmkeeper.files import read_text, sidecar, write_atomic


def test_a_directory_in_a_files_place_is_neither_read_nor_replaced(tmp_path: Path) -> None:
    path = tmp_path / "Backends.fds"
    path.mkdir()
    (path / "inside").write_text("kept")
    with pytest.raises(DataFileError, match="is a directory, not a file"):
        read_text(path)
    with pytest.raises(IsADirectoryError):
        write_atomic(path, "0:\n")
    assert (path / "inside").read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Backends.fds"]


def test_invalid_utf8_names_the_line_and_leaves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "Settings.fds"
    path.write_bytes(b"Network:\n\tAuthBypassIPs: ok\n\tRequiredAuthorization: \xff\xfe\n")
    with pytest.raises(DataFileError) as raised:
        read_text(path)
    assert (raised.value.line, raised.value.path) == (3, path)
    assert str(raised.value) == f"{path}, line 3: is not valid UTF-8 text (byte 52)"
    assert path.read_bytes().endswith(b"\xff\xfe\n")


def test_a_cut_off_write_is_recovered_and_new_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "Backends.fds"
    write_atomic(path, "old\n")
    path.rename(sidecar(path, "~2"))  # cut off between the renames
    assert read_text(path) == "old\n"
    write_atomic(path, "new\n")
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert read_text(path) == "new\n"
