"""The project's tiny SD1.5 checkpoints (scripts/make-tiny-model) and real ComfyUIs that have them.

``tiny_models`` makes two different checkpoints once per test session (generator seeds 0 and 1, about
2 s each); ``running_with_models`` starts real ComfyUIs (``scripts/comfyui-peer``, with
``--use-pytorch-cross-attention``) whose ``models/checkpoints`` link to them. Import the fixture into
a test module with ``from tests.tiny_model import tiny_models  # noqa: F401``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.comfy_peer import COMFY_ARGS, ROOT, RealComfyUI, Starting, begin_start, peer, run_name
from tests.ports import free_port

MAKER = ROOT / "scripts" / "make-tiny-model"
#: Checkpoint file name -> generator seed.
SEEDS = {"tiny-a.ckpt": 0, "tiny-b.ckpt": 1}
#: Lower peak memory on the CPU (1.5 GB instead of up to 3.5 GB at 512×512).
ATTENTION = ("--use-pytorch-cross-attention",)


@dataclass(frozen=True)
class TinyModels:
    """Checkpoint files by name."""

    files: Mapping[str, Path]

    @property
    def names(self) -> list[str]:
        return sorted(self.files)


def make_tiny_model(out: Path, seed: int) -> Path:
    done = subprocess.run([str(MAKER), str(out), "--seed", str(seed)], capture_output=True, text=True, timeout=300,
                          check=False)
    if done.returncode != 0:
        pytest.fail(f"scripts/make-tiny-model failed:\n{done.stderr[-3000:]}")
    return out


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    folder = tmp_path_factory.mktemp("tiny-models")
    return TinyModels({name: make_tiny_model(folder / name, seed) for name, seed in SEEDS.items()})


def begin_with_models(port: int, models: TinyModels) -> Starting:
    """Start one real ComfyUI with the checkpoints linked in, without waiting for it."""
    name = run_name(port)
    checkpoints = Path(peer("path", "--run-dir").stdout.strip()) / name / "base" / "models" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    for file_name, path in models.files.items():
        (checkpoints / file_name).symlink_to(path)
    return begin_start(name, port, *COMFY_ARGS, *ATTENTION)


def running_with_models(count: int, models: TinyModels) -> Iterator[list[RealComfyUI]]:
    """``count`` real ComfyUIs with the checkpoints, started side by side; stopped at the end."""
    starts: list[Starting] = []
    try:
        for _ in range(count):
            starts.append(begin_with_models(free_port(), models))
        yield [starting.wait() for starting in starts]
    finally:
        for starting in starts:
            starting.stop()


def checkpoint_loads(comfy: RealComfyUI) -> int:
    """How many times this ComfyUI has read a checkpoint from disk (it logs ``model_type`` each time)."""
    return comfy.log.read_text(errors="replace").count("model_type EPS")
