"""ComfyUI's prompt validation (``execution.validate_prompt``), against the union of the backends'
``object_info``, answered in ComfyUI's own error shapes.

Everything is iterative (a graph thousands of nodes deep cannot overflow the stack) and a
dependency cycle is refused here, where ComfyUI only finds it while running the prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSONObject = dict[str, Any]


def prompt_error(kind: str, message: str, details: str = "") -> JSONObject:
    """ComfyUI's top-level ``error`` object."""
    return {"type": kind, "message": message, "details": details, "extra_info": {}}


def error_body(kind: str, message: str, details: str = "", node_errors: JSONObject | None = None) -> JSONObject:
    """A whole 400 answer of ``POST /prompt``."""
    return {"error": prompt_error(kind, message, details), "node_errors": node_errors or {}}


def is_link(value: Any) -> bool:
    return isinstance(value, list)


def spec_type(spec: Any) -> str:
    """An input's type name (a list of choices is a ``COMBO``)."""
    first = spec[0] if isinstance(spec, list) and spec else None
    return "COMBO" if isinstance(first, list) else str(first)


def spec_options(spec: Any) -> Mapping[str, Any]:
    return spec[1] if isinstance(spec, list) and len(spec) > 1 and isinstance(spec[1], dict) else {}


def combo_choices(spec: Any) -> list[Any] | None:
    """The allowed values of a combo input, else None."""
    first = spec[0] if isinstance(spec, list) and spec else None
    if isinstance(first, list):
        return first
    if first == "COMBO":
        options = spec_options(spec).get("options")
        return list(options) if isinstance(options, list) else None
    return None


def is_upload(spec: Any) -> bool:
    """An input whose choices are uploaded files (LoadImage's ``image``): the list a backend reported
    at start-up is stale after an upload, so its value is left to the backend to check."""
    options = spec_options(spec)
    return any(options.get(key) for key in ("image_upload", "video_upload", "audio_upload", "upload"))


def types_match(received: str, wanted: str) -> bool:
    """ComfyUI's ``validate_node_input``: equal, a wildcard, or a subset of comma-separated types."""
    if received == wanted or "*" in (received, wanted):
        return True
    return set(received.split(",")) <= set(wanted.split(","))


def input_specs(info: Mapping[str, Any]) -> dict[str, Any]:
    inputs = as_mapping(info.get("input"))
    return {**as_mapping(inputs.get("required")), **as_mapping(inputs.get("optional"))}


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def input_error(kind: str, message: str, name: str, spec: Any, value: Any, details: str = "") -> JSONObject:
    extra = {"input_name": name, "input_config": spec, "received_value": value}
    return {"type": kind, "message": message, "details": details or name, "extra_info": extra}


def check_literal(name: str, spec: Any, value: Any) -> JSONObject | None:
    """A constant input: a number within its range, a choice among its choices."""
    kind = spec_type(spec)
    if kind in ("INT", "FLOAT"):
        return check_number(name, spec, value, kind)
    choices = combo_choices(spec)
    if choices is not None and not is_upload(spec) and value not in choices:
        shown = choices if len(choices) <= 20 else [*choices[:20], "..."]
        details = f"{name}: '{value}' not in {shown}"
        return input_error("value_not_in_list", "Value not in list", name, spec, value, details)
    if kind == "STRING" and isinstance(value, (dict, list)):
        return input_error("invalid_input_type", f"Failed to convert an input value to a {kind} value", name, spec,
                           value, f"{name}, {value}")
    return None


def check_number(name: str, spec: Any, value: Any, kind: str) -> JSONObject | None:
    options = spec_options(spec)
    try:
        if isinstance(value, (bool, dict, list)) or value is None:
            raise ValueError(f"{type(value).__name__} is not a number")
        number: float = int(value) if kind == "INT" else float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        message = f"Failed to convert an input value to a {kind} value"
        return input_error("invalid_input_type", message, name, spec, value, f"{name}, {value}, {exc}")
    if isinstance(options.get("min"), (int, float)) and number < options["min"]:
        return input_error("value_smaller_than_min", f"Value {number} smaller than min of {options['min']}", name,
                           spec, number)
    if isinstance(options.get("max"), (int, float)) and number > options["max"]:
        return input_error("value_bigger_than_max", f"Value {number} bigger than max of {options['max']}", name,
                           spec, number)
    return None


def summary(verdict: Verdict) -> str:
    """A failed verdict in one text: the error, then each node's errors."""
    error = verdict.error or {}
    lines = [f"{error.get('message', '')}: {error.get('details', '')}".rstrip(": ")]
    for node_id, entry in verdict.node_errors.items():
        lines += [f"node {node_id} ({entry.get('class_type')}): {e.get('message')}: {e.get('details')}"
                  for e in entry.get("errors", [])]
    return "\n".join(lines)


@dataclass
class Verdict:
    """The outcome: the outputs to run (and errors of the others), or the 400 body."""

    outputs: list[str] = field(default_factory=list)
    node_errors: JSONObject = field(default_factory=dict)
    error: JSONObject | None = None

    @property
    def body(self) -> JSONObject:
        assert self.error is not None
        return {"error": self.error, "node_errors": self.node_errors}


class Validator:
    """One graph against one ``object_info``."""

    def __init__(self, graph: Mapping[str, Any], info: Mapping[str, Any]) -> None:
        self.graph = graph
        self.info = info
        self.errors: dict[str, list[JSONObject]] = {}

    def classes(self) -> JSONObject | None:
        """Every node is an object naming a known class."""
        for node_id, node in self.graph.items():
            kind = node.get("class_type") if isinstance(node, dict) else None
            if not isinstance(kind, str):
                return prompt_error("invalid_prompt", "Cannot execute because a node is missing the class_type "
                                    "property.", f"Node ID '#{node_id}'")
            if kind not in self.info:
                return prompt_error("invalid_prompt", f"Cannot execute because node {kind} does not exist.",
                                    f"Node ID '#{node_id}'")
            if not isinstance(node.get("inputs", {}), dict):
                return prompt_error("invalid_prompt", f"Node ID '#{node_id}' has inputs that are not an object.",
                                    f"Node ID '#{node_id}'")
        return None

    def outputs(self, targets: Any) -> list[str]:
        found = [n for n, node in self.graph.items() if self.info[node["class_type"]].get("output_node") is True]
        if isinstance(targets, list) and targets:
            wanted = {str(target) for target in targets}
            found = [n for n in found if n in wanted]
        return found

    def own_errors(self, node_id: str) -> list[JSONObject]:
        """The node's own problems (missing, mistyped or out-of-range inputs, broken links)."""
        node = self.graph[node_id]
        specs = input_specs(self.info[node["class_type"]])
        required = self.info[node["class_type"]].get("input", {}).get("required", {}) or {}
        values = node.get("inputs", {})
        errors = [{"type": "required_input_missing", "message": "Required input is missing", "details": name,
                   "extra_info": {"input_name": name}} for name in required if name not in values]
        for name, value in values.items():
            if name not in specs:
                continue
            error = self.check_link(name, specs[name], value) if is_link(value) else check_literal(name, specs[name],
                                                                                                    value)
            if error is not None:
                errors.append(error)
        return errors

    def check_link(self, name: str, spec: Any, link: list[Any]) -> JSONObject | None:
        if len(link) != 2 or not isinstance(link[1], int) or isinstance(link[1], bool):
            return input_error("bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, "
                               "slot_index]", name, spec, link)
        source = str(link[0])
        if source not in self.graph:
            extra = {"exception_message": f"'{source}'", "exception_type": "KeyError", "traceback": []}
            return {"type": "exception_during_validation", "message": "Exception when validating node",
                    "details": f"'{source}'", "extra_info": extra}
        outputs = self.info[self.graph[source]["class_type"]].get("output", []) or []
        if not 0 <= link[1] < len(outputs):
            return input_error("bad_linked_input", f"Linked output {link[1]} of node {source} does not exist", name,
                               spec, link)
        received, wanted = str(outputs[link[1]]), spec_type(spec)
        if not types_match(received, wanted):
            extra = {"input_name": name, "input_config": spec, "received_type": received, "linked_node": link}
            return {"type": "return_type_mismatch", "message": "Return type mismatch between linked nodes",
                    "details": f"{name}, received_type({received}) mismatch input_type({wanted})", "extra_info": extra}
        return None

    def upstream(self, node_id: str) -> list[str]:
        return [str(v[0]) for v in self.graph[node_id].get("inputs", {}).values()
                if is_link(v) and len(v) == 2 and str(v[0]) in self.graph]

    def cycle(self, outputs: list[str]) -> list[str] | None:
        """A dependency cycle among the nodes the outputs need, if there is one."""
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for root in outputs:
            stack: list[tuple[str, int]] = [(root, 0)]
            path: list[str] = []
            while stack:
                node_id, index = stack.pop()
                if index == 0:
                    if state.get(node_id) == 2:
                        continue
                    if state.get(node_id) == 1:
                        return path[path.index(node_id):]
                    state[node_id] = 1
                    path.append(node_id)
                sources = self.upstream(node_id)
                if index < len(sources):
                    stack.append((node_id, index + 1))
                    stack.append((sources[index], 0))
                else:
                    state[node_id] = 2
                    path.pop()
        return None

    def reachable(self, output: str) -> list[str]:
        seen, stack = {output}, [output]
        while stack:
            for source in self.upstream(stack.pop()):
                if source not in seen:
                    seen.add(source)
                    stack.append(source)
        return list(seen)


def shape(body: Any) -> Verdict:
    """What can be said of ``POST /prompt``'s body with no node list: an error, or no outputs yet."""
    if not isinstance(body, dict) or "prompt" not in body:
        return Verdict(error=prompt_error("no_prompt", "No prompt provided", "No prompt provided"))
    if not isinstance(body["prompt"], dict):
        return Verdict(error=prompt_error("invalid_prompt", "Prompt is not a dictionary"))
    return Verdict()


def validate(body: Any, info: Mapping[str, Any]) -> Verdict:
    """``POST /prompt``'s body against ``info``: the outputs to run, or ComfyUI's 400 answer."""
    if (malformed := shape(body)).error is not None:
        return malformed
    graph = body["prompt"]
    validator = Validator(graph, info)
    if (error := validator.classes()) is not None:
        return Verdict(error=error)
    outputs = validator.outputs(body.get("partial_execution_targets"))
    if not outputs:
        return Verdict(error=prompt_error("prompt_no_outputs", "Prompt has no outputs"))
    loop = validator.cycle(outputs)
    if loop is not None:
        errors = {n: {"errors": [{"type": "dependency_cycle", "message": "Dependency cycle detected",
                                  "details": " -> ".join(loop), "extra_info": {}}], "dependent_outputs": outputs,
                      "class_type": graph[n]["class_type"]} for n in loop}
        return Verdict(node_errors=errors, error=prompt_error("invalid_prompt", "Dependency cycle detected",
                                                              " -> ".join(loop)))
    return _judge_outputs(validator, outputs)


def _judge_outputs(validator: Validator, outputs: list[str]) -> Verdict:
    own = {}
    good: list[str] = []
    broken: dict[str, list[str]] = {}
    for output in outputs:
        failing = []
        for node_id in validator.reachable(output):
            if node_id not in own:
                own[node_id] = validator.own_errors(node_id)
            if own[node_id]:
                failing.append(node_id)
        if failing:
            for node_id in failing:
                broken.setdefault(node_id, []).append(output)
        else:
            good.append(output)
    node_errors = {n: {"errors": own[n], "dependent_outputs": deps, "class_type": validator.graph[n]["class_type"]}
                   for n, deps in broken.items()}
    if good:
        return Verdict(good, node_errors)
    details = "\n".join(f"{e['message']}: {e['details']}" for n in broken for e in own[n])
    return Verdict([], node_errors, prompt_error("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                                                 details))
