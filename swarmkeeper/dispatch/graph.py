"""The standard ComfyUI text-to-image graph (ComfyUI's own default workflow), from SwarmUI's basic
generation parameters. Pure: parameters in, an API-format graph out."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from swarmkeeper import dotnet

MAX_SEED = 2**63 - 1
#: What the pool's /view returns images under (ComfyUI's output folder, subfolder swarmkeeper).
OUTPUT_PREFIX = "swarmkeeper/t2i"


class ParamError(ValueError):
    """A generation parameter that cannot be used; the message is SwarmUI's style of text."""


@dataclass(frozen=True)
class T2IParams:
    """SwarmUI's basic parameters (ids as SwarmUI names them)."""

    prompt: str = ""
    negativeprompt: str = ""
    model: str = ""
    images: int = 1
    steps: int = 20
    cfgscale: float = 7.0
    seed: int = -1
    width: int = 512
    height: int = 512
    sampler: str = "euler"
    scheduler: str = "normal"

    def seed_for(self, index: int) -> int:
        """SwarmUI's seeds: a random one when -1, and each further image one higher."""
        return (self.seed + index) % (MAX_SEED + 1)

    def resolved(self) -> T2IParams:
        """With a random seed chosen when it was -1."""
        if self.seed >= 0:
            return self
        return T2IParams(**{**self.__dict__, "seed": random.randrange(0, 2**31)})


#: SwarmUI's names and ranges (T2IParamTypes): name -> (shown name, minimum, maximum).
RANGES: dict[str, tuple[str, float, float]] = {
    "images": ("Images", 1, 10_000), "steps": ("Steps", 0, 500), "seed": ("Seed", -1, MAX_SEED),
    "width": ("Width", 64, 16384), "height": ("Height", 64, 16384), "cfgscale": ("CFG Scale", 0, 100),
}
#: Text parameters as SwarmUI shows them in its errors.
NAMES = {"model": "Model", "sampler": "Sampler", "scheduler": "Scheduler"}


def invalid(name: str, detail: str) -> ParamError:
    """SwarmUI's wrapping of a parameter's validation failure (T2IParamTypes.ApplyParameter)."""
    return ParamError(f"Invalid value for parameter {name}: {detail}")


def _number(name: str, value: Any, kind: type) -> int | float:
    shown, low, high = RANGES[name]
    text = dotnet.to_text(value)
    parsed = dotnet.parse_int(text, 64) if kind is int else dotnet.parse_float(text)
    word, example = ("integer", "'0', '3', '-5'") if kind is int else ("decimal", "'0.0', '3.5', '-5.2'")
    if parsed is None:
        raise invalid(shown, f"Invalid {word} value for param {shown} - '{text[:100]}' - must be a valid {word} "
                             f"(eg {example}, etc)")
    if not low <= parsed <= high:
        bounds = f"{low:g} and {high}" if kind is float else f"{int(low)} and {int(high)}"
        raise invalid(shown, f"Invalid {word} value for param {shown} - '{text[:100]}' - must be between {bounds}")
    return parsed


def parse_params(raw: Mapping[str, Any]) -> T2IParams:
    """The parameters from a request body (case-insensitive names; unknown ones are ignored, as
    SwarmUI ignores them with a warning), with SwarmUI's ranges and error texts."""
    given = {str(key).lower(): value for key, value in raw.items()}
    values: dict[str, Any] = {}
    for name, default in T2IParams().__dict__.items():
        if name not in given or given[name] is None:
            continue
        if isinstance(default, str):
            values[name] = dotnet.to_text(given[name])
        else:
            values[name] = int(_number(name, given[name], int)) if isinstance(default, int) else \
                float(_number(name, given[name], float))
    return T2IParams(**values)


def check_choice(name: str, value: str, choices: list[str]) -> str:
    """A dropdown value (sampler, scheduler) that the backends offer, as SwarmUI checks it."""
    if value in choices:
        return value
    shown = NAMES[name]
    listed = "`, `".join(choices)
    raise invalid(shown, f"Invalid value for param {shown} - '{value[:100]}' - must be one of: `{listed}`")


def unknown_model(model: str) -> ParamError:
    return invalid("Model", f"Invalid model value for param Model - '{model[:200]}' - are you sure that model name "
                            "is correct?")


def text_to_image(params: T2IParams, checkpoint: str, index: int = 0) -> dict[str, Any]:
    """ComfyUI's default workflow for one image: checkpoint → prompts → KSampler → decode → save."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": params.width, "height": params.height, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": params.prompt, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": params.negativeprompt, "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": params.seed_for(index), "steps": params.steps, "cfg": params.cfgscale,
            "sampler_name": params.sampler, "scheduler": params.scheduler, "denoise": 1.0,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": OUTPUT_PREFIX, "images": ["8", 0]}},
    }


def checkpoint_name(model: str, known: list[str]) -> str | None:
    """The checkpoint file a SwarmUI model name means: as given, or with ``.safetensors``."""
    for candidate in (model, f"{model}.safetensors", model.replace("\\", "/")):
        if candidate in known:
            return candidate
    return None
