"""ComfyUI's ``validate_prompt``: a queued graph's good outputs, or the 400 body with its errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swarmkeeper_doubles.fake_comfyui.graph import is_link
from swarmkeeper_doubles.fake_comfyui.reference import JSONObject


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
            mismatch = {"input_name": name, "input_config": spec, "received_type": received, "linked_node": link}
            return {"type": "return_type_mismatch", "message": message, "details": details,
                    "extra_info": mismatch}, False
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
