"""AutoUpdate and UpdateManagedNodes: ``git pull`` before a self-started ComfyUI launches.

``true`` pulls, ``aggressive`` pulls with ``--autostash`` (local changes are stashed and put
back), ``false`` does nothing. A folder is pulled only when it is itself a git checkout (it holds
``.git``): a ComfyUI folder inside some other repository is never pulled, and the log says plainly
that the update was skipped. swarmkeeper does not install Python packages (SwarmUI also pip-installs
ComfyUI's requirements). A failed pull is logged and the launch goes on, as in SwarmUI.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from swarmkeeper.process.command import run_command

#: Seconds a pull may take before it is stopped.
PULL_TIMEOUT = 300.0
PULL_MODES = ("true", "aggressive")


def wants_update(auto_update: str, update_nodes: str) -> bool:
    return any(mode.strip().lower() in PULL_MODES for mode in (auto_update, update_nodes))


def is_git_checkout(folder: Path) -> bool:
    return (folder / ".git").exists()


def managed_node_folders(comfy_folder: Path) -> list[Path]:
    """The git checkouts among ComfyUI's ``custom_nodes`` folders (swarmkeeper's managed nodes)."""
    nodes = comfy_folder / "custom_nodes"
    if not nodes.is_dir():
        return []
    return sorted(folder for folder in nodes.iterdir() if folder.is_dir() and is_git_checkout(folder))


async def git_pull(folder: Path, mode: str, log: logging.Logger, what: str) -> bool:
    """Pull ``folder``; True if git says it worked."""
    if not is_git_checkout(folder):
        log.info("%s: update skipped, %s is not a git checkout", what, folder)
        return False
    argv = ["git", "pull", "--autostash"] if mode == "aggressive" else ["git", "pull"]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # never wait for a password nobody will type
    result = await run_command(argv, folder, timeout=PULL_TIMEOUT, env=env)
    level = logging.INFO if result.ok else logging.WARNING
    log.log(level, "%s: %s in %s %s: %s", what, " ".join(argv), folder,
            "done" if result.ok else f"failed (exit {result.returncode})", result.output or "(no output)")
    return result.ok


async def update_before_launch(auto_update: str, update_nodes: str, comfy_folder: Path, log: logging.Logger) -> None:
    """Run the updates the two settings ask for."""
    mode = auto_update.strip().lower()
    if mode in PULL_MODES:
        await git_pull(comfy_folder, mode, log, "AutoUpdate")
    mode = update_nodes.strip().lower()
    if mode in PULL_MODES:
        folders = managed_node_folders(comfy_folder)
        if not folders:
            log.info("UpdateManagedNodes: update skipped, no git checkouts in %s", comfy_folder / "custom_nodes")
        for folder in folders:
            await git_pull(folder, mode, log, "UpdateManagedNodes")
