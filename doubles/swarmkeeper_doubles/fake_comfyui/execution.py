"""One prompt being run: ComfyUI's websocket events, in ComfyUI's order, node by node."""

from __future__ import annotations

import asyncio
import json
import random
import string
from typing import TYPE_CHECKING, Any

from swarmkeeper_doubles.fake_comfyui.graph import execution_order, is_link
from swarmkeeper_doubles.fake_comfyui.nodes import EVALUATORS, Batch, NodeFailure, NodeResult, Solid, first_batch
from swarmkeeper_doubles.fake_comfyui.png import encode_png, png_size
from swarmkeeper_doubles.fake_comfyui.reference import JSONObject, now_ms

if TYPE_CHECKING:
    from swarmkeeper_doubles.fake_comfyui.engine import FakeComfy, Job


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
        """All nodes in ComfyUI's order; stops at an error or an interrupt. The executed nodes'
        shares of ``job_seconds`` run from the start, so the fake's own work (events, PNGs) fits
        inside them instead of adding to them."""
        deadline = asyncio.get_running_loop().time()
        await self.emit("execution_start", self.stamped(), history=True)
        await self.emit("execution_cached", self.stamped(nodes=list(self.results)), history=True)
        outputs = {n for n, node in self.job.graph.items() if node["class_type"] in self.engine.output_classes}
        order = execution_order(self.job.graph, self.job.outputs, self.cached, outputs)
        share = self.engine.options.job_seconds / max(1, len([n for n in order if n not in self.cached]))
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
        try:
            result = await self.evaluate(node_id)
        except NodeFailure as failure:
            await self.fail(node_id, "execution_error", self.error_details(node_id, failure))
            return False
        await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))
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
        ui: dict[str, Any] | None = {} if kind in self.engine.output_classes else None
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
