"""The wheel a user installs holds the server and nothing made for tests."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_wheel(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(ROOT)], check=True, capture_output=True, timeout=300)
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
