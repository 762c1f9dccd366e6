"""The wheel a user installs holds the server and nothing made for tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What a checkout holds beside the package (the doubles included, to prove they stay out).
SOURCES = ("pyproject.toml", "README.md", "swarmkeeper", "doubles")


def build_wheel(out: Path) -> Path:
    """Build from a copy of the sources, so the build leaves nothing in the checkout."""
    source = out / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("swarmkeeper-*.whl")
    return wheel


def test_the_wheel_has_the_server_and_no_test_doubles(tmp_path: Path) -> None:
    wheel = zipfile.ZipFile(build_wheel(tmp_path))
    names = wheel.namelist()
    packages = {name.split("/")[0] for name in names if not name.startswith("swarmkeeper-")}
    assert packages == {"swarmkeeper"}
    assert "swarmkeeper/cli.py" in names
    assert "swarmkeeper/web/static/index.html" in names
    assert "swarmkeeper/testing/dummy_backend.py" in names  # the example of a plug-in type
    doubles = [name for name in names if "fake_comfyui" in name or "swarm_double" in name]
    assert doubles == []
    assert not [name for name in names if name.endswith(".json")]  # the recorded traffic stays behind
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "swarmkeeper = swarmkeeper.cli:main" in wheel.read(entry_points).decode()
