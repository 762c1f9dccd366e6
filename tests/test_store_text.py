"""Backends.fds's text is made entry by entry, and an entry handed back unchanged (the same
section) is not turned into text again: with 1,000 backends a save costs what changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmkeeper import fds
from swarmkeeper.backends.store import BackendStore


def entry(address: str, title: str = "") -> fds.Section:
    settings = fds.Section()
    settings.set("Address", address, comments=["The address of the ComfyUI instance."])
    settings.set("Tags", ["a", "b"])
    return fds.Section({"type": "comfyui_api", "title": title, "enabled": True, "settings": settings})


def root_of(entries: dict[str, fds.Section]) -> fds.Section:
    return fds.Section(entries)


def test_the_text_is_the_whole_dump_and_unchanged_entries_are_not_dumped_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BackendStore(tmp_path / "Backends.fds")
    entries = {str(n): entry(f"http://127.0.0.1:{8000 + n}", title="\x00" if n == 2 else "") for n in range(5)}
    first = root_of(entries)
    assert store._text_of(first) == fds.dumps(first)
    dumped: list[fds.Section] = []
    real_dumps = fds.dumps

    def counting(section: fds.Section) -> str:
        dumped.append(section)
        return real_dumps(section)

    monkeypatch.setattr(fds, "dumps", counting)
    entries["3"] = entry("http://elsewhere:8188", title="edited")
    del entries["1"]
    second = root_of(entries)
    text = store._text_of(second)
    monkeypatch.undo()
    assert text == fds.dumps(second)
    assert [list(section) for section in dumped] == [["3"]]  # only the new entry was turned into text


def test_a_root_with_comments_of_its_own_is_dumped_whole(tmp_path: Path) -> None:
    store = BackendStore(tmp_path / "Backends.fds")
    root = fds.Section()
    root.set("0", entry("http://a:1"), comments=["a comment on the root"])
    root.trailing_comments = ["the end"]
    assert store._text_of(root) == fds.dumps(root)
    assert "#a comment on the root" in store._text_of(root)
