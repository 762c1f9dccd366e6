"""What a ComfyUI prompt needs of the one backend that runs it, as a scheduler filter.

The pool validates a prompt against the union of every backend's ``object_info``; a single backend
must then have every node class the prompt uses and accept every choice it makes (a checkpoint
name is such a choice: a backend without that model refuses it). A backend whose node list is
not known yet (a chained server not asked yet) is refused for now, which makes the request wait.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.dispatch.pool.validate import combo_choices, input_specs, is_link, is_upload, summary, validate
from swarmkeeper.dispatch.requests import Refusal

#: Node inputs that name the main model, in the order they are looked for.
MODEL_INPUTS = (("CheckpointLoaderSimple", "ckpt_name"), ("CheckpointLoader", "ckpt_name"),
                ("UNETLoader", "unet_name"), ("UnetLoaderGGUF", "unet_name"))
#: A backend's object_info, or None when not known (and the refusal to give then).
InfoSource = Callable[[BackendRecord], "Mapping[str, Any] | Refusal"]


@dataclass(frozen=True)
class Choice:
    node_id: str
    class_type: str
    input: str
    value: Any


@dataclass
class PromptNeeds:
    """Node classes and literal choices of a graph (validated already)."""

    classes: frozenset[str]
    choices: tuple[Choice, ...]
    model: str | None
    info_of: InfoSource
    #: Verdicts per node list (``id(info)`` -> (info, verdict)): backends of one install share one
    #: ``object_info`` object (comfyui_info.InfoBook), so a prompt is judged once per install.
    _cache: dict[int, tuple[Mapping[str, Any], Refusal | None]] = field(default_factory=dict, repr=False)

    def __call__(self, record: BackendRecord) -> Refusal | None:
        info = self.info_of(record)
        if isinstance(info, Refusal):
            return info
        known = self._cache.get(id(info))
        if known is not None and known[0] is info:
            return known[1]
        verdict = _judged(self, info)
        self._cache[id(info)] = (info, verdict)
        return verdict

    def judge(self, info: Mapping[str, Any]) -> Refusal | None:
        missing = sorted(self.classes - info.keys())
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            return Refusal(f"missing node class(es) {shown}")
        for choice in self.choices:
            spec = input_specs(info[choice.class_type]).get(choice.input)
            options = combo_choices(spec) if spec is not None else None
            if options is not None and choice.value not in options:
                what = "model" if (choice.class_type, choice.input) in MODEL_INPUTS else choice.input
                return Refusal(f"missing {what} '{choice.value}' (node {choice.node_id}, {choice.class_type})")
        return None


#: The start of the text a prompt that failed validation late ends with (its client was answered 200).
LATE_INVALID = "The prompt failed validation once a backend's node list was known: "


@dataclass
class LateNeeds(PromptNeeds):
    """The needs of a prompt accepted before any backend's node list was known (an autoscaling
    backend with no worker yet, every backend still loading): it waits like any request, and the
    first time a backend with a node list is asked about it, the prompt is validated against the
    union of node lists known then. Valid, it is judged as any prompt from then on (its outputs
    written into ``outputs``); invalid, every backend refuses it with a ``final`` refusal, and the
    scheduler fails it with ComfyUI's validation text."""

    body: Mapping[str, Any] = field(default_factory=dict)
    union: Callable[[], Mapping[str, Any]] = dict
    #: The job's list of outputs to run, filled in once validated.
    outputs: list[str] = field(default_factory=list)
    invalid: Refusal | None = None
    validated: bool = False

    def __call__(self, record: BackendRecord) -> Refusal | None:
        if not self.validated:
            info = self.info_of(record)
            if isinstance(info, Refusal):
                return info
            self._validate(info)
        return self.invalid or super().__call__(record)

    def _validate(self, first: Mapping[str, Any]) -> None:
        self.validated = True
        union = self.union() or first
        verdict = validate(self.body, union)
        if verdict.error is not None:
            self.invalid = Refusal(LATE_INVALID + summary(verdict), final=True)
            return
        known = needs_of(self.body["prompt"], union, self.info_of)
        self.classes, self.choices, self.model = known.classes, known.choices, known.model
        self.outputs[:] = verdict.outputs


def needs_of(graph: Mapping[str, Any], info: Mapping[str, Any], info_of: InfoSource) -> PromptNeeds:
    """The needs of a graph that passed validation against ``info`` (the union)."""
    classes: set[str] = set()
    choices: list[Choice] = []
    model = None
    for node_id, node in graph.items():
        kind = node["class_type"]
        classes.add(kind)
        specs = input_specs(info[kind])
        for name, value in node.get("inputs", {}).items():
            spec = specs.get(name)
            if spec is None or is_link(value) or is_upload(spec) or combo_choices(spec) is None:
                continue
            choices.append(Choice(str(node_id), kind, name, value))
            if model is None and (kind, name) in MODEL_INPUTS and isinstance(value, str):
                model = value
    return PromptNeeds(frozenset(classes), tuple(choices), model, info_of)


#: Verdicts shared by prompts with the same needs (a client sends the same graph shape again and
#: again): (classes, choices, id(info)) -> (info, verdict); the info is kept to rule out a reused id.
_VERDICTS: dict[tuple[frozenset[str], tuple[Choice, ...], int], tuple[Mapping[str, Any], Refusal | None]] = {}
MAX_VERDICTS = 4096


def _judged(needs: PromptNeeds, info: Mapping[str, Any]) -> Refusal | None:
    try:
        key = (needs.classes, needs.choices, id(info))
        known = _VERDICTS.get(key)
    except TypeError:  # a choice value that cannot be hashed (a list): judge it every time
        return needs.judge(info)
    if known is not None and known[0] is info:
        return known[1]
    verdict = needs.judge(info)
    if len(_VERDICTS) >= MAX_VERDICTS:
        _VERDICTS.clear()
    _VERDICTS[key] = (info, verdict)
    return verdict
