"""A fake ComfyUI server for tests: real HTTP and websockets on loopback, answering as ComfyUI does.

It serves what a real ComfyUI 0.3.x sends (``shared/reference/comfyui-api.md``; the recorded traffic
in ``swarmkeeper/testing/data``): the same JSON shapes, and the same websocket event sequences in
the same order, for model-free graphs (``EmptyImage`` → ``ImageInvert`` → ``SaveImage``,
``PreviewImage``, ``SaveImageWebsocket``, ``LoadImage`` of an upload). Images are solid colours
and the PNGs it serves are real ones. ``tests/test_comfyui_real.py`` runs the same prompt on both
and compares them.

Like ComfyUI it runs one prompt at a time from a FIFO queue (``front`` jumps it), sends a
prompt's events only to the socket whose ``clientId`` is the prompt's ``client_id``, broadcasts
``status``, caches node results between prompts (so an identical prompt comes back as
``execution_cached``), applies ``/free`` between prompts, and honours ``/interrupt`` at the next
node boundary. Each prompt's executed nodes share ``job_seconds`` of wall time (each sleeps until
its share ends, so the fake's own work does not make a prompt longer than that).

Faults (``FakeOptions`` / ``--fault``):

- ``hang``: connections are accepted, requests are never answered;
- ``garbage``: every route answers 200 with an HTML page (the websocket sends one non-JSON frame);
- ``close``: every connection is closed as soon as a request arrives;
- ``crash_after=N``: the server dies when the Nth prompt starts its first node (as a process it
  exits with code 1; in-process it stops listening and drops every connection);
- ``slow_object_info=S``: ``/object_info`` answers after S seconds (30 if no value is given).

``GET /__fake__/calls`` lists the requests received (not under faults' influence), ``POST
/__fake__/fault {"fault": "hang"|"garbage"|"close"|null}`` changes the fault while running.

In-process::

    async with run_fake_comfyui(job_seconds=0.05) as fake:
        ...  # fake.url, fake.calls_to("/free"), fake.set_fault("hang"), fake.engine

As a process: ``python -m swarmkeeper.testing.fake_comfyui --port 8188 [--job-seconds 0.1]
[--fault hang|garbage|close|crash_after=N|slow_object_info[=S]]``.

This file is long (one concept, a fake server, in one importable module): the graph engine,
the PNG encoder, the HTTP routes and the server runner are its sections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import heapq
import itertools
import json
import os
import random
import socket
import string
import struct
import sys
import time
import traceback
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DATA = Path(__file__).parent / "data"
JSONObject = dict[str, Any]
SERVER_FEATURES: JSONObject = {"supports_preview_metadata": True, "max_upload_size": 104857600}
MODEL_FOLDERS = [  # GET /models of ComfyUI 0.3.75
    *("checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision"),
    *("style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "gligen", "upscale_models"),
    *("latent_upscale_models", "custom_nodes", "hypernetworks", "photomaker", "classifiers"),
    *("model_patches", "audio_encoders"),
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GARBAGE_PAGE = "<!DOCTYPE html><html><body><h1>It works!</h1></body></html>"


@cache
def fixture(name: str) -> Any:
    """A recorded real-ComfyUI answer from ``testing/data`` (parsed once)."""
    return json.loads((DATA / name).read_text())


def now_ms() -> int:
    """ComfyUI's timestamps: integer milliseconds."""
    return int(time.time() * 1000)


# --- options ---------------------------------------------------------------------------------


class Fault(StrEnum):
    """Whole-server misbehaviours."""

    HANG = "hang"
    GARBAGE = "garbage"
    CLOSE = "close"


@dataclass(frozen=True)
class FakeOptions:
    """How one fake behaves. ``models`` fills ``/models/<folder>`` (e.g. ``{"checkpoints": [...]}``)."""

    job_seconds: float = 0.1
    fault: Fault | None = None
    crash_after: int | None = None
    slow_object_info: float = 0.0
    models: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.fault is not None:
            object.__setattr__(self, "fault", Fault(self.fault))
        if self.job_seconds < 0 or self.slow_object_info < 0:
            raise ValueError("job_seconds and slow_object_info must not be negative")
        if self.crash_after is not None and self.crash_after < 1:
            raise ValueError("crash_after counts prompts from 1")


def parse_fault(text: str) -> dict[str, Any]:
    """``--fault`` values as FakeOptions fields: ``hang``, ``crash_after=2``, ``slow_object_info=5``."""
    name, _, value = text.partition("=")
    if name in {f.value for f in Fault}:
        return {"fault": Fault(name)}
    if name == "crash_after":
        return {"crash_after": int(value)}
    if name == "slow_object_info":
        return {"slow_object_info": float(value or 30)}
    raise ValueError(f"unknown fault {text!r}")


# --- PNG -------------------------------------------------------------------------------------


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(width: int, height: int, color: int, text: Mapping[str, str] | None = None) -> bytes:
    """A solid-colour 8-bit RGB PNG (``color`` is 0xRRGGBB, as ComfyUI's EmptyImage takes it)."""
    row = b"\x00" + bytes(((color >> 16) & 255, (color >> 8) & 255, color & 255)) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    texts = [_png_chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode()) for k, v in (text or {}).items()]
    idat = _png_chunk(b"IDAT", zlib.compress(row * height, 6))
    return PNG_MAGIC + _png_chunk(b"IHDR", header) + b"".join(texts) + idat + _png_chunk(b"IEND", b"")


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR, or None if ``data`` is not a PNG."""
    if not data.startswith(PNG_MAGIC) or len(data) < 24:
        return None
    return struct.unpack(">II", data[16:24])


# --- graphs: validation ----------------------------------------------------------------------


def is_link(value: Any) -> bool:
    """A ``["node_id", output_index]`` input."""
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def input_specs(info: JSONObject) -> dict[str, list[Any]]:
    """Required and optional input specs of a node class."""
    inputs = info.get("input", {})
    return {**inputs.get("required", {}), **inputs.get("optional", {})}


def prompt_error(kind: str, message: str, details: str = "") -> JSONObject:
    """ComfyUI's top-level error shape."""
    return {"type": kind, "message": message, "details": details, "extra_info": {}}


def input_error(kind: str, message: str, name: str, spec: Any, value: Any, details: str = "") -> JSONObject:
    """One entry of ``node_errors[id].errors``."""
    extra = {"input_name": name, "input_config": spec, "received_value": value}
    return {"type": kind, "message": message, "details": details or name, "extra_info": extra}


def check_number(name: str, spec: list[Any], value: Any) -> JSONObject | None:
    """INT/FLOAT conversion and min/max, as ComfyUI's ``validate_inputs``."""
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    try:
        number = int(value) if kind == "INT" else float(value)
    except (TypeError, ValueError) as exc:
        message = f"Failed to convert an input value to a {kind} value"
        return input_error("invalid_input_type", message, name, spec, value, f"{name}, {value}, {exc}")
    if "min" in options and number < options["min"]:
        message = f"Value {number} smaller than min of {options['min']}"
        return input_error("value_smaller_than_min", message, name, spec, number)
    if "max" in options and number > options["max"]:
        message = f"Value {number} bigger than max of {options['max']}"
        return input_error("value_bigger_than_max", message, name, spec, number)
    return None


def combo_options(spec: list[Any]) -> list[Any] | None:
    """The allowed values of a combo input (old list style or ``COMBO``), else None."""
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        return list(spec[1].get("options", []))
    return None


class Validator:
    """ComfyUI's ``validate_prompt`` for one graph, against one ``object_info``."""

    def __init__(self, graph: JSONObject, object_info: JSONObject, inputs: set[str]) -> None:
        self.graph = graph
        self.info = object_info
        self.uploaded = inputs
        self.own_errors: dict[str, list[JSONObject]] = {}
        self.valid: dict[str, bool] = {}

    def check_classes(self) -> JSONObject | None:
        """Every node names a known class; returns the error, if any."""
        for node_id, node in self.graph.items():
            kind = node.get("class_type") if isinstance(node, dict) else None
            if kind is None:
                message = "Cannot execute because a node is missing the class_type property."
                return prompt_error("invalid_prompt", message, f"Node ID '#{node_id}'")
            if kind not in self.info:
                message = f"Cannot execute because node {kind} does not exist."
                return prompt_error("invalid_prompt", message, f"Node ID '#{node_id}'")
        return None

    def outputs(self) -> list[str]:
        """Output node ids, in prompt order."""
        return [n for n, node in self.graph.items() if self.info[node["class_type"]].get("output_node")]

    def node_ok(self, node_id: str) -> bool:
        """Validate a node and (first) its inputs; memoised."""
        if node_id not in self.valid:
            self.valid[node_id] = True  # a cycle guard; set for real below
            errors, inputs_ok = self.check_inputs(node_id)
            if errors:
                self.own_errors[node_id] = errors
            self.valid[node_id] = inputs_ok and not errors
        return self.valid[node_id]

    def check_inputs(self, node_id: str) -> tuple[list[JSONObject], bool]:
        """The node's own input errors, and whether its linked inputs are valid."""
        node = self.graph[node_id]
        info = self.info[node["class_type"]]
        values = node.get("inputs", {})
        errors: list[JSONObject] = []
        for name in info.get("input", {}).get("required", {}):
            if name not in values:
                missing = {"type": "required_input_missing", "message": "Required input is missing"}
                errors.append({**missing, "details": name, "extra_info": {"input_name": name}})
        linked_ok = True
        for name, spec in input_specs(info).items():
            if name not in values:
                continue
            value = values[name]
            if is_link(value):
                error, ok = self.check_link(name, spec, value)
                linked_ok = linked_ok and ok
            else:
                error = self.check_literal(node["class_type"], name, spec, value)
            if error is not None:
                errors.append(error)
        return errors, linked_ok

    def check_link(self, name: str, spec: list[Any], link: list[Any]) -> tuple[JSONObject | None, bool]:
        """A linked input: the source exists and gives the right type."""
        source = str(link[0])
        if source not in self.graph:
            details = f"'{source}'"
            extra = {"exception_message": details, "exception_type": "KeyError", "traceback": []}
            error = {"type": "exception_during_validation", "message": "Exception when validating node"}
            return {**error, "details": details, "extra_info": extra}, False
        outputs = self.info[self.graph[source]["class_type"]].get("output", [])
        received = outputs[link[1]] if 0 <= link[1] < len(outputs) else None
        wanted = spec[0]
        if isinstance(wanted, str) and received not in (wanted, "*") and wanted != "*":
            message = "Return type mismatch between linked nodes"
            details = f"{name}, received_type({received}) mismatch input_type({wanted})"
            extra = {"input_name": name, "input_config": spec, "received_type": received, "linked_node": link}
            return {"type": "return_type_mismatch", "message": message, "details": details, "extra_info": extra}, False
        return None, self.node_ok(source)

    def check_literal(self, kind: str, name: str, spec: list[Any], value: Any) -> JSONObject | None:
        """A constant input: numbers in range, combo values in their list, uploads present."""
        if kind == "LoadImage" and name == "image":
            if str(value).split(" [")[0] in self.uploaded:
                return None
            error = {"type": "custom_validation_failed", "message": "Custom validation failed for node"}
            return {**error, "details": f"image - Invalid image file: {value}", "extra_info": {}}
        if spec[0] in ("INT", "FLOAT"):
            return check_number(name, spec, value)
        options = combo_options(spec)
        if options is not None and value not in options:
            details = f"{name}: '{value}' not in {options}"
            return input_error("value_not_in_list", "Value not in list", name, spec, value, details)
        return None

    def node_errors(self, outputs: list[str]) -> JSONObject:
        """``node_errors`` for the failed outputs: each erring node with the outputs it breaks."""
        result: JSONObject = {}
        for node_id, errors in self.own_errors.items():
            dependents = [o for o in outputs if not self.valid.get(o, True) and self.depends(o, node_id)]
            kind = self.graph[node_id]["class_type"]
            result[node_id] = {"errors": errors, "dependent_outputs": dependents, "class_type": kind}
        return result

    def depends(self, node_id: str, on: str, seen: set[str] | None = None) -> bool:
        """True when ``node_id`` is ``on`` or consumes it, directly or not."""
        if node_id == on:
            return True
        seen = seen if seen is not None else set()
        seen.add(node_id)
        for value in self.graph.get(node_id, {}).get("inputs", {}).values():
            source = str(value[0]) if is_link(value) else None
            if source and source not in seen and self.depends(source, on, seen):
                return True
        return False


@dataclass
class Verdict:
    """The outcome of validating a prompt: its good outputs, or the 400 body."""

    outputs: list[str]
    node_errors: JSONObject
    error: JSONObject | None = None


def validate(graph: Any, object_info: JSONObject, uploaded: set[str]) -> Verdict:
    """ComfyUI's ``validate_prompt``: a 400 body, or the outputs to run (and partial errors)."""
    if not isinstance(graph, dict):
        return Verdict([], {}, prompt_error("invalid_prompt", "Prompt is not a dictionary"))
    validator = Validator(graph, object_info, uploaded)
    if (error := validator.check_classes()) is not None:
        return Verdict([], {}, error)
    outputs = validator.outputs()
    if not outputs:
        return Verdict([], {}, prompt_error("prompt_no_outputs", "Prompt has no outputs"))
    good = [o for o in outputs if validator.node_ok(o)]
    node_errors = validator.node_errors(outputs)
    if good:
        return Verdict(good, node_errors)
    details = "\n".join(f"{e['message']}: {e['details']}" for o in outputs for e in validator.own_errors.get(o, []))
    failed = prompt_error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details)
    return Verdict([], node_errors, failed)


# --- graphs: execution order and signatures --------------------------------------------------


def links_of(node: JSONObject) -> list[str]:
    """Ids of the nodes feeding ``node``, in input order."""
    return [str(v[0]) for v in node.get("inputs", {}).values() if is_link(v)]


def execution_order(graph: JSONObject, outputs: list[str], cached: set[str], is_output: set[str]) -> list[str]:
    """The order ComfyUI's ``ExecutionList`` runs nodes in.

    Outputs are added in order, each pulling its uncached inputs depth-first (a stack, as
    ``add_node``); then among ready nodes an output node goes first, then a node feeding an
    output, then one two steps from an output, else the first ready (``ux_friendly_pick_node``).
    """
    pending: dict[str, None] = {}
    for output in outputs:
        stack = [output]
        while stack:
            node_id = stack.pop()
            if node_id in pending:
                continue
            pending[node_id] = None
            stack.extend(s for s in links_of(graph[node_id]) if s not in cached)
    consumers = {n: [m for m in pending if n in links_of(graph[m])] for n in pending}
    order: list[str] = []
    while pending:
        ready = [n for n in pending if all(s not in pending for s in links_of(graph[n]))]
        pick = _friendly_pick(ready, consumers, is_output)
        order.append(pick)
        del pending[pick]
    return order


def _friendly_pick(ready: list[str], consumers: Mapping[str, list[str]], is_output: set[str]) -> str:
    for node_id in ready:
        if node_id in is_output:
            return node_id
    for node_id in ready:
        if any(c in is_output for c in consumers[node_id]):
            return node_id
    for node_id in ready:
        if any(cc in is_output for c in consumers[node_id] for cc in consumers.get(c, [])):
            return node_id
    return ready[0]


def signatures(graph: JSONObject) -> dict[str, str]:
    """A cache key per node: its class, constant inputs and its inputs' keys (not its id)."""
    keys: dict[str, str] = {}

    def key(node_id: str) -> str:
        if node_id not in keys:
            node = graph[node_id]
            inputs = {
                name: ["link", key(str(v[0])), v[1]] if is_link(v) else v
                for name, v in sorted(node.get("inputs", {}).items())
            }
            keys[node_id] = json.dumps([node["class_type"], inputs], sort_keys=True, default=str)
        return keys[node_id]

    for node_id in graph:
        key(node_id)
    return keys


# --- graphs: evaluating nodes ----------------------------------------------------------------


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


# --- the engine ------------------------------------------------------------------------------


@dataclass
class Job:
    """One queued prompt; ``item()`` is ComfyUI's 5-list for /queue and /history."""

    number: int | float
    prompt_id: str
    graph: JSONObject
    extra_data: JSONObject
    outputs: list[str]

    @property
    def client_id(self) -> str | None:
        return self.extra_data.get("client_id")

    def item(self) -> list[Any]:
        return [self.number, self.prompt_id, self.graph, self.extra_data, self.outputs]


@dataclass
class Call:
    """One received HTTP request, for tests to inspect."""

    method: str
    path: str
    route: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def as_dict(self) -> JSONObject:
        keys = ("method", "path", "route", "query", "body", "headers", "time")
        return {k: getattr(self, k) for k in keys}


@dataclass
class Client:
    """One connected websocket."""

    socket: WebSocket
    preview_metadata: bool = False


class Files:
    """ComfyUI's input, output and temp folders, in memory: ``(type, subfolder, name) -> bytes``."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str, str], bytes] = {}

    def get(self, kind: str, subfolder: str, name: str) -> bytes | None:
        return self.data.get((kind, subfolder, name.split(" [")[0]))

    def inputs(self) -> set[str]:
        """Uploaded input files as LoadImage names them (``sub/name``)."""
        return {f"{sub}/{name}" if sub else name for (kind, sub, name) in self.data if kind == "input"}

    def upload(self, kind: str, subfolder: str, filename: str, data: bytes, overwrite: bool) -> str:
        """Store an upload; ComfyUI's renaming (``name (1).png``) unless overwriting or identical."""
        stem, dot, ext = filename.rpartition(".")
        stem, dot = (stem, dot) if dot else (filename, "")
        name, n = filename, 1
        while not overwrite and self.data.get((kind, subfolder, name), data) != data:
            name, n = f"{stem} ({n}){dot}{ext}", n + 1
        self.data[(kind, subfolder, name)] = data
        return name

    def save(self, kind: str, prefix: str, batch: Batch, text: Mapping[str, str] | None) -> list[JSONObject]:
        """PNGs named as SaveImage (output) and PreviewImage (temp) name them: ``base_00001_.png``."""
        subfolder, _, base = prefix.rpartition("/")
        counter = self.next_counter(kind, subfolder, base)
        images = []
        for index, image in enumerate(batch):
            name = f"{base}_{counter + index:05}_.png"
            self.data[(kind, subfolder, name)] = encode_png(image.width, image.height, image.color, text)
            images.append({"filename": name, "subfolder": subfolder, "type": kind})
        return images

    def next_counter(self, kind: str, subfolder: str, base: str) -> int:
        """One past the highest counter already used for ``base`` (as ComfyUI counts)."""
        digits = [
            name[len(base) + 1 : len(base) + 6]
            for (k, sub, name) in self.data
            if (k, sub) == (kind, subfolder) and name.startswith(base + "_")
        ]
        return max((int(d) for d in digits if d.isdigit()), default=0) + 1


def with_checkpoints(info: JSONObject, options: FakeOptions) -> JSONObject:
    """``object_info`` listing ``models["checkpoints"]`` in CheckpointLoaderSimple, as a real ComfyUI
    lists the checkpoints of its model folders (the fixture has none)."""
    checkpoints = list(options.models.get("checkpoints", []))
    if not checkpoints:
        return info
    loader = copy.deepcopy(info["CheckpointLoaderSimple"])
    loader["input"]["required"]["ckpt_name"][0] = checkpoints
    return {**info, "CheckpointLoaderSimple": loader}


class FakeComfy:
    """The fake's state apart from HTTP: queue, worker, history, files, sockets and cache."""

    def __init__(self, options: FakeOptions, on_crash: Callable[[], None]) -> None:
        self.options = options
        self.fault: Fault | None = options.fault
        self.on_crash = on_crash
        self.object_info: JSONObject = with_checkpoints(fixture("object_info_noapi.json"), options)
        self.output_classes = {n for n, i in self.object_info.items() if i.get("output_node")}
        self.calls: list[Call] = []
        self.number = 0
        self.started = 0
        self.pending: list[tuple[float, int, Job]] = []
        self.order = itertools.count()
        self.running: Execution | None = None
        self.history: dict[str, JSONObject] = {}
        self.files = Files()
        self.clients: dict[str, Client] = {}
        self.cache: dict[str, NodeResult] = {}
        self.free_flags: JSONObject = {}
        self.interrupted = False
        self.wake = asyncio.Event()

    # ----- queue

    def queue_remaining(self) -> int:
        return len(self.pending) + (1 if self.running else 0)

    async def submit(self, body: JSONObject) -> tuple[int, JSONObject]:
        """POST /prompt: validate, queue, and answer (status, body)."""
        number: int | float = body["number"] if isinstance(body.get("number"), int | float) else self.number
        number = -number if body.get("front") else number
        self.number += 1
        if "prompt" not in body:
            error = prompt_error("no_prompt", "No prompt provided", "No prompt provided")
            return 400, {"error": error, "node_errors": {}}
        verdict = validate(body["prompt"], self.object_info, self.files.inputs())
        if verdict.error is not None:
            return 400, {"error": verdict.error, "node_errors": verdict.node_errors}
        targets = body.get("partial_execution_targets")
        outputs = [o for o in verdict.outputs if not targets or o in targets]
        job = Job(number, str(body.get("prompt_id") or uuid.uuid4()), body["prompt"], self.extra(body), outputs)
        heapq.heappush(self.pending, (number, next(self.order), job))
        self.wake.set()
        await self.broadcast_status()
        return 200, {"prompt_id": job.prompt_id, "number": number, "node_errors": verdict.node_errors}

    def extra(self, body: JSONObject) -> JSONObject:
        """extra_data as history shows it: client_id and create_time added, API keys removed."""
        extra = dict(body.get("extra_data") or {})
        if "client_id" in body:
            extra["client_id"] = body["client_id"]
        extra["create_time"] = now_ms()
        for secret in ("auth_token_comfy_org", "api_key_comfy_org"):
            extra.pop(secret, None)
        return extra

    def queue_view(self) -> JSONObject:
        running = [self.running.job.item()] if self.running else []
        return {"queue_running": running, "queue_pending": [job.item() for _, _, job in sorted(self.pending)]}

    def change_queue(self, body: JSONObject) -> None:
        """POST /queue: ``clear`` or ``delete`` pending prompts."""
        if body.get("clear"):
            self.pending.clear()
        drop = set(body.get("delete") or [])
        self.pending = [entry for entry in self.pending if entry[2].prompt_id not in drop]
        heapq.heapify(self.pending)

    def interrupt(self, prompt_id: str | None) -> None:
        """POST /interrupt: takes effect at the running prompt's next node."""
        if self.running and prompt_id in (None, self.running.job.prompt_id):
            self.interrupted = True

    def free(self, body: JSONObject) -> None:
        """POST /free: flags, applied between prompts."""
        self.free_flags.update({k: bool(body[k]) for k in ("unload_models", "free_memory") if k in body})
        self.wake.set()

    def apply_free(self) -> None:
        """As ComfyUI's worker does: ``free_memory`` also resets the node cache."""
        if self.free_flags.pop("free_memory", False):
            self.cache.clear()
        self.free_flags.clear()

    def history_view(self, max_items: int | None, offset: int) -> JSONObject:
        """GET /history: all, or ``max_items`` from ``offset`` (the last ones by default)."""
        if max_items is None:
            return dict(self.history)
        start = len(self.history) - max_items if offset < 0 else offset
        return dict(list(self.history.items())[max(start, 0) :][:max_items])

    def change_history(self, body: JSONObject) -> None:
        if body.get("clear"):
            self.history.clear()
        for prompt_id in body.get("delete") or []:
            self.history.pop(prompt_id, None)

    # ----- sockets

    def targets(self, sid: str | None) -> list[tuple[str, Client]]:
        """The socket of ``sid``, or every socket when ``sid`` is None."""
        if sid is None:
            return list(self.clients.items())
        client = self.clients.get(sid)
        return [(sid, client)] if client else []

    async def send(self, sid: str | None, kind: str, data: JSONObject) -> None:
        """One JSON event to a client, or to everyone (a closed socket is skipped)."""
        for _, client in self.targets(sid):
            with contextlib.suppress(Exception):
                await client.socket.send_text(json.dumps({"type": kind, "data": data}))

    async def send_preview(self, sid: str | None, png: bytes, metadata: JSONObject, progress: JSONObject) -> None:
        """A preview frame with its ``progress``: type 4 then progress for clients that asked for
        preview metadata, else progress then type 1 (PNG)."""
        meta = json.dumps(metadata).encode()
        for target, client in self.targets(sid):
            if not client.preview_metadata:
                await self.send(target, "progress", progress)
            frame = struct.pack(">II", 4, len(meta)) + meta if client.preview_metadata else struct.pack(">II", 1, 2)
            with contextlib.suppress(Exception):
                await client.socket.send_bytes(frame + png)
            if client.preview_metadata:
                await self.send(target, "progress", progress)

    async def broadcast_status(self) -> None:
        await self.send(None, "status", {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}})

    async def connected(self, sid: str, client: Client) -> None:
        """A socket opened: status with its sid, and the current node if its prompt runs."""
        self.clients[sid] = client
        status = {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}, "sid": sid}
        await self.send(sid, "status", status)
        run = self.running
        if run and run.job.client_id == sid and run.current:
            await self.send(sid, "executing", run.node_data(run.current))

    def disconnected(self, sid: str, client: Client) -> None:
        if self.clients.get(sid) is client:
            del self.clients[sid]

    # ----- worker

    async def worker(self) -> None:
        """Run prompts one at a time, lowest number first, forever."""
        while True:
            self.apply_free()
            if not self.pending:
                self.wake.clear()
                await self.wake.wait()
                continue
            _, _, job = heapq.heappop(self.pending)
            try:
                await self.execute(job)
            except Exception:  # a bug in the fake must not stop its queue; show it, go on
                traceback.print_exc()
                self.running = None

    async def execute(self, job: Job) -> None:
        """One prompt: run it, keep its results as the cache, record its history entry."""
        keys = signatures(job.graph)
        cached = {n: self.cache[keys[n]] for n in job.graph if keys[n] in self.cache}
        self.running = run = Execution(self, job, cached)
        self.interrupted = False
        self.started += 1
        await self.broadcast_status()
        await run.run()
        self.cache = {keys[n]: r for n, r in run.results.items()}
        self.history[job.prompt_id] = run.history_entry()
        self.running = None
        await self.broadcast_status()
        await run.emit("executing", run.node_data(None))


class Execution:
    """One prompt being run: ComfyUI's events in ComfyUI's order, node by node."""

    def __init__(self, engine: FakeComfy, job: Job, cached: dict[str, NodeResult]) -> None:
        self.engine = engine
        self.job = job
        self.cached = set(cached)
        self.results: dict[str, NodeResult] = dict(cached)
        self.progress: dict[str, JSONObject] = {}
        self.executed: list[str] = []
        self.messages: list[list[Any]] = []
        self.ui: JSONObject = {}
        self.current: str | None = None
        self.outcome = "success"

    # ----- events

    async def emit(self, kind: str, data: JSONObject, *, history: bool = False) -> None:
        """An execution event: only to the prompt's client (none when it has no client_id)."""
        if history:
            self.messages.append([kind, data])
        if self.job.client_id is not None:
            await self.engine.send(self.job.client_id, kind, data)

    def stamped(self, **data: Any) -> JSONObject:
        return {"prompt_id": self.job.prompt_id, **data, "timestamp": now_ms()}

    def node_data(self, node_id: str | None, output: JSONObject | None = None) -> JSONObject:
        """``executing`` data, or ``executed`` data when ``output`` is given (ComfyUI's key order)."""
        if node_id is None:
            return {"node": None, "prompt_id": self.job.prompt_id}
        shown = {"output": output} if output is not None else {}
        return {"node": node_id, "display_node": node_id, **shown, "prompt_id": self.job.prompt_id}

    def node_state(self, node_id: str, value: float, maximum: float, state: str) -> None:
        ids = {"node_id": node_id, "prompt_id": self.job.prompt_id, "display_node_id": node_id}
        extra = {"parent_node_id": None, "real_node_id": node_id}
        self.progress[node_id] = {"value": value, "max": maximum, "state": state, **ids, **extra}

    async def send_progress(self) -> None:
        """``progress_state`` (the whole node map) to the prompt's client, or to all without one."""
        nodes = {node_id: dict(state) for node_id, state in self.progress.items()}  # a snapshot (states are flat)
        data = {"prompt_id": self.job.prompt_id, "nodes": nodes}
        await self.engine.send(self.job.client_id, "progress_state", data)

    # ----- running

    async def run(self) -> None:
        """All nodes in ComfyUI's order; stops at an error or an interrupt."""
        await self.emit("execution_start", self.stamped(), history=True)
        await self.emit("execution_cached", self.stamped(nodes=list(self.results)), history=True)
        outputs = {n for n, node in self.job.graph.items() if node["class_type"] in self.engine.output_classes}
        order = execution_order(self.job.graph, self.job.outputs, self.cached, outputs)
        share = self.engine.options.job_seconds / max(1, len([n for n in order if n not in self.cached]))
        deadline = asyncio.get_running_loop().time()
        for node_id in order:
            if node_id in self.cached:
                await self.replay(node_id)
                continue
            deadline += share
            if not await self.run_node(node_id, deadline):
                return
        await self.emit("execution_success", self.stamped(), history=True)

    async def replay(self, node_id: str) -> None:
        """A cached output node: ``executed`` again (same files), then its finished state."""
        await self.show(node_id, self.results[node_id])
        self.node_state(node_id, 1, 1, "finished")
        await self.send_progress()

    async def show(self, node_id: str, result: NodeResult) -> None:
        if result.ui is not None:
            self.ui[node_id] = result.ui
            await self.emit("executed", self.node_data(node_id, result.ui))

    async def run_node(self, node_id: str, deadline: float) -> bool:
        """Execute one node, until the loop time ``deadline``; False when the prompt ends here
        (interrupted or failed)."""
        self.current = node_id
        self.node_state(node_id, 0.0, 1.0, "running")
        await self.send_progress()
        await self.emit("executing", self.node_data(node_id))
        if self.engine.options.crash_after == self.engine.started:
            self.engine.on_crash()
            await asyncio.sleep(3600)  # the crash handler cancels us
        if self.engine.interrupted:
            await self.fail(node_id, "execution_interrupted", {})
            return False
        await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))
        try:
            result = await self.evaluate(node_id)
        except NodeFailure as failure:
            await self.fail(node_id, "execution_error", self.error_details(node_id, failure))
            return False
        self.results[node_id] = result
        self.executed.append(node_id)
        await self.show(node_id, result)
        maximum = self.progress[node_id]["max"]
        self.node_state(node_id, maximum, maximum, "finished")
        await self.send_progress()
        return True

    async def fail(self, node_id: str, kind: str, details: JSONObject) -> None:
        """``execution_interrupted`` or ``execution_error`` (the former also without a client)."""
        self.outcome = "error"
        node_type = self.job.graph[node_id]["class_type"]
        data = self.stamped(node_id=node_id, node_type=node_type, executed=list(self.executed), **details)
        self.messages.append([kind, data])
        if kind == "execution_interrupted" or self.job.client_id is not None:
            await self.engine.send(self.job.client_id, kind, data)

    def error_details(self, node_id: str, failure: NodeFailure) -> JSONObject:
        literals = {k: [v] for k, v in self.job.graph[node_id].get("inputs", {}).items() if not is_link(v)}
        exception = {"exception_message": failure.message, "exception_type": failure.exception_type}
        return {**exception, "traceback": ["  (fake ComfyUI)\n"], "current_inputs": literals, "current_outputs": []}

    def history_entry(self) -> JSONObject:
        """``/history/<id>``'s value: outputs and meta only on success."""
        ok = self.outcome == "success"
        outputs = {n: self.ui[n] for n in self.job.outputs if n in self.ui} if ok else {}
        meta = {n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n} for n in outputs}
        status = {"status_str": self.outcome, "completed": ok, "messages": self.messages}
        return {"prompt": self.job.item(), "outputs": outputs, "status": status, "meta": meta}

    # ----- what nodes do

    def resolve(self, node: JSONObject) -> dict[str, Any]:
        """A node's inputs with links replaced by the upstream outputs."""
        inputs = node.get("inputs", {}).items()
        return {k: self.results[str(v[0])].outputs[v[1]] if is_link(v) else v for k, v in inputs}

    async def evaluate(self, node_id: str) -> NodeResult:
        """A node's outputs: images for the model-free nodes, pass-through for the others."""
        kind = self.job.graph[node_id]["class_type"]
        values = self.resolve(self.job.graph[node_id])
        files = self.engine.files
        if kind == "SaveImage":
            text = {"prompt": json.dumps(self.job.graph)}
            prefix = str(values.get("filename_prefix", "ComfyUI"))
            return NodeResult((), {"images": files.save("output", prefix, first_batch(values), text)})
        if kind == "PreviewImage":
            prefix = "ComfyUI_temp_" + "".join(random.choices(string.ascii_lowercase, k=5))
            return NodeResult((), {"images": files.save("temp", prefix, first_batch(values), None)})
        if kind == "SaveImageWebsocket":
            await self.send_images(node_id, first_batch(values))
            return NodeResult(())
        if kind == "LoadImage":
            return self.load_image(str(values["image"]))
        if kind in EVALUATORS:
            return NodeResult(EVALUATORS[kind](values))
        outputs = self.engine.object_info[kind].get("output", [])
        ui = {} if kind in self.engine.output_classes else None
        return NodeResult(tuple(first_batch(values) if t == "IMAGE" else None for t in outputs), ui)

    def load_image(self, name: str) -> NodeResult:
        """LoadImage of an upload: fails at run time, as ComfyUI does, when it is no PNG."""
        subfolder, _, filename = name.rpartition("/")
        size = png_size(self.engine.files.get("input", subfolder, filename) or b"")
        if size is None:
            raise NodeFailure(f"cannot identify image file '<input>/{name}'\n", "PIL.UnidentifiedImageError")
        return NodeResult(([Solid(size[0], size[1], 0x808080)], None))

    async def send_images(self, node_id: str, batch: Batch) -> None:
        """SaveImageWebsocket: per image a progress update and a binary preview frame."""
        total = len(batch)
        ids = {"node_id": node_id, "prompt_id": self.job.prompt_id, "display_node_id": node_id}
        metadata = {**ids, "parent_node_id": None, "real_node_id": node_id, "image_type": "image/png"}
        for index, image in enumerate(batch):
            self.node_state(node_id, index, total, "running")
            await self.send_progress()
            progress = {"value": index, "max": total, "prompt_id": self.job.prompt_id, "node": node_id}
            png = encode_png(image.width, image.height, image.color)
            await self.engine.send_preview(self.job.client_id, png, metadata, progress)
        self.node_state(node_id, total, total, "running")


# --- HTTP ------------------------------------------------------------------------------------


class ComfyJSON(JSONResponse):
    """JSON as aiohttp's ``json_response`` writes it (``json.dumps`` spacing, utf-8 charset)."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return json.dumps(content).encode()


def empty() -> Response:
    """ComfyUI's bare 200 for POSTs that change state."""
    return Response(status_code=200)


async def json_body(request: Request) -> Any:
    """The request's JSON body, ``{}`` when empty or not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {}


class Routes:
    """The HTTP and websocket handlers, one short method per ComfyUI route."""

    def __init__(self, engine: FakeComfy) -> None:
        self.engine = engine

    async def system_stats(self, request: Request) -> Response:
        return ComfyJSON(fixture("system_stats.json"))

    async def features(self, request: Request) -> Response:
        return ComfyJSON(SERVER_FEATURES)

    async def object_info(self, request: Request) -> Response:
        await asyncio.sleep(self.engine.options.slow_object_info)
        info = dict(self.engine.object_info)
        uploaded = sorted(n for n in self.engine.files.inputs() if "/" not in n)
        load = copy.deepcopy(info["LoadImage"])
        load["input"]["required"]["image"][0] = uploaded
        info["LoadImage"] = load
        node_class = request.path_params.get("node_class")
        if node_class is not None:
            return ComfyJSON({node_class: info[node_class]} if node_class in info else {})
        return ComfyJSON(info)

    async def prompt_post(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("500 Internal Server Error\n\nServer got itself in trouble", 500)
        if not isinstance(body, dict):
            return PlainTextResponse("500 Internal Server Error\n\nServer got itself in trouble", 500)
        status, answer = await self.engine.submit(body)
        return ComfyJSON(answer, status_code=status)

    async def prompt_get(self, request: Request) -> Response:
        return ComfyJSON({"exec_info": {"queue_remaining": self.engine.queue_remaining()}})

    async def queue_get(self, request: Request) -> Response:
        return ComfyJSON(self.engine.queue_view())

    async def queue_post(self, request: Request) -> Response:
        self.engine.change_queue(await json_body(request))
        await self.engine.broadcast_status()
        return empty()

    async def history_get(self, request: Request) -> Response:
        prompt_id = request.path_params.get("prompt_id")
        if prompt_id is not None:
            entry = self.engine.history.get(prompt_id)
            return ComfyJSON({prompt_id: entry} if entry else {})
        max_items = request.query_params.get("max_items")
        offset = int(request.query_params.get("offset", -1))
        return ComfyJSON(self.engine.history_view(int(max_items) if max_items else None, offset))

    async def history_post(self, request: Request) -> Response:
        self.engine.change_history(await json_body(request))
        return empty()

    async def interrupt(self, request: Request) -> Response:
        body = await json_body(request)
        self.engine.interrupt(body.get("prompt_id") if isinstance(body, dict) else None)
        return empty()

    async def free(self, request: Request) -> Response:
        body = await json_body(request)
        self.engine.free(body if isinstance(body, dict) else {})
        return empty()

    async def models(self, request: Request) -> Response:
        folder = request.path_params.get("folder")
        if folder is None:
            return ComfyJSON(MODEL_FOLDERS)
        if folder not in MODEL_FOLDERS:
            return Response(status_code=404)
        return ComfyJSON(list(self.engine.options.models.get(folder, [])))

    async def embeddings(self, request: Request) -> Response:
        return ComfyJSON(list(self.engine.options.models.get("embeddings", [])))

    async def view(self, request: Request) -> Response:
        query = request.query_params
        filename, subfolder = query.get("filename", ""), query.get("subfolder", "")
        if not filename:
            return Response(status_code=404)
        if ".." in filename or filename.startswith("/"):
            return Response(status_code=400)
        if ".." in subfolder.split("/") or subfolder.startswith("/"):
            return Response(status_code=403)
        data = self.engine.files.get(query.get("type", "output"), subfolder, filename)
        if data is None:
            return Response(status_code=404)
        headers = {"Content-Disposition": f'filename="{filename}"'}
        return Response(data, media_type="image/png", headers=headers)

    async def upload_image(self, request: Request) -> Response:
        form = await request.form()
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            return Response(status_code=400)
        data = await upload.read()
        kind = str(form.get("type") or "input")
        subfolder = str(form.get("subfolder") or "")
        overwrite = str(form.get("overwrite", "")).lower() in ("true", "1")
        name = self.engine.files.upload(kind, subfolder, upload.filename or "image.png", data, overwrite)
        return ComfyJSON({"name": name, "subfolder": subfolder, "type": kind})

    async def ws_without_upgrade(self, request: Request) -> Response:
        text = 'No WebSocket UPGRADE hdr: None\n Can "Upgrade" only to "WebSocket".'
        return PlainTextResponse(text, status_code=400)

    async def index(self, request: Request) -> Response:
        return Response("<!DOCTYPE html><html><body>fake ComfyUI</body></html>", media_type="text/html")

    async def ws(self, socket: WebSocket) -> None:
        await socket.accept()
        sid = socket.query_params.get("clientId") or uuid.uuid4().hex
        client = Client(socket)
        await self.engine.connected(sid, client)
        try:
            while True:
                await self.on_message(sid, client, await socket.receive_text())
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.engine.disconnected(sid, client)

    async def on_message(self, sid: str, client: Client, text: str) -> None:
        """The one client message ComfyUI acts on: ``feature_flags``."""
        with contextlib.suppress(ValueError, AttributeError):
            message = json.loads(text)
            if message.get("type") == "feature_flags":
                client.preview_metadata = bool(message.get("data", {}).get("supports_preview_metadata"))
                await self.engine.send(sid, "feature_flags", SERVER_FEATURES)

    # ----- inspection

    async def fake_calls(self, request: Request) -> Response:
        return ComfyJSON([c.as_dict() for c in self.engine.calls])

    async def fake_fault(self, request: Request) -> Response:
        body = await json_body(request)
        fault = body.get("fault") if isinstance(body, dict) else None
        self.engine.fault = Fault(fault) if fault else None
        return ComfyJSON({"fault": fault})


def recorded(engine: FakeComfy, handler: Callable[[Request], Awaitable[Response]]) -> Callable[..., Any]:
    """Wrap a handler so the request is listed in ``engine.calls`` (JSON bodies decoded)."""

    async def endpoint(request: Request) -> Response:
        body: Any = None
        if "multipart/" not in request.headers.get("content-type", ""):
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
        path = request.url.path
        route = path.removeprefix("/api") if path.startswith("/api/") else path
        call = Call(request.method, path, route, dict(request.query_params), body, dict(request.headers))
        engine.calls.append(call)
        return await handler(request)

    return endpoint


def comfy_routes(engine: FakeComfy, routes: Routes) -> list[BaseRoute]:
    """ComfyUI's route table (each is also served under ``/api``)."""
    table: list[tuple[str, str, Callable[[Request], Awaitable[Response]]]] = [
        ("GET", "/system_stats", routes.system_stats),
        ("GET", "/features", routes.features),
        ("GET", "/object_info", routes.object_info),
        ("GET", "/object_info/{node_class}", routes.object_info),
        ("POST", "/prompt", routes.prompt_post),
        ("GET", "/prompt", routes.prompt_get),
        ("GET", "/queue", routes.queue_get),
        ("POST", "/queue", routes.queue_post),
        ("GET", "/history", routes.history_get),
        ("GET", "/history/{prompt_id}", routes.history_get),
        ("POST", "/history", routes.history_post),
        ("POST", "/interrupt", routes.interrupt),
        ("POST", "/free", routes.free),
        ("GET", "/models", routes.models),
        ("GET", "/models/{folder}", routes.models),
        ("GET", "/embeddings", routes.embeddings),
        ("GET", "/view", routes.view),
        ("POST", "/upload/image", routes.upload_image),
    ]
    http: list[BaseRoute] = [Route(p, recorded(engine, h), methods=[m]) for m, p, h in table]
    return [*http, WebSocketRoute("/ws", routes.ws), Route("/ws", routes.ws_without_upgrade, methods=["GET"])]


def build_app(engine: FakeComfy) -> Starlette:
    """The Starlette app: ComfyUI's routes, their ``/api`` twins, and ``/__fake__``."""
    routes = Routes(engine)
    comfy = comfy_routes(engine, routes)
    inspection = [
        Route("/__fake__/calls", routes.fake_calls, methods=["GET"]),
        Route("/__fake__/fault", routes.fake_fault, methods=["POST"]),
    ]
    table = [*inspection, *comfy, Mount("/api", routes=comfy), Route("/", routes.index, methods=["GET"])]
    app = Starlette(routes=table)
    app.add_middleware(GarbageMiddleware, engine=engine)
    return app


class GarbageMiddleware:
    """The ``garbage`` fault: an HTML page for every route (one non-JSON frame on the socket)."""

    def __init__(self, app: ASGIApp, engine: FakeComfy) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.engine.fault is not Fault.GARBAGE or scope["path"].startswith("/__fake__"):
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await Response(GARBAGE_PAGE, media_type="text/html")(scope, receive, send)
        elif scope["type"] == "websocket":
            socket = WebSocket(scope, receive, send)
            await socket.accept()
            await socket.send_text(GARBAGE_PAGE)
            await socket.close()


# --- the server ------------------------------------------------------------------------------


class FaultyHTTPProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol (httptools: a C parser, as aiohttp's) with the ``hang`` and ``close``
    faults, below HTTP."""

    engine: FakeComfy

    def data_received(self, data: bytes) -> None:
        fault = self.engine.fault
        if fault in (Fault.HANG, Fault.CLOSE) and b" /__fake__/" not in data.split(b"\r\n", 1)[0]:
            self._unset_keepalive_if_required()  # a hung connection must not time out politely
            if fault is Fault.CLOSE:
                self.transport.close()
            return
        super().data_received(data)


def protocol_for(engine: FakeComfy) -> type[HttpToolsProtocol]:
    """A protocol class bound to one fake (uvicorn builds protocols from a class)."""
    return type("FakeComfyHTTPProtocol", (FaultyHTTPProtocol,), {"engine": engine})


class FakeComfyUI:
    """A running fake: its ``url``, its ``engine`` state, and fault controls."""

    def __init__(self, options: FakeOptions, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.options = options
        self.engine = FakeComfy(options, self.crash)
        self.sock = socket.create_server((host, port))
        # protocol 0 (create_server's) is not TCP to asyncio, which then leaves Nagle on: answers
        # written in two parts would wait 40 ms for a delayed ACK. ComfyUI's aiohttp sends at once.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host, self.port = self.sock.getsockname()[:2]
        config = uvicorn.Config(
            build_app(self.engine),
            http=protocol_for(self.engine),
            ws="websockets-sansio",
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.tasks: list[asyncio.Task[None]] = []
        self.crashed = asyncio.Event()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def calls(self) -> list[Call]:
        return self.engine.calls

    def calls_to(self, route: str, method: str | None = None) -> list[Call]:
        """Received calls to ``route`` (with or without its ``/api`` prefix)."""
        return [c for c in self.engine.calls if c.route == route and method in (None, c.method)]

    def set_fault(self, fault: Fault | str | None) -> None:
        """Switch the fault while running (``None`` heals it)."""
        self.engine.fault = Fault(fault) if fault else None

    async def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self.server.serve(sockets=[self.sock])),
            asyncio.create_task(self.engine.worker()),
        ]
        while not self.server.started:
            if self.tasks[0].done():
                self.tasks[0].result()
            await asyncio.sleep(0.01)

    def crash(self) -> None:
        """Die as a crashed process would: stop listening, drop every connection at once."""
        self.crashed.set()
        for server in getattr(self.server, "servers", []):
            server.close()
        for connection in list(self.server.server_state.connections):
            connection.transport.abort()  # type: ignore[attr-defined]
        self.server.should_exit = self.server.force_exit = True
        self.tasks[1].cancel()

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        self.server.should_exit = self.server.force_exit = True
        serve, worker = self.tasks
        worker.cancel()
        for task in (worker, serve):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.sock.close()


@contextlib.asynccontextmanager
async def run_fake_comfyui(
    *, port: int = 0, host: str = "127.0.0.1", options: FakeOptions | None = None, **fields: Any
) -> AsyncIterator[FakeComfyUI]:
    """Serve a fake ComfyUI in this event loop for the ``async with`` block.

    Give ``options`` or FakeOptions' fields as keywords: ``run_fake_comfyui(job_seconds=0.05,
    fault="hang")``. ``port=0`` picks a free port; see ``fake.url``.
    """
    fake = FakeComfyUI(options or FakeOptions(**fields), host=host, port=port)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


# --- command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m swarmkeeper.testing.fake_comfyui", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--job-seconds", type=float, default=0.1, help="sleep per prompt (default 0.1)")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        help="hang | garbage | close | crash_after=N | slow_object_info[=S]; may be repeated",
    )
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> FakeOptions:
    fields: dict[str, Any] = {"job_seconds": args.job_seconds}
    for text in args.fault:
        fields |= parse_fault(text)
    return FakeOptions(**fields)


async def serve_forever(options: FakeOptions, host: str, port: int) -> None:
    """Run until SIGINT/SIGTERM; a crash fault exits the process with code 1."""
    fake = FakeComfyUI(options, host=host, port=port)
    fake.engine.on_crash = lambda: os._exit(1)
    await fake.start()
    print(f"fake ComfyUI on {fake.url}", file=sys.stderr, flush=True)
    try:
        await fake.tasks[0]
    finally:
        await fake.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m swarmkeeper.testing.fake_comfyui --port N ...``"""
    args = parse_args(argv)
    try:
        options = options_from(args)
    except ValueError as exc:
        raise SystemExit(f"fake_comfyui: {exc}") from None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(options, args.host, args.port))


if __name__ == "__main__":
    main()
