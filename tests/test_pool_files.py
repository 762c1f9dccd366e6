"""Files through the pool run nothing on the server's origin (docs/security.md, 1): ``/view``
sends a media type only for content it has checked, else a download, always with nosniff and a
sandbox; an upload that is not the image its name says reaches no backend; bodies are capped."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from swarmkeeper.dispatch.pool.media import media_type, upload_problem
from swarmkeeper.services import Services
from swarmkeeper_doubles.fake_comfyui import run_fake_comfyui
from tests.comfy_peer import invert_graph
from tests.pool_support import pool_server

SCRIPT = b"<script>fetch('/API/AdminSetUserRole')</script>"
POLYGLOT_GIF = b"GIF89a" + SCRIPT
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def image_bytes(fmt: str, size: tuple[int, int] = (8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 60)).save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "kind"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"),
                                           ("WEBP", "image/webp"), ("BMP", "image/bmp")])
def test_an_image_is_shown_as_the_format_its_content_is(fmt: str, kind: str) -> None:
    assert media_type(image_bytes(fmt)) == kind


@pytest.mark.parametrize("data", [POLYGLOT_GIF, SVG, b"<!DOCTYPE html><html>" + SCRIPT, b"%PDF-1.7\n",
                                  b"\x89PNG\r\n\x1a\n" + SCRIPT, image_bytes("PNG")[:40], image_bytes("TIFF"), b""])
def test_anything_else_is_a_download(data: bytes) -> None:
    assert media_type(data) is None


def test_video_and_audio_containers_are_shown_as_media() -> None:
    assert media_type(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00") == "video/mp4"
    assert media_type(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm") == "video/webm"
    assert media_type(b"fLaC\x00\x00\x00\x22") == "audio/flac"
    assert media_type(b"RIFF\x24\x00\x00\x00WAVEfmt ") == "audio/wav"


@pytest.mark.parametrize(("data", "name", "reason"), [
    (POLYGLOT_GIF, "cat.html", "is not an image file name"),
    (POLYGLOT_GIF, "cat.gif", "does not decode as GIF"),
    (SVG, "cat.svg", "is not an image file name"),
    (image_bytes("GIF"), "cat.png", "is a GIF image, not the PNG its name says"),
    (image_bytes("PNG")[:-30], "cut.png", "does not decode as PNG"),
    (image_bytes("PNG"), "noextension", "is not an image file name"),
])
def test_an_upload_must_decode_as_the_image_its_name_says(data: bytes, name: str, reason: str) -> None:
    assert reason in (upload_problem(data, name) or "")


@pytest.mark.parametrize(("fmt", "name"), [("PNG", "a.png"), ("JPEG", "b.JPG"), ("JPEG", "c.jpeg"),
                                           ("WEBP", "d.webp"), ("GIF", "e.gif"), ("TIFF", "f.tif")])
def test_a_real_image_may_be_uploaded(fmt: str, name: str) -> None:
    assert upload_problem(image_bytes(fmt), name) is None


async def test_view_sends_a_media_type_only_for_checked_content(data_dir: Path) -> None:
    files = {"cat.html": POLYGLOT_GIF, "cat.svg": SVG, "page.png": b"<html>" + SCRIPT, "real.gif": image_bytes("GIF"),
             "shown.png": image_bytes("PNG"), "naïve\".png": image_bytes("PNG")}
    async with run_fake_comfyui() as fake, pool_server(data_dir, [fake.url]) as pool:
        for name, data in files.items():
            fake.engine.files.upload("input", "", name, data, True)
        for base in (pool.comfy_url, f"{pool.url}/ComfyBackendDirect"):
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                answers = {name: await http.get("/view", params={"filename": name, "type": "input"})
                           for name in files}
                missing = await http.get("/view", params={"filename": "nothing.png", "type": "input"})
            for name in ("cat.html", "cat.svg", "page.png"):
                answer = answers[name]
                assert answer.status_code == 200 and answer.content == files[name]
                assert answer.headers["content-type"] == "application/octet-stream"
                assert answer.headers["content-disposition"] == f'attachment; filename="{name}"'
            assert answers["real.gif"].headers["content-type"] == "image/gif"
            assert answers["shown.png"].headers["content-disposition"] == 'filename="shown.png"'
            assert answers["naïve\".png"].headers["content-disposition"] == \
                'filename="na_ve_.png"; filename*=UTF-8\'\'na%C3%AFve%22.png'
            for answer in [*answers.values(), missing]:
                assert answer.headers["x-content-type-options"] == "nosniff"
                assert answer.headers["content-security-policy"] == "sandbox"
            assert missing.status_code == 404


async def test_an_upload_that_is_not_its_image_reaches_no_backend(data_dir: Path) -> None:
    async with run_fake_comfyui() as fake, pool_server(data_dir, [fake.url]) as pool, \
            httpx.AsyncClient(base_url=pool.comfy_url, timeout=30) as http:
        for route in ("/upload/image", "/api/upload/image"):
            for name, data in (("cat.html", POLYGLOT_GIF), ("cat.gif", POLYGLOT_GIF), ("cat.svg", SVG),
                               ("gif.png", image_bytes("GIF"))):
                answer = await http.post(route, files={"image": (name, data, "image/gif")})
                assert answer.status_code == 400 and name in answer.text, (route, name, answer.text)
        assert fake.calls_to("/upload/image") == []
        good = await http.post("/upload/image", files={"image": ("good.png", image_bytes("PNG"), "image/png")})
        assert good.json() == {"name": "good.png", "subfolder": "", "type": "input"}
        assert fake.engine.files.get("input", "", "good.png") == image_bytes("PNG")


def cap_bodies(services: Services, megabytes: int) -> None:
    network = dataclasses.replace(services.settings.network, MaxNetworkRequestMegabytes=megabytes)
    services.settings = dataclasses.replace(services.settings, network=network)


async def test_bodies_past_max_network_request_megabytes_are_refused_unread(data_dir: Path) -> None:
    async def chunks(total: int) -> AsyncIterator[bytes]:  # sent chunked: no Content-Length to refuse it by
        for _ in range(total // 65536):
            yield b" " * 65536

    async with run_fake_comfyui(job_seconds=0.01) as fake, pool_server(data_dir, [fake.url]) as pool, \
            httpx.AsyncClient(base_url=pool.comfy_url, timeout=30) as http:
        cap_bodies(pool.services, 1)
        prompt = (b'{"prompt": ' + httpx.Request("POST", "/", json=invert_graph(5)).content + b"}").ljust(900_000)
        assert (await http.post("/prompt", content=prompt)).status_code == 200
        for content in (prompt.ljust(2 * 1024 * 1024), chunks(3 * 1024 * 1024)):
            answer = await http.post("/prompt", content=content)
            assert answer.status_code == 413 and answer.text == "Request Entity Too Large"
        big = image_bytes("BMP", (1024, 1024))  # 3 MB
        upload = await http.post("/upload/image", files={"image": ("big.bmp", big, "image/bmp")})
        assert upload.status_code == 413
        assert len(fake.calls_to("/prompt", "POST")) == 1 and fake.calls_to("/upload/image") == []


def rgba_mask(size: tuple[int, int]) -> bytes:
    """Transparent on the left half, opaque on the right."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    out = io.BytesIO()
    mask.save(out, "PNG")
    return out.getvalue()


async def test_a_mask_is_applied_to_its_image_and_stored_on_every_backend(data_dir: Path) -> None:
    async with run_fake_comfyui() as one, run_fake_comfyui() as two, \
            pool_server(data_dir, [one.url, two.url]) as pool, \
            httpx.AsyncClient(base_url=pool.comfy_url, timeout=30) as http:
        await http.post("/upload/image", files={"image": ("photo.png", image_bytes("PNG"), "image/png")})

        def mask_form(ref: object, name: str = "clipspace-mask-1.png", data: bytes = rgba_mask((8, 8))) -> dict:
            return {"files": {"image": (name, data, "image/png")},
                    "data": {"original_ref": json.dumps(ref), "subfolder": "clipspace", "type": "input"}}

        saved = await http.post("/upload/mask", **mask_form({"filename": "photo.png [input]"}))
        assert saved.json() == {"name": "clipspace-mask-1.png", "subfolder": "clipspace", "type": "input"}
        for fake in (one, two):
            stored = fake.engine.files.get("input", "clipspace", "clipspace-mask-1.png")
            assert stored is not None
            with Image.open(io.BytesIO(stored)) as made:
                assert made.mode == "RGBA" and made.getpixel((0, 0)) == (200, 30, 60, 0)
                assert made.getpixel((7, 7)) == (200, 30, 60, 255)
        calls = len(one.calls_to("/upload/image"))
        photo = {"filename": "photo.png", "type": "input"}
        for form, status in ((mask_form(photo, "m.png", POLYGLOT_GIF), 400), (mask_form(photo, "m.html"), 400),
                             (mask_form({"filename": "../photo.png", "type": "input"}), 400),
                             (mask_form({"filename": "absent.png", "type": "input"}), 404),
                             (mask_form(photo, data=rgba_mask((4, 4))), 400), (mask_form("not a ref"), 400)):
            assert (await http.post("/upload/mask", **form)).status_code == status, form
        assert len(one.calls_to("/upload/image")) == calls
