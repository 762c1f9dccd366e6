"""The Ray provider's settings as it uses them: read and checked once, with a clear reason for each
value that cannot work (the settings themselves are declared in autoscale.py, with the type's)."""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from typing import Any

#: Seconds each retry of a new worker allows (SwarmUI's DoRetries unit).
SECONDS_PER_RETRY = 5.0


def parse_resources(text: str) -> dict[str, float]:
    """``RayResources``: a JSON object (``{"A100": 1}``) or ``name=amount`` pairs separated by commas
    or newlines. ValueError with the reason."""
    text = text.strip()
    if not text:
        return {}
    raw: Any
    if text.startswith(("{", "[")):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not valid JSON ({error.msg})") from None
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
    else:
        raw = {}
        for part in text.replace("\n", ",").split(","):
            if not part.strip():
                continue
            name, sep, amount = part.partition("=")
            if not sep:
                raise ValueError(f"'{part.strip()[:80]}' is not name=amount")
            raw[name.strip()] = amount.strip()
    resources = {}
    for name, amount in raw.items():
        if not str(name) or str(name) in ("CPU", "GPU"):
            raise ValueError(f"'{name}' cannot be a custom resource (use CPUsPerWorker, GPUsPerWorker)")
        try:
            value = float(amount)
        except (TypeError, ValueError):
            raise ValueError(f"the amount of '{name}' is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"the amount of '{name}' must be 0 or more")
        resources[str(name)] = value
    return resources


def parse_command(text: str) -> list[str]:
    """``WorkerCommand`` as an argument list (shell quoting rules, no shell). ValueError."""
    try:
        argv = shlex.split(text)
    except ValueError as error:
        raise ValueError(f"cannot be read ({error})") from None
    if not argv:
        raise ValueError("is empty")
    return argv


@dataclass(frozen=True)
class RayOptions:
    address: str = ""
    gpus: float = 1.0
    cpus: float = 1.0
    resources_text: str = ""
    command: str = "python main.py --listen {host} --port {port}"
    folder: str = ""
    start_seconds: float = 120.0
    keep: bool = False

    def problem(self) -> str | None:
        """Why these settings cannot work, or None."""
        for name, value in (("GPUsPerWorker", self.gpus), ("CPUsPerWorker", self.cpus)):
            if not math.isfinite(value) or value < 0:
                return f"{name} must be 0 or more (it is {value:g})."
        if self.gpus > 1 and not self.gpus.is_integer():
            return f"GPUsPerWorker above 1 must be a whole number (Ray's rule; it is {self.gpus:g})."
        try:
            parse_resources(self.resources_text)
        except ValueError as error:
            return f"RayResources: {error}."
        try:
            parse_command(self.command)
        except ValueError as error:
            return f"WorkerCommand {error}."
        return None

    @property
    def retries(self) -> int:
        return max(1, math.ceil(self.start_seconds / SECONDS_PER_RETRY))

    def request(self) -> dict[str, Any]:
        """What the driver's ``launch`` takes (checked settings only)."""
        return {"gpus": self.gpus, "cpus": self.cpus, "resources": parse_resources(self.resources_text),
                "argv": parse_command(self.command), "folder": self.folder.strip(), "env": {}}
