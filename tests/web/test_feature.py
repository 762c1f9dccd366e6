"""The page and its assets are served by swarmkeeper itself: nothing comes from another host, and
the page may run only its own scripts."""

from __future__ import annotations

import re

from swarmkeeper.web.feature import STATIC
from tests.servers import APIClient

#: URLs in the assets that are names, not addresses fetched (the SVG namespace).
NOT_FETCHED = {"http://www.w3.org/2000/svg"}


def referenced_assets() -> set[str]:
    """Every local file the page loads: from index.html's src/href, and the modules' imports."""
    html = (STATIC / "index.html").read_text()
    found = {ref.removeprefix("static/") for ref in re.findall(r'(?:src|href)="(static/[^"]+)"', html)}
    for script in STATIC.glob("*.js"):
        found |= set(re.findall(r"from '\./([^']+)'", script.read_text()))
    return found


async def test_the_page_is_served_at_the_root_with_a_strict_content_security_policy(app_client: APIClient) -> None:
    response = await app_client.http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="static/app.js"></script>' in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_every_asset_the_page_loads_is_served_with_its_type(app_client: APIClient) -> None:
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    assets = referenced_assets()
    assert {"app.js", "style.css", "favicon.svg", "api.js", "cards.js", "form.js", "live.js"} <= assets
    for asset in sorted(assets):
        response = await app_client.http.get(f"/static/{asset}")
        assert response.status_code == 200, asset
        assert response.headers["content-type"].startswith(types[asset[asset.rindex("."):]]), asset
        assert "content-security-policy" in response.headers


async def test_no_asset_refers_to_another_host(app_client: APIClient) -> None:
    for path in STATIC.iterdir():
        text = path.read_text()
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s'\"()]*", text)) - NOT_FETCHED
        assert not urls, f"{path.name} refers to {urls}"
        assert "@import" not in text, path.name


async def test_no_script_builds_markup_from_text(app_client: APIClient) -> None:
    """Text reaches the page only through textContent: no innerHTML, outerHTML or document.write."""
    for script in STATIC.glob("*.js"):
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script.read_text()), script


async def test_missing_and_escaping_asset_paths_are_not_found(app_client: APIClient) -> None:
    assert (await app_client.http.get("/static/missing.js")).status_code == 404
    assert (await app_client.http.get("/static/../feature.py")).status_code == 404
    assert (await app_client.http.get("/static/%2e%2e/feature.py")).status_code == 404


async def test_the_page_answers_head_and_refuses_other_methods(app_client: APIClient) -> None:
    assert (await app_client.http.head("/")).status_code == 200
    assert (await app_client.http.post("/", json={})).status_code == 405
