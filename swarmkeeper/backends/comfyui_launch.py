"""ComfyUI's command line for a self-started backend, from its settings (reference §9.3):
``<ExtraArgs> --port <PORT> <automatic args>``, the automatic ones left out with
DisableInternalArgs."""

from __future__ import annotations

import shlex
from pathlib import Path

from swarmkeeper.backends.comfyui_selfstart_settings import ComfyUISelfStartSettings
from swarmkeeper.process.launch import LaunchError

#: The ComfyUI frontend release SwarmUI last validated (its ``SwarmValidatedFrontendVersion``).
SWARM_VALIDATED_FRONTEND = "1.25.10"
#: FrontendVersion → ``--front-end-version`` value (``None`` adds nothing: ComfyUI's own).
FRONTENDS: dict[str, str] = {
    "Latest": "Comfy-Org/ComfyUI_frontend@latest",
    "LatestSwarmValidated": f"Comfy-Org/ComfyUI_frontend@v{SWARM_VALIDATED_FRONTEND}",
    "Legacy": "Comfy-Org/ComfyUI_legacy_frontend@latest",
}
#: EnablePreviews → ``--preview-method`` value (``false`` adds nothing).
PREVIEW_METHODS: dict[str, str] = {"true": "latent2rgb", "taesd": "taesd"}


def extra_args(text: str, port: int) -> list[str]:
    """ExtraArgs split as a shell would (quotes kept together), ``{PORT}`` replaced by the port."""
    try:
        return shlex.split(text.replace("{PORT}", str(port)))
    except ValueError as error:
        raise LaunchError(f"ExtraArgs setting could not be read ({error}): {text[:200]!r}") from None


def internal_args(settings: ComfyUISelfStartSettings, temp_dir: Path) -> list[str]:
    """What swarmkeeper adds unless DisableInternalArgs: a temp folder of its own (ComfyUI empties
    its temp folder at start, so instances must not share one), previews, the frontend."""
    args = ["--temp-directory", str(temp_dir)]
    preview = PREVIEW_METHODS.get(settings.EnablePreviews.strip().lower())
    if preview is not None:
        args += ["--preview-method", preview]
    frontend = FRONTENDS.get(settings.FrontendVersion.strip())
    if frontend is not None:
        args += ["--front-end-version", frontend]
    return args


def comfy_args(settings: ComfyUISelfStartSettings, port: int, temp_dir: Path) -> list[str]:
    """The arguments after ``main.py`` (or after the ``.sh`` script)."""
    args = [*extra_args(settings.ExtraArgs, port), "--port", str(port)]
    if not settings.DisableInternalArgs:
        args += internal_args(settings, temp_dir)
    return args
