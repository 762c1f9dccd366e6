"""The pool's relay of a backend's events: frames passed on exactly as the backend sent them,
``status`` counting the prompts of every backend, and one client id used by two sockets at once."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from pathlib import Path

import pytest

from swarmkeeper.clients.comfyui import ComfyClient, ComfyEvents, parse_text_event, peek_type
from swarmkeeper.clients.errors import ComfyUnreachable
from swarmkeeper.dispatch.pool.wsframes import BINARY, TEXT, frame
from swarmkeeper_doubles.fake_comfyui import run_fake_comfyui
from tests.comfy_peer import greeted_events, invert_graph, ws_image_graph
from tests.pool_support import pool_server

OWN = ("status", "feature_flags")


async def frames_until_done(events: ComfyEvents, prompt_ids: set[str], timeout: float = 60) -> list[str | bytes]:
    """Every frame, as it came, until each of the prompts has sent its done marker."""
    seen: list[str | bytes] = []
    left = set(prompt_ids)
    async with asyncio.timeout(timeout):
        while left:
            got = await events.recv_frame()
            seen.append(got)
            if isinstance(got, str) and peek_type(got) == "executing":
                data = parse_text_event(got)["data"]
                if data.get("node") is None:
                    left.discard(data.get("prompt_id"))
    return seen


def not_status(frames: list[str | bytes]) -> list[str | bytes]:
    return [f for f in frames if isinstance(f, bytes) or peek_type(f) not in OWN]


@pytest.mark.parametrize("preview_metadata", [True, False])
async def test_frames_reach_the_client_byte_for_byte_as_the_backend_sent_them(
        data_dir: Path, preview_metadata: bool) -> None:
    flags = {"supports_preview_metadata": True} if preview_metadata else {}
    async with run_fake_comfyui(job_seconds=0.02) as fake, pool_server(data_dir, [fake.url]) as pool, \
            pool.comfy() as comfy, greeted_events(comfy, "exact", **flags) as events:
        queued = await comfy.queue_prompt(ws_image_graph(0x123456), "exact")
        got = not_status(await frames_until_done(events, {queued["prompt_id"]}))
        link = next(client for sid, client in fake.engine.clients.items() if sid.startswith("swarmkeeper-"))
        sent = not_status(list(link.sent))
        assert sum(isinstance(f, bytes) for f in sent) == 2 and len(sent) > 10
        if preview_metadata:  # the backend's own frames, binary previews included
            assert got == sent
        else:  # the same, with each preview as ComfyUI sends it to a client without metadata
            assert [f for f in got if isinstance(f, str)] == [f for f in sent if isinstance(f, str)]
            previews = [f for f in got if isinstance(f, bytes)]
            assert [p[:8] for p in previews] == [b"\0\0\0\1\0\0\0\2"] * 2
            assert [p[8:] for p in previews] == [f[f.index(b"\x89PNG"):] for f in sent if isinstance(f, bytes)]


async def test_status_counts_the_prompts_of_every_backend(data_dir: Path) -> None:
    """Each backend's own ``status`` counts only its own queue; the clients see the pool's: every
    prompt accepted and not finished, whichever backend holds it."""
    async with run_fake_comfyui(job_seconds=0.5) as one, run_fake_comfyui(job_seconds=0.5) as two, \
            pool_server(data_dir, [one.url, two.url], over_queue=0) as pool, pool.comfy() as comfy, \
            greeted_events(comfy, "merged") as events:
        ids = {(await comfy.queue_prompt(invert_graph(0x200000 + n), "merged"))["prompt_id"] for n in range(4)}
        seen = await frames_until_done(events, ids)
        assert one.calls_to("/prompt", "POST") and two.calls_to("/prompt", "POST")
        counts, ended = [], 0
        for got in seen:
            if isinstance(got, bytes):
                continue
            kind = peek_type(got)
            if kind in ("execution_success", "execution_error", "execution_interrupted"):
                ended += 1
            elif kind == "status":
                remaining = json.loads(got)["data"]["status"]["exec_info"]["queue_remaining"]
                counts.append(remaining)
                if ended:  # once prompts end, the figure is all four less those ended
                    assert remaining == len(ids) - ended
        assert max(counts) == len(ids) and counts[-1] == 0  # each backend alone never had more than 2
        for fake in (one, two):
            link = next(client for sid, client in fake.engine.clients.items() if sid.startswith("swarmkeeper-"))
            own = [json.loads(f)["data"]["status"]["exec_info"]["queue_remaining"] for f in link.sent
                   if isinstance(f, str) and peek_type(f) == "status"]
            assert own and max(own) <= 2
        assert (await comfy.get_prompt_info())["exec_info"]["queue_remaining"] == 0


async def test_one_client_id_on_two_sockets_at_once(data_dir: Path) -> None:
    """The newer socket of a client id takes its events (the older one is closed); the older one
    closing after that leaves the newer one in place (ComfyUI itself would then forget the id)."""
    async with run_fake_comfyui(job_seconds=0.02) as fake, pool_server(data_dir, [fake.url]) as pool, \
            pool.comfy() as comfy, comfy.connect_events("twin") as older:
        await older.recv()  # its greeting
        async with ComfyClient(pool.comfy_url) as other, greeted_events(other, "twin") as newer:
            with pytest.raises(ComfyUnreachable):
                async with asyncio.timeout(10):
                    while True:
                        await older.recv_frame()
            await older.aclose()
            for colour in (0x300001, 0x300002):
                queued = await comfy.queue_prompt(invert_graph(colour), "twin")
                got = await frames_until_done(newer, {queued["prompt_id"]})
                kinds = [peek_type(f) for f in got if isinstance(f, str)]
                assert kinds.count("execution_success") == 1 and "execution_start" in kinds


async def open_unread_socket(comfy_url: str, client_id: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A websocket to the pool that is never read after its handshake (a small receive buffer, so
    the pool's writes back up at once)."""
    host, port = comfy_url.removeprefix("http://").rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET /ws?clientId={client_id} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


async def test_a_client_that_does_not_read_is_dropped_and_the_others_carry_on(
        data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with run_fake_comfyui(job_seconds=0.0) as fake, pool_server(data_dir, [fake.url]) as pool, \
            pool.comfy() as comfy, greeted_events(comfy, "reader") as reader:
        relay = pool.services.dispatch.running_pool().relay  # type: ignore[union-attr]
        relay.max_backlog_bytes = 64 * 1024
        _, unread = await open_unread_socket(pool.comfy_url, "unread")
        try:
            async with asyncio.timeout(10):
                while "unread" not in relay.clients:
                    await asyncio.sleep(0.01)
            flood = ws_image_graph(0x400000)
            flood["1"]["inputs"]["batch_size"] = 3000
            await comfy.queue_prompt(flood, "unread")
            async with asyncio.timeout(30):
                while "unread" in relay.clients:
                    await asyncio.sleep(0.01)
            assert "ComfyUI client unread fell 65536 bytes behind; dropping it" in caplog.messages
            queued = await comfy.queue_prompt(invert_graph(0x400001), "reader")
            got = await frames_until_done(reader, {queued["prompt_id"]})
            assert [peek_type(f) for f in got if isinstance(f, str)].count("execution_success") == 1
        finally:
            unread.close()


def test_frames_are_framed_as_rfc_6455_says() -> None:
    assert frame(TEXT, b"hi") == b"\x81\x02hi"
    assert frame(BINARY, b"x" * 200)[:4] == b"\x82\x7e\x00\xc8"
    assert frame(BINARY, b"x" * 70_000)[:10] == b"\x82\x7f" + (70_000).to_bytes(8, "big")
    assert len(frame(TEXT, b"y" * 125)) == 127 and frame(TEXT, b"y" * 126)[1] == 126


async def test_a_status_superseded_within_one_loop_iteration_is_not_sent(data_dir: Path) -> None:
    """``status`` is a snapshot: of those sent to a client in one event-loop iteration it gets the
    newest only; of different iterations every one, in order (a lone one too, a little later)."""
    async with run_fake_comfyui(job_seconds=0.0) as fake, pool_server(data_dir, [fake.url]) as pool, \
            pool.comfy() as comfy, greeted_events(comfy, "snapshots") as events:
        relay = pool.services.dispatch.running_pool().relay  # type: ignore[union-attr]
        assert relay.clients["snapshots"].frames is not None  # the pool's port: written straight
        for remaining in (7, 8, 9):
            relay.status(remaining)
        await asyncio.sleep(0)  # one loop iteration on
        relay.status(10)
        async with asyncio.timeout(10):
            got = [await events.recv() for _ in range(2)]
        assert [event["data"]["status"]["exec_info"]["queue_remaining"] for event in got] == [9, 10]  # type: ignore[index]
        queued = await comfy.queue_prompt(invert_graph(0x500001), "snapshots")
        seen = await frames_until_done(events, {queued["prompt_id"]})
        kinds = [peek_type(f) for f in seen if isinstance(f, str)]
        assert kinds[:2] == ["status", "status"] and kinds.index("execution_start") == 2  # as ComfyUI sends them
