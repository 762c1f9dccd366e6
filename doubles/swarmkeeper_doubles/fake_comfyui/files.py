"""ComfyUI's input, output and temp folders, kept in memory."""

from __future__ import annotations

from collections.abc import Mapping

from swarmkeeper_doubles.fake_comfyui.nodes import Batch
from swarmkeeper_doubles.fake_comfyui.png import encode_png
from swarmkeeper_doubles.fake_comfyui.reference import JSONObject


class Files:
    """ComfyUI's input, output and temp folders, in memory: ``(type, subfolder, name) -> bytes``."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str, str], bytes] = {}

    def get(self, kind: str, subfolder: str, name: str) -> bytes | None:
        return self.data.get((kind, subfolder, name.split(" [")[0]))

    def inputs(self) -> set[str]:
        """Uploaded input files as LoadImage names them (``sub/name``)."""
        return {f"{sub}/{name}" if sub else name for (kind, sub, name) in self.data if kind == "input"}

    def upload(self, kind: str, subfolder: str, filename: str, data: bytes, overwrite: bool) -> str:
        """Store an upload; ComfyUI's renaming (``name (1).png``) unless overwriting or identical."""
        stem, dot, ext = filename.rpartition(".")
        stem, dot = (stem, dot) if dot else (filename, "")
        name, n = filename, 1
        while not overwrite and self.data.get((kind, subfolder, name), data) != data:
            name, n = f"{stem} ({n}){dot}{ext}", n + 1
        self.data[(kind, subfolder, name)] = data
        return name

    def save(self, kind: str, prefix: str, batch: Batch, text: Mapping[str, str] | None) -> list[JSONObject]:
        """PNGs named as SaveImage (output) and PreviewImage (temp) name them: ``base_00001_.png``."""
        subfolder, _, base = prefix.rpartition("/")
        counter = self.next_counter(kind, subfolder, base)
        images = []
        for index, image in enumerate(batch):
            name = f"{base}_{counter + index:05}_.png"
            self.data[(kind, subfolder, name)] = encode_png(image.width, image.height, image.color, text)
            images.append({"filename": name, "subfolder": subfolder, "type": kind})
        return images

    def next_counter(self, kind: str, subfolder: str, base: str) -> int:
        """One past the highest counter already used for ``base`` (as ComfyUI counts)."""
        digits = [
            name[len(base) + 1 : len(base) + 6]
            for (k, sub, name) in self.data
            if (k, sub) == (kind, subfolder) and name.startswith(base + "_")
        ]
        return max((int(d) for d in digits if d.isdigit()), default=0) + 1
