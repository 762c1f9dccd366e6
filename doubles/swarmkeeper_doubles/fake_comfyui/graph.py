"""A prompt's graph: its links, the order ComfyUI runs its nodes in, and each node's cache key."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from swarmkeeper_doubles.fake_comfyui.reference import JSONObject


def is_link(value: Any) -> bool:
    """A ``["node_id", output_index]`` input."""
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


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
