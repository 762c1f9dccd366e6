"""docs/architecture.md tells the truth: every top-level part of the package is on its map, and the
imports keep to the layers it draws (the import-linter contracts in pyproject.toml)."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import swarmkeeper

ROOT = Path(__file__).resolve().parent.parent
MAP = (ROOT / "docs" / "architecture.md").read_text()


def test_every_top_level_module_and_package_is_on_the_map() -> None:
    parts = [info.name + ("/" if info.ispkg else ".py") for info in pkgutil.iter_modules(swarmkeeper.__path__)]
    missing = [part for part in parts if not re.search(rf"(?m)^\s+{re.escape(part)}|[\s:]{re.escape(part)}", MAP)]
    assert parts and missing == []


def test_every_package_in_the_layers_drawing_exists() -> None:
    drawing = MAP.split("## The layers", 1)[1].split("```")[1]
    names = set(re.findall(r"[a-z_]+", drawing)) - {"entry", "points", "wiring", "features", "the", "api", "core",
                                                    "settings", "registry", "below", "it", "basics"}
    known = {info.name for info in pkgutil.iter_modules(swarmkeeper.__path__)}
    assert names - known == set()


def test_imports_keep_to_the_layers() -> None:
    # In a process of its own: lint-imports sets up logging its own way, which other tests would see.
    command = [str(Path(sys.executable).parent / "lint-imports"), "--config", str(ROOT / "pyproject.toml"),
               "--no-cache"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout


def test_dispatch_is_forbidden_every_backend_type_module() -> None:
    """The contract "Dispatch imports no backend type module" names each comfyui_* and swarm* module
    (import-linter takes no partial wildcards): a new one is added to it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["name"].startswith("Dispatch imports"))
    backends = ROOT / "swarmkeeper" / "backends"
    type_modules = {f"swarmkeeper.backends.{path.stem}" for path in backends.glob("*.py")
                    if path.stem.startswith(("comfyui_", "swarm"))}
    assert contract["source_modules"] == ["swarmkeeper.dispatch"]
    assert len(type_modules) > 10 and set(contract["forbidden_modules"]) == type_modules
