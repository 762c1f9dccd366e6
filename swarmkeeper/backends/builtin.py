"""The backend types swarmkeeper ships, in SwarmUI's registration order (the order
ListBackendTypes shows). They register exactly as a plug-in's types would."""

from __future__ import annotations

from typing import Any

from swarmkeeper.backends.autoscale import AUTOSCALING_TYPE
from swarmkeeper.backends.base import BackendType
from swarmkeeper.backends.comfyui_api import COMFYUI_API
from swarmkeeper.backends.comfyui_selfstart import COMFYUI_SELFSTART
from swarmkeeper.backends.swarm import SWARM_TYPE

BUILTIN_TYPES: list[BackendType[Any]] = [SWARM_TYPE, AUTOSCALING_TYPE, COMFYUI_API, COMFYUI_SELFSTART]
