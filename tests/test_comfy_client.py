"""The ComfyUI client against the fake ComfyUI: routes, events, and every failure it maps."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest

from swarmkeeper.clients.comfyui import (
    Address,
    BinaryEvent,
    BinaryEventType,
    ComfyClient,
    ComfyEvent,
    ComfyEvents,
    parse_text_event,
    peek_type,
)
from swarmkeeper.clients.errors import (
    REFUSED_MESSAGE,
    ComfyError,
    ComfyProtocolError,
    ComfyRequestError,
    ComfyTimeout,
    ComfyUnreachable,
)
from swarmkeeper_doubles.fake_comfyui import FakeComfyUI, encode_png, png_size, run_fake_comfyui
from tests.comfy_peer import (
    blur_graph,
    collect,
    event_type,
    greeted_events,
    invert_graph,
    recorded_types,
    run_prompt,
    unique_color,
    ws_image_graph,
)
from tests.ports import free_port


@pytest.fixture
async def fake() -> AsyncIterator[FakeComfyUI]:
    async with run_fake_comfyui(job_seconds=0.02) as server:
        yield server


@pytest.fixture
async def comfy(fake: FakeComfyUI) -> AsyncIterator[ComfyClient]:
    async with ComfyClient(fake.url, timeout=5) as client:
        yield client


async def until_executing(events: ComfyEvents, node: str) -> list[ComfyEvent]:
    """Events up to ``executing`` of ``node``."""
    seen: list[ComfyEvent] = []
    async with asyncio.timeout(10):
        while not seen or event_type(seen[-1]) != "executing" or seen[-1]["data"]["node"] != node:
            seen.append(await events.recv())
    return seen


def first_pixel(png: bytes) -> tuple[int, int, int]:
    """The top-left RGB pixel of an 8-bit RGB PNG without filters (what the fake writes)."""
    start = png.index(b"IDAT") + 4
    length = int.from_bytes(png[start - 8 : start - 4], "big")
    raw = zlib.decompress(png[start : start + length])
    return raw[1], raw[2], raw[3]


# --- addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("http://127.0.0.1:8188/", "http://127.0.0.1:8188"),
        ("  HTTPS://comfy.example/prefix//  ", "https://comfy.example/prefix"),
        ("http://[::1]:8188", "http://[::1]:8188"),
    ],
)
def test_address_normalises(raw: str, url: str) -> None:
    assert Address.parse(raw).url == url


def test_address_ws_url() -> None:
    assert Address.parse("https://host:1/x/").ws_url == "wss://host:1/x"


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("localhost:8188", "http:// or https://"),
        ("ftp://host", "http:// or https://"),
        ("http://", "no host"),
        ("http://host:99999", "Invalid backend address"),
        ("http://host/?x=1", "query"),
    ],
)
def test_address_rejects(raw: str, words: str) -> None:
    with pytest.raises(ValueError) as caught:
        Address.parse(raw)
    assert words in str(caught.value) and repr(raw) in str(caught.value)


def test_client_rejects_bad_address() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        ComfyClient("127.0.0.1:8188")


# --- information routes ----------------------------------------------------------------------


async def test_object_info_has_model_free_nodes(comfy: ComfyClient) -> None:
    info = await comfy.object_info()
    assert {"EmptyImage", "ImageInvert", "SaveImage", "SaveImageWebsocket"} <= info.keys()
    assert info["SaveImage"]["output_node"] is True
    assert await comfy.object_info("ImageInvert") == {"ImageInvert": info["ImageInvert"]}
    assert await comfy.object_info("NoSuchNode") == {}


async def test_system_stats_features_models(comfy: ComfyClient) -> None:
    stats = await comfy.system_stats()
    assert stats["devices"][0]["type"] == "cpu"
    assert await comfy.features() == {"supports_preview_metadata": True, "max_upload_size": 104857600}
    assert "checkpoints" in await comfy.models()
    assert await comfy.models("checkpoints") == []


async def test_unknown_model_folder_is_a_404(comfy: ComfyClient) -> None:
    with pytest.raises(ComfyRequestError) as caught:
        await comfy.models("nope")
    assert caught.value.status == 404
    assert caught.value.message == "The backend answered HTTP 404."


async def test_api_prefix_serves_the_same_routes(fake: FakeComfyUI) -> None:
    async with ComfyClient(fake.url + "/api/") as comfy:
        assert (await comfy.features())["max_upload_size"] == 104857600
        async with greeted_events(comfy, "api-client") as events:
            _, seen = await run_prompt(comfy, events, invert_graph(unique_color()))
    assert event_type(seen[-1]) == "executing"
    assert fake.calls_to("/prompt", "POST")[0].path == "/api/prompt"


async def test_headers_are_sent(fake: FakeComfyUI) -> None:
    async with ComfyClient(fake.url, headers={"Authorization": "Bearer token"}) as comfy:
        await comfy.features()
    assert fake.calls_to("/features")[0].headers["authorization"] == "Bearer token"


# --- prompts and events ----------------------------------------------------------------------


async def test_fresh_then_cached_prompt_events_match_recordings(comfy: ComfyClient) -> None:
    graph = invert_graph(0x123456)
    async with comfy.connect_events("client-a") as events:
        first = await events.recv()
        assert first["type"] == "status" and events.sid == "client-a"
        queued, fresh = await run_prompt(comfy, events, graph)
        _, cached = await run_prompt(comfy, events, graph)
    assert set(queued) == {"prompt_id", "number", "node_errors"}
    assert [event_type(e) for e in fresh] == recorded_types("ws_invert_fresh.json")
    assert [event_type(e) for e in cached] == recorded_types("ws_invert_cached.json")
    executing = [e["data"]["node"] for e in fresh if event_type(e) == "executing"]
    assert executing == ["1", "4", "2", "3", None]
    cached_nodes = next(e for e in cached if event_type(e) == "execution_cached")["data"]["nodes"]
    assert cached_nodes == ["1", "2", "3", "4"]


async def test_saved_png_is_served_by_view(comfy: ComfyClient) -> None:
    async with greeted_events(comfy, "client-v") as events:
        _, seen = await run_prompt(comfy, events, invert_graph(0x102030, prefix="sub/dir/pic"))
    executed = {e["data"]["node"]: e["data"]["output"] for e in seen if event_type(e) == "executed"}
    image = executed["3"]["images"][0]
    assert image == {"filename": "pic_00001_.png", "subfolder": "sub/dir", "type": "output"}
    png = await comfy.view(image["filename"], image["subfolder"], image["type"])
    assert png_size(png) == (64, 64)
    assert first_pixel(png) == (0xEF, 0xDF, 0xCF)  # inverted 0x102030
    preview = executed["4"]["images"][0]
    assert first_pixel(await comfy.view(preview["filename"], type="temp")) == (0x10, 0x20, 0x30)


async def test_history_after_success(comfy: ComfyClient) -> None:
    async with greeted_events(comfy, "client-h") as events:
        queued, _ = await run_prompt(comfy, events, invert_graph(unique_color()))
    entry = (await comfy.history(queued["prompt_id"]))[queued["prompt_id"]]
    assert set(entry) == {"prompt", "outputs", "status", "meta"}
    number, prompt_id, _graph, extra, outputs = entry["prompt"]
    assert (number, prompt_id, outputs) == (queued["number"], queued["prompt_id"], ["3", "4"])
    assert extra["client_id"] == "client-h"
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]] == ["execution_start", "execution_cached", "execution_success"]
    assert set(await comfy.history(max_items=1)) == {queued["prompt_id"]}
    await comfy.delete_history([queued["prompt_id"]])
    assert await comfy.history(queued["prompt_id"]) == {}


async def test_events_go_only_to_the_prompts_client(comfy: ComfyClient) -> None:
    async with greeted_events(comfy, "owner") as owner, greeted_events(comfy, "bystander") as other:
        await run_prompt(comfy, owner, invert_graph(unique_color()))
        async with asyncio.timeout(2):
            seen = [await other.recv() for _ in range(3)]
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await other.recv()
    assert [e["data"]["status"]["exec_info"]["queue_remaining"] for e in seen] == [1, 1, 0]


async def test_ws_images_without_preview_metadata_match_recording(comfy: ComfyClient) -> None:
    async with greeted_events(comfy, "client-w") as events:
        _, seen = await run_prompt(comfy, events, ws_image_graph(unique_color()))
    assert [event_type(e) for e in seen] == recorded_types("ws_ws_image.json")
    frames = [e for e in seen if isinstance(e, BinaryEvent)]
    assert all(f.event_type == BinaryEventType.PREVIEW_IMAGE for f in frames)
    assert frames[0].image_type == "image/png" and png_size(frames[0].image or b"") == (32, 32)


async def test_ws_images_with_preview_metadata(comfy: ComfyClient) -> None:
    flags = {"supports_preview_metadata": True}
    async with comfy.connect_events("client-m", feature_flags=flags) as events:
        await events.recv()  # status
        answer = await events.recv()
        assert answer == {
            "type": "feature_flags",
            "data": {"supports_preview_metadata": True, "max_upload_size": 104857600},
        }
        queued, seen = await run_prompt(comfy, events, ws_image_graph(unique_color()))
    types = [event_type(e) for e in seen]
    first = types.index("binary4")
    assert types[first - 1 : first + 2] == ["progress_state", "binary4", "progress"]
    frame = next(e for e in seen if isinstance(e, BinaryEvent))
    assert frame.metadata["prompt_id"] == queued["prompt_id"] and frame.metadata["node_id"] == "2"
    assert frame.image_type == "image/png" and (frame.image or b"").startswith(b"\x89PNG")


async def test_interrupt_stops_at_the_next_node() -> None:
    async with run_fake_comfyui(job_seconds=1.6) as fake, ComfyClient(fake.url) as comfy:
        async with greeted_events(comfy, "client-i") as events:
            queued = await comfy.queue_prompt(blur_graph(unique_color(), 64, 6), "client-i")
            seen = await until_executing(events, "10")
            await comfy.interrupt()
            seen += await collect(events, queued["prompt_id"])
        entry = (await comfy.history(queued["prompt_id"]))[queued["prompt_id"]]
    assert [event_type(e) for e in seen] == recorded_types("ws_slow_interrupt.json")
    interrupted = next(e for e in seen if event_type(e) == "execution_interrupted")["data"]
    assert (interrupted["node_id"], interrupted["executed"]) == ("11", ["1", "10"])
    assert entry["status"]["status_str"] == "error" and entry["outputs"] == {}


async def test_interrupt_of_another_prompt_is_ignored() -> None:
    async with (
        run_fake_comfyui(job_seconds=0.3) as fake,
        ComfyClient(fake.url) as comfy,
        greeted_events(comfy, "client-j") as events,
    ):
        queued = await comfy.queue_prompt(invert_graph(unique_color()), "client-j")
        await comfy.interrupt("some-other-prompt")
        seen = await collect(events, queued["prompt_id"])
    assert "execution_success" in [event_type(e) for e in seen]


async def test_queue_fifo_front_and_delete() -> None:
    async with run_fake_comfyui(job_seconds=0.4) as fake, ComfyClient(fake.url) as comfy:
        first = await comfy.queue_prompt(invert_graph(unique_color()), "q")
        second = await comfy.queue_prompt(invert_graph(unique_color()), "q")
        urgent = await comfy.queue_prompt(invert_graph(unique_color()), "q", prompt_id="urgent", front=True)
        await asyncio.sleep(0.05)
        queue = await comfy.get_queue()
        assert [item[1] for item in queue["queue_running"]] == [first["prompt_id"]]
        assert [item[1] for item in queue["queue_pending"]] == ["urgent", second["prompt_id"]]
        assert urgent["number"] == -2
        assert await comfy.get_prompt_info() == {"exec_info": {"queue_remaining": 3}}
        await comfy.delete_queued([second["prompt_id"]])
        assert [item[1] for item in (await comfy.get_queue())["queue_pending"]] == ["urgent"]
        await comfy.clear_queue()
        assert (await comfy.get_queue())["queue_pending"] == []


async def test_free_is_recorded_and_drops_the_cache(fake: FakeComfyUI, comfy: ComfyClient) -> None:
    graph = invert_graph(unique_color())
    async with greeted_events(comfy, "client-f") as events:
        await run_prompt(comfy, events, graph)
        assert await comfy.free(unload_models=True, free_memory=True) is None
        await asyncio.sleep(0.05)
        _, again = await run_prompt(comfy, events, graph)
    assert [c.body for c in fake.calls_to("/free", "POST")] == [{"unload_models": True, "free_memory": True}]
    cached = next(e for e in again if event_type(e) == "execution_cached")
    assert cached["data"]["nodes"] == []


async def test_inspection_route_lists_calls(fake: FakeComfyUI, comfy: ComfyClient) -> None:
    await comfy.free()
    async with httpx.AsyncClient() as http:
        calls = (await http.get(fake.url + "/__fake__/calls")).json()
    assert [(c["method"], c["route"], c["body"]) for c in calls] == [
        ("POST", "/free", {"unload_models": True, "free_memory": False})
    ]


# --- validation and runtime errors -----------------------------------------------------------


async def test_unknown_node_is_invalid_prompt(comfy: ComfyClient) -> None:
    with pytest.raises(ComfyRequestError) as caught:
        await comfy.queue_prompt({"1": {"class_type": "NoSuchNode", "inputs": {}}}, "c")
    error = caught.value
    assert (error.status, error.error_type) == (400, "invalid_prompt")
    assert error.message == "Cannot execute because node NoSuchNode does not exist."
    assert error.body["error"]["details"] == "Node ID '#1'"


async def test_graph_without_outputs(comfy: ComfyClient) -> None:
    with pytest.raises(ComfyRequestError) as caught:
        await comfy.queue_prompt({"1": invert_graph(1)["1"]}, "c")
    assert caught.value.error_type == "prompt_no_outputs"


async def test_value_out_of_range_names_the_node(comfy: ComfyClient) -> None:
    graph = invert_graph(1)
    graph["1"]["inputs"]["width"] = 0
    with pytest.raises(ComfyRequestError) as caught:
        await comfy.queue_prompt(graph, "c")
    error = caught.value
    assert error.error_type == "prompt_outputs_failed_validation"
    assert error.node_errors["1"]["errors"][0]["type"] == "value_smaller_than_min"
    assert sorted(error.node_errors["1"]["dependent_outputs"]) == ["3", "4"]
    assert "node 1: Value 0 smaller than min of 1 (width)" in error.message


async def test_no_prompt_and_non_json_bodies(fake: FakeComfyUI) -> None:
    async with httpx.AsyncClient(base_url=fake.url) as http:
        missing = await http.post("/prompt", json={"client_id": "x"})
        garbage = await http.post("/prompt", content=b"{not json")
    assert missing.status_code == 400 and missing.json()["error"]["type"] == "no_prompt"
    assert garbage.status_code == 500 and garbage.text.startswith("500 Internal Server Error")


async def test_upload_renames_and_load_image_errors_at_run_time(comfy: ComfyClient) -> None:
    first = await comfy.upload_image(b"not a png", "bad.png", subfolder="t")
    renamed = await comfy.upload_image(b"other text", "bad.png", subfolder="t")
    same = await comfy.upload_image(b"not a png", "bad.png", subfolder="t")
    assert first == {"name": "bad.png", "subfolder": "t", "type": "input"}
    assert (renamed["name"], same["name"]) == ("bad (1).png", "bad.png")
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "t/bad.png"}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    async with greeted_events(comfy, "client-e") as events:
        queued, seen = await run_prompt(comfy, events, graph)
    types = [event_type(e) for e in seen]
    assert types[-4:] == ["executing", "execution_error", "status", "executing"]
    error = seen[-3]["data"]
    assert (error["node_type"], error["exception_type"]) == ("LoadImage", "PIL.UnidentifiedImageError")
    entry = (await comfy.history(queued["prompt_id"]))[queued["prompt_id"]]
    assert entry["status"]["messages"][-1][0] == "execution_error"


async def test_uploaded_png_loads(comfy: ComfyClient) -> None:
    await comfy.upload_image(encode_png(8, 4, 0), "small.png", overwrite=True)
    assert "small.png" in (await comfy.object_info("LoadImage"))["LoadImage"]["input"]["required"]["image"][0]
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "small.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "loaded"}},
    }
    async with greeted_events(comfy, "client-l") as events:
        _, seen = await run_prompt(comfy, events, graph)
    assert "execution_success" in [event_type(e) for e in seen]
    assert png_size(await comfy.view("loaded_00001_.png")) == (8, 4)


async def test_view_of_a_missing_file(comfy: ComfyClient) -> None:
    with pytest.raises(ComfyRequestError) as caught:
        await comfy.view("nope.png")
    assert caught.value.status == 404


# --- failures: every fault mode and library error --------------------------------------------


async def test_connection_refused() -> None:
    async with ComfyClient(f"http://127.0.0.1:{free_port()}", timeout=5) as comfy:
        with pytest.raises(ComfyUnreachable) as caught:
            await comfy.system_stats()
        assert caught.value.message == REFUSED_MESSAGE
        with pytest.raises(ComfyUnreachable, match="Connection refused"):
            await comfy.connect_events("x")


async def test_unknown_host() -> None:
    async with ComfyClient("http://no-such-host.invalid:8188", timeout=10) as comfy:
        with pytest.raises(ComfyUnreachable, match="Unknown host"):
            await comfy.features()


async def test_hang_times_out_in_time() -> None:
    async with run_fake_comfyui(fault="hang") as fake, ComfyClient(fake.url, timeout=0.5) as comfy:
        started = time.monotonic()
        with pytest.raises(ComfyTimeout) as caught:
            await comfy.object_info()
        assert time.monotonic() - started < 2
        assert caught.value.message == "The backend did not answer within 0.5 s."
        with pytest.raises(ComfyTimeout):
            await comfy.connect_events("x")
        assert fake.calls == []


async def test_garbage_is_a_protocol_error() -> None:
    async with run_fake_comfyui(fault="garbage") as fake, ComfyClient(fake.url, timeout=5) as comfy:
        with pytest.raises(ComfyProtocolError, match="HTML"):
            await comfy.system_stats()
        async with comfy.connect_events("x") as events:
            with pytest.raises(ComfyProtocolError, match="not JSON"):
                await events.recv()


async def test_closed_socket_is_unreachable() -> None:
    async with run_fake_comfyui(fault="close") as fake, ComfyClient(fake.url, timeout=5) as comfy:
        with pytest.raises(ComfyUnreachable, match="closed the connection"):
            await comfy.features()


async def test_fault_can_be_switched_and_healed(fake: FakeComfyUI, comfy: ComfyClient) -> None:
    fake.set_fault("close")
    with pytest.raises(ComfyUnreachable):
        await comfy.features()
    fake.set_fault(None)
    assert (await comfy.features())["supports_preview_metadata"] is True


async def test_crash_during_a_prompt() -> None:
    async with run_fake_comfyui(crash_after=2) as fake, ComfyClient(fake.url, timeout=5) as comfy:
        async with greeted_events(comfy, "client-c") as events:
            await run_prompt(comfy, events, invert_graph(unique_color()))
            await comfy.queue_prompt(invert_graph(unique_color()), "client-c")
            with pytest.raises(ComfyUnreachable, match="websocket connection to the backend was lost"):
                async with asyncio.timeout(5):
                    while True:
                        await events.recv()
        assert fake.crashed.is_set()
        with pytest.raises(ComfyUnreachable, match="Connection refused"):
            await comfy.features()


async def test_slow_object_info_times_out_alone() -> None:
    async with run_fake_comfyui(slow_object_info=3) as fake, ComfyClient(fake.url, timeout=0.5) as comfy:
        assert (await comfy.system_stats())["system"]["os"] == "posix"
        with pytest.raises(ComfyTimeout):
            await comfy.object_info()


async def test_oversized_json_answers_are_refused(fake: FakeComfyUI) -> None:
    async with ComfyClient(fake.url, max_json_bytes=10_000) as comfy:
        with pytest.raises(ComfyProtocolError, match="too large"):
            await comfy.object_info()


async def test_oversized_stream_without_length_is_cut_off() -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"[" + b"0," * 500

    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body()))
    async with ComfyClient("http://comfy", transport=transport, max_json_bytes=10_000) as comfy:
        with pytest.raises(ComfyProtocolError, match="larger than"):
            await comfy.models()


async def test_trickling_answer_hits_the_whole_call_timeout() -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(50):
            await asyncio.sleep(0.1)
            yield b" "

    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body()))
    async with ComfyClient("http://comfy", transport=transport, timeout=0.5) as comfy:
        started = time.monotonic()
        with pytest.raises(ComfyTimeout):
            await comfy.features()
        assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("status", "content", "call", "error", "words"),
    [
        (200, b"[1, 2]", "system_stats", ComfyProtocolError, "unexpected shape"),
        (200, b'{"number": 1}', "queue", ComfyProtocolError, "without a prompt_id"),
        (200, b"\xff\xfe", "features", ComfyProtocolError, "not JSON"),
        (500, b"500 Internal Server Error\n\nServer got itself in trouble", "features", ComfyRequestError, "HTTP 500"),
        (403, b'{"error": "forbidden"}', "features", ComfyRequestError, "forbidden"),
        (302, b"", "features", ComfyProtocolError, "redirect"),
    ],
)
async def test_unexpected_answers(status: int, content: bytes, call: str, error: type[ComfyError], words: str) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=content))
    async with ComfyClient("http://comfy", transport=transport) as comfy:
        with pytest.raises(error, match=words):
            if call == "queue":
                await comfy.queue_prompt({}, "c")
            else:
                await getattr(comfy, call)()


async def test_request_error_keeps_status_and_text_body() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(502, content=b"Bad gateway\nfrom proxy"))
    async with ComfyClient("http://comfy", transport=transport) as comfy:
        with pytest.raises(ComfyRequestError) as caught:
            await comfy.features()
    assert (caught.value.status, caught.value.body, caught.value.error_type) == (502, "Bad gateway\nfrom proxy", None)
    assert caught.value.message == "The backend answered HTTP 502: Bad gateway"


async def test_iteration_ends_when_we_close_the_socket(comfy: ComfyClient) -> None:
    events = await comfy.connect_events("client-x")
    assert event_type(await events.recv()) == "status"
    await events.aclose()
    assert [event async for event in events] == []


async def test_server_shutdown_is_unreachable() -> None:
    async with (
        run_fake_comfyui() as fake,
        ComfyClient(fake.url) as comfy,
        greeted_events(comfy, "client-y") as events,
    ):
        await fake.stop()
        with pytest.raises(ComfyUnreachable):
            await events.recv()


async def test_events_must_be_connected_first(comfy: ComfyClient) -> None:
    with pytest.raises(RuntimeError, match="not connected"):
        await comfy.connect_events("never").recv()


# --- frames ----------------------------------------------------------------------------------


def test_binary_frames() -> None:
    png = encode_png(2, 2, 0xFF0000)
    plain = BinaryEvent.parse((1).to_bytes(4, "big") + (2).to_bytes(4, "big") + png)
    assert (plain.image_type, plain.image, plain.metadata) == ("image/png", png, {})
    meta = json.dumps({"node_id": "2", "image_type": "image/png"}).encode()
    framed = BinaryEvent.parse((4).to_bytes(4, "big") + len(meta).to_bytes(4, "big") + meta + png)
    assert (framed.metadata["node_id"], framed.image_type, framed.image) == ("2", "image/png", png)
    other = BinaryEvent.parse((3).to_bytes(4, "big") + b"text")
    assert (other.image, other.image_type) == (None, None)
    with pytest.raises(ComfyProtocolError, match="too short"):
        BinaryEvent.parse(b"\x00\x01")


@pytest.mark.parametrize("text", ["not json", "[1]", '{"data": {}}'])
def test_text_frames_must_be_typed_json(text: str) -> None:
    with pytest.raises(ComfyProtocolError):
        parse_text_event(text)


@pytest.mark.parametrize(("text", "kind"), [
    (json.dumps({"type": "status", "data": {"sid": "x"}}), "status"),
    (json.dumps({"type": 'quo"te', "data": {}}), None),  # escaped: only parsing tells
    (json.dumps({"data": {}, "type": "status"}), None),  # not written as ComfyUI writes
    ('{"type": "', None), ("not json", None),
])
def test_the_type_of_a_frame_is_read_without_parsing_it(text: str, kind: str | None) -> None:
    assert peek_type(text) == kind


async def test_frames_come_as_they_were_sent(comfy: ComfyClient) -> None:
    async with comfy.connect_events("raw-frames") as events:
        greeting = await events.recv_frame()
        assert isinstance(greeting, str) and peek_type(greeting) == "status"
        assert parse_text_event(greeting)["data"]["sid"] == "raw-frames"


# --- the fake as its own process -------------------------------------------------------------


async def test_fake_runs_as_a_process_and_crashes_on_cue() -> None:
    port = free_port()
    args = ["-m", "swarmkeeper_doubles.fake_comfyui", "--port", str(port), "--fault", "crash_after=1"]
    process = await asyncio.create_subprocess_exec(sys.executable, *args, stderr=asyncio.subprocess.DEVNULL)
    try:
        async with ComfyClient(f"http://127.0.0.1:{port}", timeout=5) as comfy:
            async with asyncio.timeout(20):
                while True:
                    try:
                        await comfy.system_stats()
                        break
                    except ComfyUnreachable:
                        await asyncio.sleep(0.1)
            await comfy.queue_prompt(invert_graph(1), "p")
        async with asyncio.timeout(10):
            assert await process.wait() == 1
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
