"""Backend types for the model-route and Swarm-API tests: one whose model lists come from its
settings (and that can load a model on demand), and a non-text-to-image one. Load them with
``--backend_types tests.model_backend``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from swarmkeeper.backends.base import Backend, BackendType
from swarmkeeper.backends.settings import text
from swarmkeeper.backends.status import BackendStatus


@dataclass(frozen=True)
class ModelSettings:
    Address: str = text("", "Anything; blank leaves the backend unconfigured (disabled).")
    Models: str = text("", "Model lists: 'Category=name,name;Category=name'.")


def parse_models(spec: str) -> dict[str, tuple[str, ...]]:
    models: dict[str, tuple[str, ...]] = {}
    for part in filter(None, spec.split(";")):
        category, _, names = part.partition("=")
        models[category.strip()] = tuple(name.strip() for name in names.split(",") if name.strip())
    return models


class ModelBackend(Backend[ModelSettings]):
    def __init__(self, host: Any) -> None:
        super().__init__(host)
        self._models: Mapping[str, Sequence[str]] = {}
        self.refreshes = 0
        self.loads: list[str] = []

    @property
    def models(self) -> Mapping[str, Sequence[str]]:
        return self._models

    @property
    def features(self) -> frozenset[str]:
        return frozenset({"models"})

    async def init(self) -> None:
        if not self.settings.Address:
            self.host.set_status(BackendStatus.DISABLED, "No address is set.")
            return
        self._models = parse_models(self.settings.Models)
        self.host.set_status(BackendStatus.RUNNING, "")

    async def shutdown(self) -> None:
        self._models = {}

    async def refresh_models(self) -> None:
        self.refreshes += 1
        self._models = parse_models(self.settings.Models)

    async def load_model(self, model: str) -> bool:
        self.loads.append(model)
        self.current_model = model
        return True


MODELS_TYPE = BackendType(id="test_models", name="Models (tests)", description="A backend with model lists.",
                          settings_class=ModelSettings, factory=ModelBackend)
NOT_T2I_TYPE = BackendType(id="test_llm", name="LLM (tests)", description="Not a text-to-image backend.",
                           settings_class=ModelSettings, factory=ModelBackend, t2i=False)

BACKEND_TYPES = [MODELS_TYPE, NOT_T2I_TYPE]
