"""ListBackends gzip-compressed for callers that accept gzip (issue 15, point 4): the same JSON as
the plain answer, never stale, each caller's own view, made of entries deflated apart."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from swarmkeeper import fds
from swarmkeeper.api import views
from swarmkeeper.api.gzipped import accepts_gzip, deflate_last, deflate_piece, gzip_member
from swarmkeeper.api.views import ListingCache
from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.files import write_atomic
from swarmkeeper.services import Services
from tests.accounts_support import Accounted
from tests.servers import in_process, on_loopback, test_config
from tests.test_private_settings import HEADERS, MASKED_HEADERS, TOKEN, swarm_backend_with_headers

GZIP = {"Accept-Encoding": "gzip, deflate, br"}  # as a browser sends it
MANY = 128  # backends in the tests of many
IDENTITY = {"Accept-Encoding": "identity"}


def write_dummies(data_dir: Path, count: int) -> None:
    """Backends.fds with ``count`` dummy backends (loaded at start, faster than adding each)."""
    root = fds.Section()
    for backend_id in range(count):
        entry, settings = fds.Section(), fds.Section()
        settings.set("Address", f"dummy{backend_id}")
        for key, value in (("type", "swarmkeeper_dummy"), ("title", f"GPU {backend_id}"), ("enabled", True),
                           ("settings", settings)):
            entry.set(key, value)
        root.set(str(backend_id), entry)
    data_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(data_dir / "Backends.fds", fds.dumps(root))


async def raw_listing(http: httpx.AsyncClient, session: str, headers: dict[str, str],
                      **options: bool) -> tuple[httpx.Headers, bytes]:
    """ListBackends' headers and its bytes as they came over the wire (not decoded)."""
    async with http.stream("POST", "/API/ListBackends", json={"session_id": session, **options},
                           headers=headers) as answer:
        assert answer.status_code == 200
        return answer.headers, b"".join([chunk async for chunk in answer.aiter_raw()])


async def all_running(http: httpx.AsyncClient, session: str) -> None:
    """Until every backend is running (so nothing changes between two answers compared)."""
    async with asyncio.timeout(10):
        while True:
            listing = (await http.post("/API/ListBackends", json={"session_id": session})).json()
            if all(entry["status"] == "running" for entry in listing.values()):
                return
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(("header", "allowed"), [
    ("gzip", True), ("gzip, deflate, br, zstd", True), ("br;q=1.0, GZIP;q=0.5", True), ("x-gzip", True),
    ("*", True), ("identity, *;q=0.1", True), ("", False), ("identity", False), ("deflate, br", False),
    ("gzip;q=0", False), ("gzip;q=0.000", False), ("*;q=0", False), ("gzip;q=0, *", False), ("gzip;q=x", False),
    ("*;q=0, gzip", True),
])
def test_which_accept_encoding_allows_gzip(header: str, allowed: bool) -> None:
    assert accepts_gzip(header) is allowed


def test_pieces_deflated_apart_make_one_gzip() -> None:
    reason = b"Load failed, will retry: [Errno 111] Connect call failed ('127.0.0.1', 4444)"
    parts = [b'"%d":{"title":"GPU %d","status":"running","status_reason":"%s"}' % (n, n, reason) for n in range(50)]
    whole = b"{" + b",".join(parts) + b"}"
    pieces = [deflate_piece(b"{" + parts[0])]
    pieces += [deflate_piece(b"," + part, before) for before, part in itertools.pairwise(parts)]
    made = gzip_member(whole, [*pieces, deflate_last(b"}")])
    assert gzip.decompress(made) == whole
    alone = sum(len(deflate_piece(b"," + part)) for part in parts)
    assert len(made) < alone / 3  # each piece refers back into the one ahead of it


async def test_a_gzip_caller_gets_the_same_json_as_an_identity_one(data_dir: Path) -> None:
    write_dummies(data_dir, 12)
    async with on_loopback(test_config(data_dir)) as server, httpx.AsyncClient(base_url=server.url) as http:
        session = (await http.post("/API/GetNewSession", json={})).json()["session_id"]
        await all_running(http, session)
        listings = []
        for options in ({}, {"nonreal": True, "full_data": True}):
            zipped_headers, zipped = await raw_listing(http, session, GZIP, **options)
            plain_headers, plain = await raw_listing(http, session, IDENTITY, **options)
            assert zipped_headers["content-encoding"] == "gzip" and "content-encoding" not in plain_headers
            assert zipped_headers["vary"] == plain_headers["vary"] == "Accept-Encoding"
            assert int(zipped_headers["content-length"]) == len(zipped) < len(plain)
            assert gzip.decompress(zipped) == plain
            listings.append(json.loads(plain))
            assert list(listings[-1]) == [str(n) for n in range(12)] and listings[-1]["3"]["title"] == "GPU 3"
        refused_headers, refused = await raw_listing(http, session, {"Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in refused_headers and json.loads(refused) == listings[0]
        decoded = await http.post("/API/ListBackends", json={"session_id": session})  # httpx's own default
        assert decoded.headers["content-encoding"] == "gzip" and decoded.json() == listings[0]
        other = await http.post("/API/ListBackendTypes", json={"session_id": session}, headers=GZIP)
        assert "content-encoding" not in other.headers and "vary" not in other.headers


async def test_a_change_is_in_the_very_next_gzip_answer(data_dir: Path) -> None:
    write_dummies(data_dir, 3)
    async with in_process(test_config(data_dir)) as api:
        assert api.services is not None
        record = api.services.registry.get(1)
        assert record is not None
        for round_ in range(3):
            answer = await api.call("ListBackends", nonreal=True)
            assert answer.headers["content-encoding"] == "gzip"
            assert answer.json()["1"]["title"] == ("GPU 1" if round_ == 0 else f"title {round_ - 1}")
            record.title = f"title {round_}"  # no await between the change and the next request
        await api.ok("EditBackend", backend_id=2, title="edited", settings={"Address": "elsewhere"})
        answer = await api.call("ListBackends", nonreal=True)
        assert answer.headers["content-encoding"] == "gzip" and answer.json()["2"]["title"] == "edited"
        await api.ok("DeleteBackend", backend_id=0)
        assert list((await api.call("ListBackends")).json()) == ["1", "2"]


def without_wall_time(answer: bytes) -> dict[str, Any]:
    """The answer less each ``last_used``: a wall time worked out from the monotonic clock when the
    entry is made, which may land on the next second in a fresh cache."""
    return {key: {name: value for name, value in entry.items() if name != "last_used"}
            for key, entry in json.loads(answer).items()}


async def answer_checked(cache: ListingCache, services: Services, *, nonreal: bool, editor: bool) -> None:
    """The gzip is of the answer, and the answer is what a cache that never saw it says at that
    moment (rendered just before, on the same stopped clock)."""
    fresh = ListingCache().render(services.registry.all(), nonreal=nonreal, full_data=False, editor=editor)
    body = cache.answer(services.registry.all(), nonreal=nonreal, full_data=False, editor=editor, gzip=True)
    assert without_wall_time(body) == without_wall_time(fresh)
    assert body.gzipped is not None and gzip.decompress(body.gzipped) == body


class Clock:
    """The monotonic clock the listing sees (a test moves it)."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()


def random_change(rng: random.Random, records: list[BackendRecord], clock: Clock) -> None:
    record = rng.choice(records)
    kind = rng.randrange(7)
    if kind == 4:
        record.last_used = clock.now - rng.random() * 3  # its time-since-used moves on its own
    elif kind == 5:
        record.real = not record.real  # now shown to fewer callers, or to more
    elif kind == 6:
        record.jobs_queued = record.jobs_queued  # a change that changes nothing shown
    elif kind == 0:
        record.title = f"t{rng.randrange(1000)}" * rng.randrange(1, 4)
    elif kind == 1:
        record.set_status(rng.choice([BackendStatus.WAITING, BackendStatus.LOADING, BackendStatus.ERRORED]),
                          f"reason {rng.randrange(1000)}")
    elif kind == 2:
        record.jobs_queued = rng.randrange(3)
    else:
        record.backend.max_usages = rng.randrange(1, 5)


@pytest.mark.parametrize("patched", [True, False], ids=["patched", "rebuilt"])
async def test_every_gzip_is_its_answer_through_random_changes(data_dir: Path, patched: bool,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Many backends, changes between answers, each of the views a caller may get, identity answers
    between gzip ones; the pieces kept for one view never leak into another's gzip. With
    the registry's changes (as the server has them) answers are patched; without, rebuilt. The
    clock moves by steps of up to 0.7 s, so time-since-used figures move between answers too."""
    clock = Clock()
    monkeypatch.setattr(views, "time", clock)
    write_dummies(data_dir, MANY)
    async with in_process(test_config(data_dir)) as api:
        assert api.services is not None
        services = api.services
        parent = services.registry.get(5)
        assert parent is not None
        parent.spawn_child("swarmkeeper_dummy", parent.settings, "child")  # a non-real one, shown to some
        cache = ListingCache(services.registry.changes() if patched else None)
        rng = random.Random(15)
        callers = [(nonreal, editor) for nonreal in (False, True) for editor in (False, True)]
        for step in range(200):
            clock.now += rng.choice([0, 0, 0.001, 0.1, 0.7])
            for _ in range(rng.choice([0, 1, 1, 2, 3, 8])):
                random_change(rng, list(services.registry), clock)
            if step == 100:
                await api.ok("DeleteBackend", backend_id=7)
            if step == 150:
                parent.spawn_child("swarmkeeper_dummy", parent.settings, "another")
            nonreal, editor = rng.choice(callers)
            if rng.random() < 0.3:  # an identity caller's answer: its gzip is never made
                cache.render(services.registry.all(), nonreal=nonreal, full_data=False, editor=editor)
                random_change(rng, list(services.registry), clock)
            await answer_checked(cache, services, nonreal=nonreal, editor=editor)


async def test_callers_share_one_gzip_and_an_identity_caller_makes_none(data_dir: Path) -> None:
    write_dummies(data_dir, MANY)
    async with in_process(test_config(data_dir)) as api:
        assert api.services is not None
        records = api.services.registry.all()
        cache = ListingCache()
        plain = cache.answer(records, nonreal=False, full_data=False, editor=True, gzip=False)
        assert plain.gzipped is None
        first, second = (cache.answer(records, nonreal=False, full_data=False, editor=True, gzip=True)
                         for _ in range(2))
        assert first is second is plain and first.gzipped is not None
        assert gzip.decompress(first.gzipped) == plain


async def test_each_caller_gets_the_gzip_of_its_own_view(app_client_with_accounts: Accounted) -> None:
    """A non-editor's gzip holds masked header lines and an editor's the lines as saved; a caller
    without nonreal does not get the non-real backends."""
    server = app_client_with_accounts
    await server.add_user("ada", "admin")
    await server.add_user("pat", "poweruser")
    admin, power = await server.session_for("ada"), await server.session_for("pat")
    backend = await swarm_backend_with_headers(server, admin)
    record = server.services.registry.get(backend)
    assert record is not None
    record.spawn_child(record.type.id, record.settings, "child")
    for _ in range(2):  # both ways round, the second time from the kept pieces
        for session, shown in ((power, MASKED_HEADERS), (admin, HEADERS)):
            for nonreal in (False, True):
                answer = await server.call("ListBackends", {"nonreal": nonreal}, session=session, headers=GZIP)
                assert answer.headers["content-encoding"] == "gzip"
                listing = answer.json()
                assert listing[str(backend)]["settings"]["OtherHeaders"] == shown
                assert ("-1" in listing) is nonreal
                if session == power:
                    assert TOKEN not in answer.text


async def test_each_gzip_deflates_only_what_changed_since_the_last_one(data_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first gzip deflates every entry; each one after it only the pieces its changes touched
    (an entry and the two after it, whose dictionary it is), also past an identity caller's answer
    in between. Before, gzips with many pieces to deflate went
    to a worker thread, and the answers asked for meanwhile all started from scratch together when
    it was done, each deflating on a thread what the others were deflating too (under churn at
    1,000 backends: 70,000 pieces in 15 s, and ListBackends' p99 at 0.5 s)."""
    changes_per_answer, answers = 64, 6
    write_dummies(data_dir, MANY * 4)
    async with in_process(test_config(data_dir)) as api:
        assert api.services is not None
        deflated: list[int] = []
        deflate = views._deflate

        def counted(todo: views._Todo) -> list[bytes]:
            deflated.append(len(todo))
            return deflate(todo)

        monkeypatch.setattr(views, "_deflate", counted)
        cache = ListingCache(api.services.registry.changes())
        records = api.services.registry.all()
        rng = random.Random(15)
        bodies = []
        for n in range(answers):
            for record in rng.sample(records, changes_per_answer):
                record.title = f"changed {n} {rng.random()}"
            if n == 3:  # an identity caller's answer in between: the next gzip reaches past it
                plain = cache.answer(records, nonreal=True, full_data=False, editor=True, gzip=False)
                assert plain.gzipped is None
                for record in rng.sample(records, changes_per_answer):
                    record.title = f"changed again {n} {rng.random()}"
            bodies.append(cache.answer(records, nonreal=True, full_data=False, editor=True, gzip=True))
        assert len({id(body) for body in bodies}) == answers
        for body in bodies:
            assert body.gzipped is not None and gzip.decompress(body.gzipped) == body
        first, *patched = deflated
        assert first == len(records)
        budget = [3 * changes_per_answer * (2 if n == 3 else 1) for n in range(1, answers)]
        assert len(patched) == len(budget), deflated
        assert all(count <= most for count, most in zip(patched, budget, strict=True)), (patched, budget)
