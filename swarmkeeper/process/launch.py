"""What to run: checking a start script, choosing its interpreter, and its environment.

SwarmUI's rules (reference §9.3): a ``.py`` script runs with the Python of a ``venv`` folder
next to it (``<dir>/venv/bin/python3``) when there is one, with ``-s`` and the script's name,
in the script's folder; ``GPU_ID`` goes verbatim into ``CUDA_VISIBLE_DEVICES`` and friends.
swarmkeeper falls back to the Python it runs on (SwarmUI: ``python3`` from PATH), runs ``.sh``
scripts with bash (SwarmUI executes them directly, so they need the executable bit), and does
not take Windows ``.bat`` scripts.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Characters a start script path may not hold: SwarmUI's forbidden file-path characters, plus
#: the shell's remaining metacharacters (a backslash is read as a folder separator first).
FORBIDDEN_CHARACTERS = frozenset('<>:"|?*~&@;#$^`!')
SCRIPT_KINDS = (".py", ".sh")
#: Variables that would make the child's Python load our environment instead of its own.
PYTHON_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "PYTHONUSERBASE",
                    "VIRTUAL_ENV", "__PYVENV_LAUNCHER__")
GPU_VARIABLES = ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")


class LaunchError(ValueError):
    """A launch that can never work as configured; the message says what to fix."""


@dataclass(frozen=True)
class LaunchSpec:
    """One launch: the command, its folder and its whole environment."""

    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)
    #: The name its output lines carry, e.g. ``ComfyUI-3``.
    name: str = "process"
    #: Where it will answer once ready, for status reasons (e.g. ``http://127.0.0.1:7821``).
    where: str = ""
    #: A folder for its stdout and stderr files (output.py), so its output outlives this server;
    #: None: pipes.
    output_dir: Path | None = None

    def __post_init__(self) -> None:
        texts = [*self.argv, str(self.cwd), *self.env, *self.env.values()]
        if any("\x00" in text for text in texts):
            raise LaunchError(f"{self.name}: the command line or environment holds a NUL character.")


def clean_script_text(raw: str) -> str:
    """The path as SwarmUI reads it: surrounding spaces, quotes and newlines trimmed, ``\\`` as ``/``."""
    return raw.strip(" \"'\n\r\t").replace("\\", "/")


def check_start_script(raw: str, setting: str = "StartScript") -> Path:
    """The script's absolute path (relative paths are from the server's working folder), or
    LaunchError saying why it cannot be launched. ``raw`` must not be blank."""
    text = clean_script_text(raw)
    shown = text if len(text) <= 200 else text[:200] + "..."
    bad = sorted({c for c in text if c in FORBIDDEN_CHARACTERS or ord(c) < 32})
    if bad:
        shown_bad = " ".join(repr(c)[1:-1] for c in bad)
        raise LaunchError(f"{setting} '{shown}' holds characters a start script path may not have ( {shown_bad} ).")
    if not text.endswith(SCRIPT_KINDS):
        raise LaunchError(f"{setting} '{shown}' is not a .py or .sh file: point it at ComfyUI's main.py "
                          "(or a .sh script that starts it).")
    path = Path(text).absolute()
    try:
        found = path.is_file()
    except OSError as error:  # a name too long, a folder we may not read
        raise LaunchError(f"{setting} '{shown}' cannot be used: {error.strerror or error}.") from None
    if not found:
        raise LaunchError(f"{setting} '{shown}' does not exist (looked for {shown_path(path)}).")
    return path


def shown_path(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 200 else text[:200] + "..."


def venv_python(script: Path) -> Path | None:
    """``<script dir>/venv/bin/python3`` when it exists (SwarmUI's rule on Linux)."""
    candidate = script.parent / "venv" / "bin" / "python3"
    return candidate if candidate.exists() else None


def interpreter_argv(script: Path) -> list[str]:
    """The command that runs ``script``, before its own arguments."""
    if script.suffix == ".sh":
        return [shutil.which("bash") or "/bin/bash", str(script)]
    python = venv_python(script)
    return [str(python) if python is not None else sys.executable, "-s", script.name]


def child_environment(script: Path, gpu_id: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment minus Python's settings, the venv's ``bin`` first on PATH, and the GPU."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in PYTHON_VARIABLES}
    python = venv_python(script) if script.suffix == ".py" else None
    if python is not None:
        env["PATH"] = os.pathsep.join(filter(None, [str(python.parent), env.get("PATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"  # output lines arrive as they are written, not when a buffer fills
    for name in GPU_VARIABLES:
        env[name] = gpu_id
    return env


def script_spec(script: Path, args: Sequence[str], *, gpu_id: str, name: str, where: str = "",
                base_env: Mapping[str, str] | None = None) -> LaunchSpec:
    """Run ``script`` with ``args`` in its own folder, on the GPU(s) ``gpu_id``."""
    return LaunchSpec(argv=(*interpreter_argv(script), *args), cwd=script.parent,
                      env=child_environment(script, gpu_id, base_env), name=name, where=where)
