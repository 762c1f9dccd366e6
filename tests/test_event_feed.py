"""EventFeed, the relay's event websocket: whole messages to a callback as they arrive, and every way
a socket can end turned into a reason, against the fake ComfyUI and real websockets servers on
loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

from swarmkeeper.clients.comfyui import BinaryEvent, ComfyClient, parse_text_event, peek_type
from swarmkeeper.clients.errors import REFUSED_MESSAGE, ComfyRequestError, ComfyTimeout, ComfyUnreachable
from swarmkeeper_doubles.fake_comfyui import run_fake_comfyui
from tests.comfy_peer import ws_image_graph
from tests.ports import free_port

Handler = Callable[[ServerConnection], Awaitable[None]]


@contextlib.asynccontextmanager
async def ws_server(handler: Handler, **options: Any) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, compression=None, **options) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"


class Frames:
    """What a feed delivered, and a way to wait for it."""

    def __init__(self) -> None:
        self.items: list[str | bytes] = []
        self.changed = asyncio.Event()

    def __call__(self, frame: str | bytes) -> None:
        self.items.append(frame)
        self.changed.set()

    async def until(self, check: Callable[[list[str | bytes]], bool], timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not check(self.items):
                self.changed.clear()
                await self.changed.wait()


def done_marker(prompt_id: str) -> Callable[[list[str | bytes]], bool]:
    def check(items: list[str | bytes]) -> bool:
        for item in items:
            if isinstance(item, str) and peek_type(item) == "executing":
                data = parse_text_event(item)["data"]
                if data.get("node") is None and data.get("prompt_id") == prompt_id:
                    return True
        return False

    return check


async def test_a_prompt_s_frames_arrive_whole_text_as_str_and_binary_as_bytes() -> None:
    async with run_fake_comfyui(job_seconds=0.01) as fake, ComfyClient(fake.url) as comfy:
        frames = Frames()
        feed = await comfy.open_feed("feed-1", frames, feature_flags={"supports_preview_metadata": True})
        try:
            queued = await comfy.queue_prompt(ws_image_graph(0x102030), "feed-1")
            await frames.until(done_marker(queued["prompt_id"]))
        finally:
            await feed.aclose()
        texts = [parse_text_event(f) for f in frames.items if isinstance(f, str)]
        assert texts[0]["type"] == "status" and texts[0]["data"]["sid"] == "feed-1"
        assert {"feature_flags", "execution_start", "execution_success"} <= {t["type"] for t in texts}
        binary = [BinaryEvent.parse(f) for f in frames.items if isinstance(f, bytes)]
        assert binary and all(type(f) is bytes for f in frames.items if not isinstance(f, str))
        assert await asyncio.wait_for(feed.ended, 1) == "The backend closed its event connection."


async def test_a_fragmented_message_is_delivered_once_whole() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(['{"type": "st', 'atus", "data": {}}'])
        await ws.send([b"\x00\x00\x00\x01", b"rest"])
        await ws.wait_closed()

    async with ws_server(handler) as url, ComfyClient(url) as comfy:
        frames = Frames()
        feed = await comfy.open_feed("x", frames)
        await frames.until(lambda items: len(items) == 2)
        await feed.aclose()
    assert frames.items == ['{"type": "status", "data": {}}', b"\x00\x00\x00\x01rest"]


@pytest.mark.parametrize(("send", "reason"), [
    (lambda ws: ws.close(), "The backend closed its event connection."),
    (lambda ws: ws.send("x" * 2048), "A websocket message from the backend was larger than allowed."),
])
async def test_each_end_of_the_socket_has_its_reason(send: Callable[[ServerConnection], Awaitable[None]],
                                                     reason: str) -> None:
    async def handler(ws: ServerConnection) -> None:
        await send(ws)
        await ws.wait_closed()

    async with ws_server(handler) as url, ComfyClient(url, max_file_bytes=1024) as comfy:
        feed = await comfy.open_feed("x", Frames())
        assert await asyncio.wait_for(feed.ended, 10) == reason
        await feed.aclose()


async def test_frames_that_break_the_protocol_end_the_feed_with_that_reason() -> None:
    async def handler(ws: ServerConnection) -> None:
        ws.transport.write(b"\x89\x7e\x00\x80" + b"p" * 128)  # a ping longer than a control frame may be
        await ws.wait_closed()

    async with ws_server(handler) as url, ComfyClient(url) as comfy:
        feed = await comfy.open_feed("x", Frames())
        reason = await asyncio.wait_for(feed.ended, 10)
    assert reason.startswith("The backend broke the websocket protocol (")


async def test_a_connection_cut_without_a_close_is_lost() -> None:
    async def handler(ws: ServerConnection) -> None:
        ws.transport.abort()
        await ws.wait_closed()

    async with ws_server(handler) as url, ComfyClient(url) as comfy:
        feed = await comfy.open_feed("x", Frames())
        assert await asyncio.wait_for(feed.ended, 10) == "The websocket connection to the backend was lost."


async def test_a_server_that_stops_answering_is_noticed_by_the_keepalive() -> None:
    pongs: list[float] = []
    checked = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await asyncio.sleep(0.5)  # answers pings meanwhile (websockets does): the feed stays up
        pongs.append(asyncio.get_running_loop().time())
        ws.transport.pause_reading()  # then reads nothing more, as a vanished host: no pong
        await checked.wait()
        ws.transport.abort()

    async with ws_server(handler) as url, ComfyClient(url) as comfy:
        feed = await comfy.open_feed("x", Frames(), ping_interval=0.1)
        reason = await asyncio.wait_for(feed.ended, 10)
        checked.set()
        assert pongs, "the feed ended while the server still answered its pings"
        assert reason == "The backend stopped answering on its event connection (no pong in 0.1 s)."


async def test_text_that_is_not_utf8_ends_the_feed() -> None:
    async def handler(ws: ServerConnection) -> None:
        ws.protocol.send_frame(Frame(Opcode.TEXT, b"\xff\xfe"))
        ws.send_data()
        await ws.wait_closed()

    async with ws_server(handler) as url, ComfyClient(url) as comfy:
        frames = Frames()
        feed = await comfy.open_feed("x", frames)
        assert await asyncio.wait_for(feed.ended, 10) == "The backend sent a text message that is not UTF-8."
        assert frames.items == []


async def test_a_failing_callback_ends_the_feed_with_its_reason() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("one")
        await ws.wait_closed()

    def comfy_error(frame: str | bytes) -> None:
        parse_text_event(str(frame))  # "one" is not JSON: a ComfyProtocolError

    def bug(frame: str | bytes) -> None:
        raise KeyError(frame)

    async with ws_server(handler) as url, ComfyClient(url) as comfy:
        feed = await comfy.open_feed("x", comfy_error)
        assert await asyncio.wait_for(feed.ended, 10) == "The backend sent a websocket message that is not JSON."
        feed = await comfy.open_feed("x", bug)
        assert await asyncio.wait_for(feed.ended, 10) == "The event relay failed (KeyError)."


async def test_feature_flags_are_sent_first_and_aclose_closes_normally() -> None:
    received: list[Any] = []
    closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            received.append(json.loads(message))
        closed.set_result(ws.close_code)

    async with ws_server(handler) as url, ComfyClient(url) as comfy:
        feed = await comfy.open_feed("x", Frames(), feature_flags={"supports_preview_metadata": True})
        await feed.aclose()
        assert await asyncio.wait_for(closed, 10) == 1000
    assert received == [{"type": "feature_flags", "data": {"supports_preview_metadata": True}}]
    assert feed.ended.done()


async def test_a_refused_handshake_says_what_the_server_answered() -> None:
    def forbid(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(HTTPStatus.FORBIDDEN, "no\n")

    async with ws_server(lambda ws: ws.wait_closed(), process_request=forbid) as url, ComfyClient(url) as comfy:
        with pytest.raises(ComfyRequestError) as refused:
            await comfy.open_feed("x", Frames())
    assert refused.value.status == 403
    assert "refused the websocket with HTTP 403" in refused.value.message


async def test_nothing_listening_and_no_answer_fail_within_the_timeout() -> None:
    async with ComfyClient(f"http://127.0.0.1:{free_port()}") as comfy:
        with pytest.raises(ComfyUnreachable) as refused:
            await comfy.open_feed("x", Frames())
    assert refused.value.message == REFUSED_MESSAGE

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    async with server, ComfyClient(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", timeout=0.3) as comfy:
        with pytest.raises(ComfyTimeout):
            await comfy.open_feed("x", Frames())

