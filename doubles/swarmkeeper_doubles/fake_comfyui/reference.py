"""What the fake serves as a real ComfyUI 0.3.x does: the recorded answers in ``data``,
its feature flags, its model folders and its timestamps."""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent.parent / "data"
JSONObject = dict[str, Any]
SERVER_FEATURES: JSONObject = {"supports_preview_metadata": True, "max_upload_size": 104857600}
MODEL_FOLDERS = [  # GET /models of ComfyUI 0.3.75
    *("checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision"),
    *("style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "gligen", "upscale_models"),
    *("latent_upscale_models", "custom_nodes", "hypernetworks", "photomaker", "classifiers"),
    *("model_patches", "audio_encoders"),
]


@cache
def fixture(name: str) -> Any:
    """A recorded real-ComfyUI answer from ``data`` (parsed once)."""
    return json.loads((DATA / name).read_text())


def now_ms() -> int:
    """ComfyUI's timestamps: integer milliseconds."""
    return int(time.time() * 1000)
