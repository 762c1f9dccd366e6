"""The pool's union of object_info answers (``GET /object_info`` on the pool)."""

from __future__ import annotations

from typing import Any

from swarmkeeper.dispatch.targets import merge_infos


def checkpoint_loader(*names: str) -> dict[str, Any]:
    return {"input": {"required": {"ckpt_name": [list(names), {"tooltip": "The checkpoint"}]}},
            "output": ["MODEL"], "name": "CheckpointLoaderSimple"}


def test_alike_backends_give_the_first_answer_unchanged() -> None:
    first = {"CheckpointLoaderSimple": checkpoint_loader("a.safetensors")}
    second = {"CheckpointLoaderSimple": checkpoint_loader("a.safetensors")}
    assert merge_infos([first, second]) == first


def test_combo_choices_are_united_in_first_seen_order() -> None:
    first = {"CheckpointLoaderSimple": checkpoint_loader("a.safetensors", "b.safetensors")}
    second = {"CheckpointLoaderSimple": checkpoint_loader("c.safetensors", "a.safetensors"),
              "OnlyHere": {"input": {"required": {}}, "output": []}}
    merged = merge_infos([first, second])
    spec = merged["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"]
    assert spec == [["a.safetensors", "b.safetensors", "c.safetensors"], {"tooltip": "The checkpoint"}]
    assert "OnlyHere" in merged
    assert first["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] == ["a.safetensors", "b.safetensors"]


def test_a_third_backend_alike_the_first_adds_nothing_twice() -> None:
    first = {"CheckpointLoaderSimple": checkpoint_loader("a.safetensors")}
    second = {"CheckpointLoaderSimple": checkpoint_loader("b.safetensors")}
    third = {"CheckpointLoaderSimple": checkpoint_loader("a.safetensors")}
    spec = merge_infos([first, second, third])["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"]
    assert spec[0] == ["a.safetensors", "b.safetensors"]
