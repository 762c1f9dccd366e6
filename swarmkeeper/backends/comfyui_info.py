"""What a ComfyUI's ``GET /object_info`` says about it: its node classes, its model lists per
SwarmUI category, its model folder separator, and the SwarmUI feature ids it supports.

Pure functions over the parsed JSON (reference §9.1, §9.4). Unlike SwarmUI, which keeps one
feature set shared by every ComfyUI backend (the last one parsed wins), each backend gets the
features of its own ComfyUI.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson

#: SwarmUI model category → the (node class, input) pairs whose choices list those models.
MODEL_SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "Stable-Diffusion": (("CheckpointLoaderSimple", "ckpt_name"), ("UNETLoader", "unet_name"),
                         ("UnetLoaderGGUF", "unet_name"), ("TensorRTLoader", "unet_name")),
    "LoRA": (("LoraLoader", "lora_name"),),
    "VAE": (("VAELoader", "vae_name"),),
    "ControlNet": (("ControlNetLoader", "control_net_name"),),
    "ClipVision": (("CLIPVisionLoader", "clip_name"),),
    "Embedding": (("SwarmEmbedLoaderListProvider", "embed_name"),),
}

#: Features every ComfyUI backend has (SwarmUI's base set).
BASE_FEATURES = frozenset({"comfyui", "refiners", "controlnet", "endstepsearly", "seamless", "video",
                           "variation_seed", "freeu", "yolov8"})
#: Base features dropped when the node that provides them is missing.
DISCARD_IF_MISSING = frozenset({"variation_seed", "freeu", "yolov8"})
#: Node class → the feature it brings.
NODE_FEATURES: dict[str, str] = {
    "SwarmLoadImageB64": "comfy_loadimage_b64",
    "SwarmSaveImageWS": "comfy_saveimage_ws",
    "SwarmJustLoadTheModelPlease": "comfy_just_load_model",
    "SwarmLatentBlendMasked": "comfy_latent_blend_masked",
    "SwarmKSampler": "variation_seed",
    "FreeU": "freeu",
    "AITemplateLoader": "aitemplate",
    "IPAdapter": "ipadapter",
    "IPAdapterApply": "ipadapter",
    "IPAdapterModelLoader": "cubiqipadapter",
    "IPAdapterUnifiedLoader": "cubiqipadapterunified",
    "MiDaS-DepthMapPreprocessor": "controlnetpreprocessors",
    "RIFE VFI": "frameinterps",
    "GIMMVFI_interpolate": "frameinterps_gimmvfi",
    "Sam2Segmentation": "sam2",
    "SwarmYoloDetection": "yolov8",
    "PixArtCheckpointLoader": "extramodelspixart",
    "SanaCheckpointLoader": "extramodelssana",
    "CheckpointLoaderNF4": "bnb_nf4",
    "UnetLoaderGGUF": "gguf",
    "NunchakuFluxDiTLoader": "nunchaku",
    "TensorRTLoader": "tensorrt",
    "TeaCache": "teacache",
    "TeaCacheForVidGen": "teacache",
    "TeaCacheForImgGen": "teacache_oldvers",
    "OverrideCLIPDevice": "set_clip_device",
}
#: The node that marks SwarmUI's own ComfyUI nodes as installed.
SWARM_CORE_NODE = "SwarmKSampler"


@dataclass(frozen=True)
class ComfyInfo:
    """The parsed ``object_info`` of one ComfyUI."""

    node_classes: frozenset[str] = frozenset()
    models: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    #: ``\\`` if any model name used backslashes, else ``/``.
    folder_format: str = "/"
    features: frozenset[str] = frozenset()

    @property
    def has_swarm_nodes(self) -> bool:
        return SWARM_CORE_NODE in self.node_classes


def choices(node: Any, input_name: str) -> list[str]:
    """The options of a node's combo input: ``[[...], {...}]``, or ``["COMBO", {"options": [...]}]``
    in newer ComfyUIs; ``[]`` when the node or input is absent or not a combo."""
    inputs = node.get("input") if isinstance(node, Mapping) else None
    if not isinstance(inputs, Mapping):
        return []
    for group in ("required", "optional"):
        spec = inputs.get(group, {}).get(input_name) if isinstance(inputs.get(group), Mapping) else None
        if isinstance(spec, Sequence) and spec and not isinstance(spec, str):
            options = _options(spec)
            if options is not None:
                return [str(option) for option in options if isinstance(option, (str, int, float))]
    return []


def _options(spec: Sequence[Any]) -> Sequence[Any] | None:
    first = spec[0]
    if isinstance(first, list):
        return first
    if first == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
        options = spec[1].get("options")
        return options if isinstance(options, list) else None
    return None


def model_lists(info: Mapping[str, Any]) -> tuple[dict[str, tuple[str, ...]], str]:
    """Model names per category (``/`` separated, first occurrence kept) and the folder format."""
    backslash = False
    models: dict[str, tuple[str, ...]] = {}
    for category, sources in MODEL_SOURCES.items():
        names: dict[str, None] = {}
        for node_class, input_name in sources:
            for name in choices(info.get(node_class), input_name):
                backslash = backslash or "\\" in name
                names.setdefault(name.replace("\\", "/"), None)
        models[category] = tuple(names)
    return models, "\\" if backslash else "/"


def features_for(node_classes: Iterable[str], folder_format: str = "/") -> frozenset[str]:
    """SwarmUI's feature ids for a ComfyUI with these node classes."""
    found = {NODE_FEATURES[name] for name in node_classes if name in NODE_FEATURES}
    base = (BASE_FEATURES - DISCARD_IF_MISSING) | (BASE_FEATURES & DISCARD_IF_MISSING & found)
    slash = "folderbackslash" if folder_format == "\\" else "folderslash"
    return frozenset(base | found | {slash})


def parse_object_info(info: Mapping[str, Any]) -> ComfyInfo:
    """Everything swarmkeeper reads from one ``object_info`` answer."""
    models, folder_format = model_lists(info)
    node_classes = frozenset(info)
    return ComfyInfo(node_classes=node_classes, models=MappingProxyType(models), folder_format=folder_format,
                     features=features_for(node_classes, folder_format))


class InfoBook:
    """Identical ``object_info`` answers held once. A farm's ComfyUIs usually run one install, and
    each parsed answer is ~1.5 MB of Python objects: 500 backends would hold 750 MB of copies.
    The last ``size`` distinct answers are remembered by a digest of their bytes (~0.6 ms per
    read, at init only); a backend whose answer matches shares the read-only mapping and its
    parse."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._known: OrderedDict[bytes, tuple[Mapping[str, Any], ComfyInfo]] = OrderedDict()

    def intern(self, answer: dict[str, Any]) -> tuple[Mapping[str, Any], ComfyInfo]:
        """The shared read-only view of ``answer`` and its parse."""
        try:
            digest = hashlib.blake2b(orjson.dumps(answer), digest_size=16).digest()
        except TypeError:  # not plain JSON (never from a real ComfyUI): nothing to share
            return MappingProxyType(answer), parse_object_info(answer)
        known = self._known.get(digest)
        if known is None:
            known = self._known[digest] = MappingProxyType(answer), parse_object_info(answer)
            while len(self._known) > self.size:
                self._known.popitem(last=False)
        self._known.move_to_end(digest)
        return known


#: The process's book (backends of every server in the process may share an answer).
INFO_BOOK = InfoBook()
