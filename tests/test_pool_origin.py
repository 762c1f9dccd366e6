"""Cross-site requests to the pool are refused on both ports and on ``/ws`` (docs/security.md, 7);
clients that send no Origin, and pages of the server's own origin or of --allowed_origins, work."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest
import websockets

from swarmkeeper.cli import build_parser
from swarmkeeper.dispatch.pool.origin import is_allowed, parse_allowed
from swarmkeeper_doubles.fake_comfyui import run_fake_comfyui
from tests.comfy_peer import invert_graph
from tests.pool_support import PoolServer, pool_server

EVIL = "http://evil.example"


@pytest.mark.parametrize(("origin", "host", "allowed"), [
    ("http://127.0.0.1:7802", "127.0.0.1:7802", ()),
    ("HTTP://LocalHost:7801", "localhost:7801", ()),
    ("https://comfy.example.com", "comfy.example.com", ()),
    ("https://comfy.example.com", "comfy.example.com:443", ()),
    ("https://127.0.0.1:7802", "127.0.0.1:7802", ()),  # behind a TLS proxy: the host and port decide
    ("http://127.0.0.1:3000", "127.0.0.1:7802", ("http://127.0.0.1:3000",)),
    ("https://app.example", "10.0.0.5:7802", ("http://x.example", "https://app.example:443")),
])
def test_the_servers_own_origin_and_allowed_ones_pass(origin: str, host: str, allowed: tuple[str, ...]) -> None:
    assert is_allowed(origin, host, allowed)


@pytest.mark.parametrize(("origin", "host"), [
    (EVIL, "127.0.0.1:7802"), ("http://127.0.0.1:7801", "127.0.0.1:7802"), ("http://localhost:7802", "127.0.0.1:7802"),
    ("null", "127.0.0.1:7802"), ("", "127.0.0.1:7802"),
    ("http://127.0.0.1:7802", ""), ("http://[::1", "[::1]:7802"), ("http://evil.example/page", "evil.example"),
])
def test_any_other_origin_is_refused(origin: str, host: str) -> None:
    assert not is_allowed(origin, host, ("http://127.0.0.1:3000",))


def test_the_allowed_origins_flag_takes_a_comma_separated_list() -> None:
    args = build_parser().parse_args(["serve", "--allowed_origins", "https://a.example, http://10.0.0.5:8188,"])
    assert args.allowed_origins == ("https://a.example", "http://10.0.0.5:8188")
    assert build_parser().parse_args(["serve"]).allowed_origins == ()
    with pytest.raises(ValueError, match=r"'a\.example' is not an origin"):
        parse_allowed("https://ok.example,a.example")


def bases(pool: PoolServer) -> list[str]:
    return [pool.comfy_url, f"{pool.url}/ComfyBackendDirect"]


async def test_a_request_from_another_origin_is_refused_on_both_ports(data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.01) as fake, pool_server(data_dir, [fake.url]) as pool:
        body = httpx.Request("POST", "/", json={"prompt": invert_graph(7)}).content
        for base in bases(pool):
            async with httpx.AsyncClient(base_url=base, timeout=30, headers={"Origin": EVIL}) as http:
                for method, path, content in (("POST", "/prompt", body), ("POST", "/api/prompt", body),
                                              ("POST", "/interrupt", b""), ("POST", "/queue", b'{"clear": true}'),
                                              ("POST", "/free", b'{"unload_models": true}'),
                                              ("GET", "/queue", b""), ("GET", "/view?filename=x.png", b"")):
                    answer = await http.request(method, path, content=content,
                                                headers={"Content-Type": "text/plain"})
                    assert answer.status_code == 403, (base, path)
        assert fake.calls_to("/prompt", "POST") == [] and fake.calls_to("/free") == []
        assert pool.services.dispatch.pool.jobs == {}


async def test_the_servers_own_origin_no_origin_and_allowed_origins_work(data_dir: Path) -> None:
    async with run_fake_comfyui(job_seconds=0.01) as fake, pool_server(data_dir, [fake.url]) as pool:
        services = pool.services
        services.config = dataclasses.replace(services.config, allowed_origins=("https://app.example",))
        for base in bases(pool):
            own = "http://" + base.split("://")[1].split("/")[0]
            for headers in ({"Origin": own}, {}, {"Origin": "https://app.example"}):
                async with httpx.AsyncClient(base_url=base, timeout=30, headers=headers) as http:
                    answer = await http.post("/prompt", json={"prompt": invert_graph(8)})
                    assert answer.status_code == 200, (base, headers, answer.text)
        assert len(fake.calls_to("/prompt", "POST")) >= 1


async def test_the_event_socket_refuses_another_origin(data_dir: Path) -> None:
    async with run_fake_comfyui() as fake, pool_server(data_dir, [fake.url]) as pool:
        for base in bases(pool):
            url = base.replace("http://", "ws://") + "/ws?clientId=evil"
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(url, origin=websockets.Origin(EVIL)):
                    pass
            assert refused.value.response.status_code == 403
            own = websockets.Origin("http://" + base.split("://")[1].split("/")[0])
            for origin in (own, None):
                async with websockets.connect(url, origin=origin) as socket:
                    assert '"sid": "evil"' in str(await socket.recv())
