"""The README documents both ComfyUI types: every setting, how to add each type, and the logs command."""

from __future__ import annotations

from pathlib import Path

from swarmkeeper.backends.comfyui_api import COMFYUI_API
from swarmkeeper.backends.comfyui_selfstart import COMFYUI_SELFSTART

README = Path(__file__).resolve().parent.parent / "README.md"


def comfyui_section() -> str:
    text = README.read_text()
    start = text.index("## ComfyUI backends")
    return text[start:text.index("\n## ", start + 1)]


def test_every_comfyui_setting_is_documented() -> None:
    section = comfyui_section()
    for backend_type in (COMFYUI_API, COMFYUI_SELFSTART):
        for setting in backend_type.schema.settings:
            assert f"| `{setting.name}` |" in section, f"{backend_type.id}.{setting.name} is not in the README"


def test_adding_each_type_from_the_api_and_the_cli_is_shown() -> None:
    section = comfyui_section()
    for type_id in ("comfyui_api", "comfyui_selfstart"):
        assert f'\\"type_id\\":\\"{type_id}\\"' in section
        assert f"swarmkeeper backends add {type_id}" in section
    assert "swarmkeeper logs 0 -f" in section
