"""What both renderings need: which page a route belongs to, and its example answer as data."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from swarmkeeper.api.routes import Route

SUFFIXES = ("_routes", "_api")


def page_of(route: Route) -> str:
    """The page (and OpenAPI tag) of a route, from the module that declared it:
    ``swarmkeeper.api.backend_routes`` → ``BackendAPI``, ``swarmkeeper.models.routes`` → ``ModelsAPI``."""
    parts = (route.module or "swarmkeeper.other").split(".")
    name = parts[-1]
    if name in ("routes", "api") and len(parts) > 1:
        name = parts[-2]
    for suffix in SUFFIXES:
        name = name.removesuffix(suffix)
    return "".join(word.capitalize() for word in name.split("_") if word) + "API"


def pages(routes: Iterable[Route]) -> dict[str, list[Route]]:
    """Routes by page, pages in alphabetical order, routes in declaration order."""
    grouped: dict[str, list[Route]] = {}
    for route in routes:
        grouped.setdefault(page_of(route), []).append(route)
    return dict(sorted(grouped.items()))


def page_description(routes: list[Route]) -> str:
    """The first paragraph of the declaring module's docstring, as one line."""
    module = sys.modules.get(routes[0].module) if routes and routes[0].module else None
    doc = (module.__doc__ or "").strip() if module is not None else ""
    return " ".join(doc.split("\n\n", 1)[0].split())


def example_of(route: Route) -> Any | None:
    """The declared example answer as JSON data, when it is valid JSON (with or without the
    outer braces SwarmUI's docs leave off); None when it is prose-like (``...``, ``// or``)."""
    text = route.returns.strip()
    for candidate in ("{" + text + "}", text):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None
