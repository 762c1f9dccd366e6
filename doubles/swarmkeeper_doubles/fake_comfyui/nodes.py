"""What the model-free nodes compute: solid-colour images and their results."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from swarmkeeper_doubles.fake_comfyui.reference import JSONObject


@dataclass(frozen=True)
class Solid:
    """A solid-colour image: all the fake's model-free nodes need."""

    width: int
    height: int
    color: int


Batch = list[Solid]


class NodeFailure(Exception):
    """A node failed at run time (becomes ``execution_error``)."""

    def __init__(self, message: str, exception_type: str) -> None:
        super().__init__(message)
        self.message = message
        self.exception_type = exception_type


@dataclass
class NodeResult:
    """A node's outputs (by index) and its ``executed`` UI payload, if it is an output node."""

    outputs: tuple[Any, ...]
    ui: JSONObject | None = None


def first_batch(values: Mapping[str, Any]) -> Batch:
    """The first image batch among a node's resolved inputs (64×64 black if none)."""
    for value in values.values():
        if isinstance(value, list) and value and isinstance(value[0], Solid):
            return value
    return [Solid(64, 64, 0)]


def eval_empty_image(values: Mapping[str, Any]) -> tuple[Any, ...]:
    size = Solid(int(values["width"]), int(values["height"]), int(values.get("color", 0)))
    return ([size] * int(values.get("batch_size", 1)),)


def eval_invert(values: Mapping[str, Any]) -> tuple[Any, ...]:
    return ([Solid(i.width, i.height, 0xFFFFFF ^ i.color) for i in first_batch(values)],)


def eval_scale(values: Mapping[str, Any]) -> tuple[Any, ...]:
    batch = first_batch(values)
    width, height = int(values.get("width", 0)), int(values.get("height", 0))
    return ([Solid(width or i.width, height or i.height, i.color) for i in batch],)


def eval_batch(values: Mapping[str, Any]) -> tuple[Any, ...]:
    images = [v for v in values.values() if isinstance(v, list) and v and isinstance(v[0], Solid)]
    return ([i for batch in images for i in batch],)


EVALUATORS: dict[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]] = {
    "EmptyImage": eval_empty_image,
    "ImageInvert": eval_invert,
    "ImageScale": eval_scale,
    "ImageBatch": eval_batch,
}
