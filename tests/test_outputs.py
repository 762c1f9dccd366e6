"""Saved outputs: SwarmUI's path format from free text, and a store that never leaves its folder
nor overwrites an image."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from swarmkeeper.outputs import BadPath, OutputStore, check_user_id, output_path
from swarmkeeper.outputs.paths import clean_part, relative_parts

NOW = datetime(2026, 12, 7, 1, 23)


def test_the_path_is_swarmuis_default_format_with_plain_parts() -> None:
    assert output_path(NOW, 0, "a red fox", "folder/tiny-a.ckpt") == "raw/2026-12-07/01230-a red fox-tiny-a"
    assert clean_part("../../etc/passwd") == "etc passwd"
    assert clean_part("..") == "none" and clean_part("") == "none"
    assert clean_part("<script>x" * 20) == ("scriptx" * 6)[:40]
    assert len(clean_part("w" * 100)) == 40


@pytest.mark.parametrize("user_id", ["../x", "", "a/b", ".hidden", "x..y", "A"])
def test_a_user_id_that_cannot_name_a_folder_is_refused(user_id: str) -> None:
    with pytest.raises(BadPath):
        check_user_id(user_id)


@pytest.mark.parametrize("path", ["../x.png", "a/../../x.png", "/etc/x.png", "..", "x\x00.png"])
def test_a_requested_path_that_leaves_its_folder_is_refused(path: str) -> None:
    with pytest.raises(BadPath):
        relative_parts(path)


def test_the_store_never_overwrites_and_finds_only_images(tmp_path: Path) -> None:
    store = OutputStore(tmp_path)
    first = store.save("local", b"one", "png", index=0, prompt="p", model="m", now=NOW)
    second = store.save("local", b"two", "png", index=0, prompt="p", model="m", now=NOW)
    assert (first, second) == ("View/local/raw/2026-12-07/01230-p-m.png", "View/local/raw/2026-12-07/01230-p-m-1.png")
    found = store.find("local", second.removeprefix("View/local/"))
    assert found is not None and found.path.read_bytes() == b"two" and found.media_type == "image/png"
    assert not list(tmp_path.rglob("*.partial"))
    (tmp_path / "local" / "page.html").write_text("<html>")
    assert store.find("local", "page.html") is None and store.find("local", "raw/none.png") is None


async def test_with_accounts_a_user_views_only_their_own_outputs_unless_allowed_others(tmp_path: Path) -> None:
    from swarmkeeper.accounts.tokens import COOKIE
    from tests.accounts_support import accounts_server

    for owner in ("alice", "bob"):
        folder = tmp_path / "Output" / owner / "raw"
        folder.mkdir(parents=True)
        (folder / "a.png").write_bytes(b"\x89PNG " + owner.encode())
    async with accounts_server(tmp_path) as server:
        await server.add_user("alice", "user")
        await server.add_user("carol", "admin")
        alice, carol = await server.token_for("alice"), await server.token_for("carol")

        async def view(path: str, token: str | None) -> tuple[int, bytes]:
            headers = {"Cookie": f"{COOKIE}={token}"} if token else {}
            answer = await server.http.get(path, headers=headers)
            server.http.cookies.clear()
            return answer.status_code, answer.content

        assert await view("/View/alice/raw/a.png", alice) == (200, b"\x89PNG alice")
        status, body = await view("/View/bob/raw/a.png", alice)
        assert status == 400 and b"you may not view other users' outputs" in body
        assert (await view("/View/bob/raw/a.png", carol))[0] == 200  # admins hold view_others_outputs
        assert (await view("/View/alice/raw/a.png", None))[0] in (400, 401)
