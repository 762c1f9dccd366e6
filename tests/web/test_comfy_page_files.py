"""How the pool serves ComfyUI's page files: which paths are the frontend's, their types and cache
headers, the router fix for sub-paths, and the bound on the pool's cache of hashed assets. (The
page itself, from real ComfyUIs, is in test_comfy_page.py.)"""

from __future__ import annotations

import pytest
from starlette.requests import Request

from swarmkeeper.dispatch.pool.frontend import WebFiles, adjusted, frontend_path, served

ENTRY = b'router=createRouter({history:isFileProtocol?createWebHashHistory():createWebHistory(basePath),routes:[]})'


def request_for(raw_path: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": raw_path, "raw_path": raw_path.encode(),
                    "query_string": b"", "headers": []})


@pytest.mark.parametrize(("raw", "expected"), [
    ("/ComfyBackendDirect/", "/"), ("/ComfyBackendDirect", "/"), ("/ComfyBackendDirect/index.html", "/"),
    ("/ComfyBackendDirect/assets/GraphView-DVNkY3oT.js", "/assets/GraphView-DVNkY3oT.js"),
    ("/ComfyBackendDirect/materialdesignicons.min.css", "/materialdesignicons.min.css"),
    ("/ComfyBackendDirect/extensions/my%20nodes/ui.js", "/extensions/my%20nodes/ui.js"),
    ("/ComfyBackendDirect/templates/index.json", "/templates/index.json"),
    ("/ComfyBackendDirect/internal/folder_paths", None), ("/ComfyBackendDirect/api/anything", None),
    ("/ComfyBackendDirect/assets/..%2F..%2Fmain.py", None), ("/ComfyBackendDirect/assets/../main.py", None),
    ("/ComfyBackendDirect/assets/a%5Cb.js", None), ("/ComfyBackendDirect/no_extension", None),
    ("/ComfyBackendDirect/.hidden.js", None), ("/ComfyBackendDirect/assets//x.js", None),
])
def test_only_the_frontends_files_are_asked_of_a_backend(raw: str, expected: str | None) -> None:
    assert frontend_path(request_for(raw)) == expected


def test_types_and_cache_headers() -> None:
    for path, kind, cache in [("/", "text/html; charset=utf-8", "no-cache"),
                              ("/assets/lib/primevue/index.mjs", "text/javascript; charset=utf-8", "no-cache"),
                              ("/assets/GraphView-DVNkY3oT.js", "text/javascript; charset=utf-8", "immutable"),
                              ("/assets/index-BKdH1OFt.css", "text/css; charset=utf-8", "immutable"),
                              ("/fonts/inter.woff2", "font/woff2", "no-cache")]:
        answer = served(path, b"x")
        assert answer.headers["content-type"] == kind, path
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert cache in answer.headers["cache-control"], path


def test_the_entry_scripts_router_is_given_the_pages_own_path() -> None:
    fixed = adjusted("/assets/index-BKdH1OFt.js", ENTRY)
    assert b"createWebHistory(window.location.pathname)" in fixed
    assert fixed.replace(b"window.location.pathname", b"basePath") == ENTRY
    assert adjusted("/assets/GraphView-DVNkY3oT.js", ENTRY) == ENTRY  # only the entry script
    assert adjusted("/assets/index-BKdH1OFt.js", b"already fixed") == b"already fixed"


def test_the_asset_cache_is_bounded() -> None:
    files = WebFiles(cache_bytes=1000)
    for number in range(30):
        files._keep(("0@http://c", f"/assets/f{number}-ABCDEFGH.js"), b"x" * 100)
    files._keep(("0@http://c", "/assets/huge-ABCDEFGH.js"), b"x" * 200)  # over an eighth: never kept
    assert files._cached_bytes <= 1000 and len(files._cache) == 10
    assert ("0@http://c", "/assets/f29-ABCDEFGH.js") in files._cache
    assert ("0@http://c", "/assets/huge-ABCDEFGH.js") not in files._cache
