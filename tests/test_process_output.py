"""A process's output through files (process/output.py): a child launched with an output folder
writes there and its lines still reach the sink; a follower that starts at the end sees only
new lines; a file past its size limit is emptied once read."""

from __future__ import annotations

import collections
import os
import sys
from pathlib import Path

import pytest

from swarmkeeper.process import output
from swarmkeeper.process.child import LinePump, spawn
from swarmkeeper.process.launch import LaunchSpec
from swarmkeeper.process.output import FILES, OutputFollower, open_for_child


def pumps(seen: list[tuple[str, str]]) -> dict[str, LinePump]:
    return {stream: LinePump(stream, lambda s, line: seen.append((s, line)), collections.deque()) for stream in FILES}


async def test_a_child_with_an_output_folder_writes_there_and_its_lines_reach_the_sink(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    code = "import sys; print('out 1'); print('err 1', file=sys.stderr); print('err 2', file=sys.stderr)"
    spec = LaunchSpec(argv=(sys.executable, "-c", code), cwd=tmp_path, name="c", output_dir=tmp_path / "out")
    child = await spawn(spec, lambda stream, line: seen.append((stream, line)))
    assert await child.wait() == 0
    assert sorted(seen) == [("STDERR", "err 1"), ("STDERR", "err 2"), ("STDOUT", "out 1")]
    assert list(child.last_lines) == ["err 1", "err 2"]
    assert (tmp_path / "out" / "stdout.log").read_text() == "out 1\n"
    assert (tmp_path / "out" / "stderr.log").read_text() == "err 1\nerr 2\n"


async def test_each_launch_empties_the_files(tmp_path: Path) -> None:
    for word in ("first", "second"):
        spec = LaunchSpec(argv=(sys.executable, "-c", f"print({word!r})"), cwd=tmp_path, output_dir=tmp_path)
        await (await spawn(spec, lambda stream, line: None)).wait()
    assert (tmp_path / "stdout.log").read_text() == "second\n"


async def test_a_follower_from_the_end_sees_only_what_comes_after_it(tmp_path: Path) -> None:
    fds = open_for_child(tmp_path)
    try:
        os.write(fds["STDERR"], b"before 1\nbefore 2\n")
        seen: list[tuple[str, str]] = []
        follower = OutputFollower(tmp_path, pumps(seen), from_end=True)
        os.write(fds["STDERR"], b"after\npart")
        os.write(fds["STDOUT"], b"out\n")
        follower.catch_up()
        assert sorted(seen) == [("STDERR", "after"), ("STDOUT", "out")]
        await follower.stop()  # an unfinished last line is handed over at the end
        assert seen[-1] == ("STDERR", "part")
    finally:
        for fd in fds.values():
            os.close(fd)


async def test_a_file_past_the_limit_is_emptied_once_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output, "MAX_BYTES", 64)
    fds = open_for_child(tmp_path)  # opened with O_APPEND, as the child's are
    seen: list[tuple[str, str]] = []
    follower = OutputFollower(tmp_path, pumps(seen), from_end=False)
    try:
        lines = [f"line {n:02} ........".encode() for n in range(5)]  # 5 x 17 bytes: past 64
        os.write(fds["STDOUT"], b"\n".join(lines) + b"\n")
        follower.catch_up()
        assert (tmp_path / "stdout.log").stat().st_size == 0
        os.write(fds["STDOUT"], b"after truncation\n")  # the writer goes on at the new end
        follower.catch_up()
        assert [line for _, line in seen] == [line.decode() for line in lines] + ["after truncation"]
    finally:
        await follower.stop()
        for fd in fds.values():
            os.close(fd)
