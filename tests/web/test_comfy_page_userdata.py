"""The ComfyUI frontend's user routes on the pool (settings, saved workflows, user files), kept in
swarmkeeper's data dir per user: ComfyUI's answers, names that try to leave the user's folder,
size caps, how stored files are served, one user never reaching another's files; and the page's
file route asking a backend only for the frontend's own files."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from swarmkeeper.accounts.tokens import COOKIE
from swarmkeeper.dispatch.pool.userdata import FOLDER, Limits, UserDataError, UserFiles, user_folder
from tests.accounts_support import Accounted
from tests.servers import in_process, test_config

BASE = "/ComfyBackendDirect"
WORKFLOW = {"last_node_id": 0, "nodes": [], "links": [], "version": 0.4}


@pytest.fixture
async def http(data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The pool's routes of an in-process server (accounts off: the caller is ``local``)."""
    async with in_process(test_config(data_dir)) as client:
        yield client.http


def stored(data_dir: Path, user: str = "local") -> Path:
    return data_dir / FOLDER / user


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


async def test_a_workflow_is_saved_listed_read_moved_and_deleted_in_the_data_dir(
        http: httpx.AsyncClient, data_dir: Path) -> None:
    body = json.dumps(WORKFLOW).encode()
    saved = await http.post(f"{BASE}/api/userdata/workflows%2Fmine.json?overwrite=true&full_info=true", content=body)
    assert saved.status_code == 200 and saved.json()["path"] == "workflows/mine.json"
    assert saved.json()["size"] == len(body)
    assert (stored(data_dir) / "workflows" / "mine.json").read_bytes() == body

    listed = await http.get(f"{BASE}/api/userdata", params={"dir": "workflows", "recurse": "true", "full_info": "true"})
    assert [entry["path"] for entry in listed.json()] == ["mine.json"]
    plain = await http.get(f"{BASE}/userdata", params={"dir": "workflows", "split": "true"})
    assert plain.json() == [["mine.json", "mine.json"]]
    tree = await http.get(f"{BASE}/api/v2/userdata")
    assert [(e["path"], e["type"]) for e in tree.json()] == [("workflows", "directory"),
                                                             ("workflows/mine.json", "file")]

    again = await http.post(f"{BASE}/api/userdata/workflows%2Fmine.json?overwrite=false", content=b"{}")
    assert again.status_code == 409 and (stored(data_dir) / "workflows" / "mine.json").read_bytes() == body

    read = await http.get(f"{BASE}/api/userdata/workflows%2Fmine.json")
    assert read.json() == WORKFLOW and read.headers["content-type"] == "application/json"
    assert read.headers["x-content-type-options"] == "nosniff"

    moved = await http.post(f"{BASE}/api/userdata/workflows%2Fmine.json/move/workflows%2Fsub%2Fyours.json")
    assert moved.json() == "workflows/sub/yours.json"
    assert files_under(stored(data_dir)) == {"workflows/sub/yours.json"}
    assert (await http.delete(f"{BASE}/api/userdata/workflows%2Fsub%2Fyours.json")).status_code == 204
    assert files_under(stored(data_dir)) == set()
    assert (await http.get(f"{BASE}/api/userdata/workflows%2Fsub%2Fyours.json")).status_code == 404
    assert (await http.get(f"{BASE}/api/userdata", params={"dir": "nowhere"})).status_code == 404


async def test_settings_are_kept_in_the_data_dir_and_bad_ones_change_nothing(
        http: httpx.AsyncClient, data_dir: Path) -> None:
    assert (await http.get(f"{BASE}/api/settings")).json() == {}
    assert (await http.post(f"{BASE}/api/settings/Comfy.Sidebar.Size", json="small")).status_code == 200
    assert (await http.post(f"{BASE}/api/settings", json={"Comfy.Locale": "fr", "Comfy.X": [1]})).status_code == 200
    expected = {"Comfy.Sidebar.Size": "small", "Comfy.Locale": "fr", "Comfy.X": [1]}
    assert (await http.get(f"{BASE}/settings")).json() == expected
    assert (await http.get(f"{BASE}/api/settings/Comfy.Locale")).json() == "fr"
    assert (await http.get(f"{BASE}/api/settings/Unknown")).json() is None
    on_disk = stored(data_dir) / "comfy.settings.json"
    assert json.loads(on_disk.read_text()) == expected

    not_json = await http.post(f"{BASE}/api/settings", content=b"{not json")
    not_object = await http.post(f"{BASE}/api/settings", json=["a"])
    assert (not_json.status_code, not_object.status_code) == (400, 400)
    assert json.loads(on_disk.read_text()) == expected
    assert (await http.get(f"{BASE}/api/users")).json() == {"storage": "server", "migrated": True}
    assert (await http.post(f"{BASE}/api/users", json={"username": "x"})).status_code == 400


@pytest.mark.parametrize("name", [
    "..%2F..%2FBackends.fds", "%2Fetc%2Fpasswd", "a%5C..%5C..%5Cb.json", "%252e%252e%252fescape.json",
    "workflows%2F..%2F..%2F..%2Fescape.json", "bad%00name.json", "%2E%2E",
])
async def test_names_that_leave_the_users_folder_are_refused(
        http: httpx.AsyncClient, data_dir: Path, name: str) -> None:
    (data_dir / "keep.txt").write_text("untouched")
    assert (await http.post(f"{BASE}/api/userdata/ok.json", content=b"{}")).status_code == 200
    for call in (http.post(f"{BASE}/api/userdata/{name}", content=b"x"), http.get(f"{BASE}/api/userdata/{name}"),
                 http.delete(f"{BASE}/api/userdata/{name}"), http.post(f"{BASE}/api/userdata/ok.json/move/{name}"),
                 http.post(f"{BASE}/api/userdata/{name}/move/ok2.json")):
        answer = await call
        assert answer.status_code == 403 and answer.text == "Invalid file name.", (name, answer.status_code)
    assert files_under(stored(data_dir)) == {"ok.json"}
    assert not [p for p in data_dir.parent.rglob("*") if p.name in ("escape.json", "b.json", "ok2.json")]
    assert (data_dir / "keep.txt").read_text() == "untouched"
    listing = await http.get(f"{BASE}/api/userdata", params={"dir": "../.."})
    tree = await http.get(f"{BASE}/api/v2/userdata", params={"path": "../"})
    assert (listing.status_code, tree.status_code) == (403, 400)


async def test_a_link_out_of_the_users_folder_is_not_followed(http: httpx.AsyncClient, data_dir: Path) -> None:
    outside = data_dir / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"secret": 1}')
    stored(data_dir).mkdir(parents=True)
    os.symlink(outside, stored(data_dir) / "link")
    assert (await http.get(f"{BASE}/api/userdata/link%2Fsecret.json")).status_code == 403
    assert (await http.post(f"{BASE}/api/userdata/link%2Fnew.json", content=b"{}")).status_code == 403
    assert sorted(p.name for p in outside.iterdir()) == ["secret.json"]


async def test_stored_files_are_never_served_as_active_content(http: httpx.AsyncClient) -> None:
    page = b"<html><script>alert(1)</script></html>"
    for name, kind in (("x.html", "application/octet-stream"), ("x.svg", "application/octet-stream"),
                       ("x.js", "application/octet-stream"), ("user.css", "text/css"),
                       ("x.json", "application/json")):
        assert (await http.post(f"{BASE}/api/userdata/{name}", content=page)).status_code == 200
        served = await http.get(f"{BASE}/api/userdata/{name}")
        assert served.content == page
        assert served.headers["content-type"].split(";")[0] == kind, name
        assert served.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in served.headers["content-security-policy"]
        if kind == "application/octet-stream":
            assert served.headers["content-disposition"] == "attachment"


async def test_a_file_over_the_size_cap_is_refused_and_nothing_is_stored(
        http: httpx.AsyncClient, data_dir: Path) -> None:
    too_big = b"x" * (Limits().file_bytes + 1)
    answer = await http.post(f"{BASE}/api/userdata/big.json", content=too_big)
    assert answer.status_code == 413 and "16 MB" in answer.text
    assert files_under(stored(data_dir)) == set()


def test_a_users_files_are_capped_in_number_and_total_size(tmp_path: Path) -> None:
    files = UserFiles(tmp_path / "u", Limits(file_bytes=100, user_bytes=250, user_files=3))
    files.write("a.json", b"x" * 100, overwrite=True)
    files.write("b.json", b"x" * 100, overwrite=True)
    with pytest.raises(UserDataError) as total:
        files.write("c.json", b"x" * 60, overwrite=True)
    assert total.value.status == 413
    files.write("a.json", b"x" * 40, overwrite=True)  # replacing a file counts its new size only
    files.write("c.json", b"x" * 10, overwrite=True)
    with pytest.raises(UserDataError) as count:
        files.write("d.json", b"", overwrite=True)
    assert count.value.status == 413 and "3 files" in count.value.message
    assert sorted(p.name for p in (tmp_path / "u").iterdir()) == ["a.json", "b.json", "c.json"]


def test_user_folders_never_collide(tmp_path: Path) -> None:
    names = ["alice", "Alice", "a/../b", "~x", "", "bob smith", "bob-smith"]
    folders = [user_folder(tmp_path, name) for name in names]
    assert len(set(folders)) == len(names)
    assert all(folder.parent == tmp_path / FOLDER for folder in folders)


async def test_each_user_has_their_own_files_and_settings(app_client_with_accounts: Accounted, data_dir: Path) -> None:
    server = app_client_with_accounts
    for name in ("alice", "bob"):
        await server.add_user(name, "user")
    alice = {"Cookie": f"{COOKIE}={await server.token_for('alice')}"}
    bob = {"Cookie": f"{COOKIE}={await server.token_for('bob')}"}
    http = server.http
    assert (await http.get(f"{BASE}/api/settings")).status_code == 401
    assert (await http.post(f"{BASE}/api/userdata/workflows%2Fa.json", content=b"{}")).status_code == 401

    assert (await http.post(f"{BASE}/api/userdata/workflows%2Fa.json", content=b'{"a": 1}',
                            headers=alice)).status_code == 200
    assert (await http.post(f"{BASE}/api/settings/Comfy.Locale", json="de", headers=alice)).status_code == 200
    as_alice = {**bob, "comfy-user": "alice"}  # ComfyUI's own user header changes nothing: the pool knows the caller
    assert (await http.get(f"{BASE}/api/userdata/workflows%2Fa.json", headers=as_alice)).status_code == 404
    assert (await http.get(f"{BASE}/api/userdata", params={"dir": "workflows"}, headers=bob)).status_code == 404
    assert (await http.get(f"{BASE}/api/settings", headers=bob)).json() == {}
    assert (await http.get(f"{BASE}/api/settings", headers=alice)).json() == {"Comfy.Locale": "de"}
    assert files_under(stored(data_dir, "alice")) == {"workflows/a.json", "comfy.settings.json"}
    assert files_under(stored(data_dir, "bob")) == set()


async def test_the_page_route_asks_for_frontend_files_only(http: httpx.AsyncClient) -> None:
    page = await http.get(f"{BASE}/")
    assert page.status_code == 503 and "No ComfyUI backend is running" in page.text
    assert page.headers["content-type"].startswith("text/plain")
    assert (await http.get(f"{BASE}/assets/index.js")).status_code == 503
    for path in ("internal/folder_paths", "internal/logs", "api/unknown", "assets/..%2F..%2Fsecret",
                 "extensions/a%2F..%2F..%2Fb.js", "nothing-without-a-dot"):
        assert (await http.get(f"{BASE}/{path}")).status_code == 404, path
    assert (await http.get(f"{BASE}/api/extensions")).json() == []
    assert (await http.get(f"{BASE}/api/i18n")).json() == {}
    assert (await http.get(f"{BASE}/api/workflow_templates")).json() == {}
    assert (await http.get(f"{BASE}/api/experiment/models")).json() == []
