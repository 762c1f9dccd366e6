"""Reading ComfyUI's ``/object_info``: model lists per SwarmUI category, the folder separator, and
features per backend (reference §9.1, §9.4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swarmkeeper.backends.comfyui_info import (
    BASE_FEATURES,
    choices,
    features_for,
    model_lists,
    parse_object_info,
)

RECORDED = Path(__file__).resolve().parent.parent / "doubles/swarmkeeper_doubles/data/object_info_noapi.json"


def loader(input_name: str, options: Any) -> dict[str, Any]:
    return {"input": {"required": {input_name: options}}}


def test_the_recorded_comfyui_gives_its_nodes_its_models_and_stock_features() -> None:
    info = json.loads(RECORDED.read_text())
    parsed = parse_object_info(info)
    assert parsed.node_classes == frozenset(info) and len(parsed.node_classes) > 300
    # No model files; VAELoader always offers its built-in "pixel_space" choice.
    assert dict(parsed.models) == {"Stable-Diffusion": (), "LoRA": (), "VAE": ("pixel_space",), "ControlNet": (),
                                   "ClipVision": (), "Embedding": ()}
    # Stock ComfyUI has FreeU but none of SwarmUI's nodes: no variation_seed, no yolov8.
    assert parsed.features == {"comfyui", "refiners", "controlnet", "endstepsearly", "seamless", "video", "freeu",
                               "folderslash"}
    assert not parsed.has_swarm_nodes


def test_models_come_from_the_loader_inputs_of_each_category() -> None:
    info = {
        "CheckpointLoaderSimple": loader("ckpt_name", [["sd15.safetensors", "xl\\base.safetensors"], {}]),
        "UNETLoader": loader("unet_name", [["flux.safetensors", "sd15.safetensors"]]),
        "LoraLoader": loader("lora_name", ["COMBO", {"options": ["detail.safetensors"]}]),  # newer ComfyUI shape
        "VAELoader": {"input": {"optional": {"vae_name": [["ae.safetensors"]]}}},
        "ControlNetLoader": loader("control_net_name", "not a combo"),
        "CLIPVisionLoader": loader("clip_name", ["STRING", {}]),
    }
    models, folder_format = model_lists(info)
    assert models["Stable-Diffusion"] == ("sd15.safetensors", "xl/base.safetensors", "flux.safetensors")
    assert models["LoRA"] == ("detail.safetensors",) and models["VAE"] == ("ae.safetensors",)
    assert models["ControlNet"] == () and models["ClipVision"] == () and models["Embedding"] == ()
    assert folder_format == "\\"
    assert "folderbackslash" in parse_object_info(info).features


def test_choices_survive_odd_shapes() -> None:
    assert choices(None, "x") == []
    assert choices({"input": "nope"}, "x") == []
    assert choices({"input": {"required": {"x": []}}}, "x") == []
    assert choices({"input": {"required": {"x": [["a", 3, None, {"b": 1}]]}}}, "x") == ["a", "3"]


def test_features_follow_the_nodes_of_this_backend_only() -> None:
    plain = features_for(["KSampler"])
    swarm = features_for(["SwarmKSampler", "SwarmYoloDetection", "FreeU", "UnetLoaderGGUF", "TeaCacheForImgGen",
                          "IPAdapterUnifiedLoader", "RIFE VFI"])
    assert plain == (BASE_FEATURES - {"variation_seed", "freeu", "yolov8"}) | {"folderslash"}
    assert swarm - plain == {"variation_seed", "yolov8", "freeu", "gguf", "teacache_oldvers", "cubiqipadapterunified",
                             "frameinterps"}
    assert plain == features_for(["KSampler"])  # parsing another backend changed nothing here
