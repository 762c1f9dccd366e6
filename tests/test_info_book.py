"""Identical object_info answers are held once (1,000 backends of one install would hold ~1.5 MB each)."""

from __future__ import annotations

from typing import Any

from swarmkeeper.backends.comfyui_info import InfoBook


def answer(checkpoint: str) -> dict[str, Any]:
    return {"CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [[checkpoint], {}]}}},
            "SwarmKSampler": {"input": {}}}


def test_equal_answers_share_one_mapping_and_one_parse() -> None:
    book = InfoBook()
    first, first_info = book.intern(answer("a.safetensors"))
    second, second_info = book.intern(answer("a.safetensors"))
    assert first is second and first_info is second_info
    assert first_info.models["Stable-Diffusion"] == ("a.safetensors",) and first_info.has_swarm_nodes


def test_a_different_answer_is_its_own_and_the_book_stays_bounded() -> None:
    book = InfoBook(size=2)
    a, _ = book.intern(answer("a"))
    b, b_info = book.intern(answer("b"))
    assert a is not b and b_info.models["Stable-Diffusion"] == ("b",)
    book.intern(answer("c"))  # the book forgets a (the least recently read)...
    again, _ = book.intern(answer("a"))
    assert again == a and again is not a  # ...so a is parsed anew, still equal
    assert book.intern(answer("c"))[0] is book.intern(answer("c"))[0]
