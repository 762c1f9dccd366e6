"""A generation request checked before anything is queued (pure: the request, the backends'
combined ``object_info`` and the registry in; the parameters and the checkpoint file out, or a
ParamError with SwarmUI's text).

A model that no backend lists gets SwarmUI's text for an unknown model, followed by every backend
that was asked and why it could not serve (as the scheduler lists refusals).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from swarmkeeper import dotnet
from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.dispatch.graph import ParamError, T2IParams, check_choice, checkpoint_name, parse_params, unknown_model
from swarmkeeper.dispatch.pool.validate import combo_choices, input_specs
from swarmkeeper.dispatch.requests import REFUSED_INTRO, Refusal
from swarmkeeper.dispatch.select import describe, unavailable

NO_MODEL = "No model selected: set 'model' to one of the models ListModels lists."
#: The KSampler inputs a request names, and the parameter each comes from.
DROPDOWNS = (("sampler", "sampler_name"), ("scheduler", "scheduler"))


@dataclass(frozen=True)
class Prepared:
    params: T2IParams
    #: The checkpoint file the backends list for ``params.model``.
    checkpoint: str
    #: ``donotsave``: answer images inline instead of saving them.
    do_not_save: bool = False


def choices(info: Mapping[str, Any], node: str, name: str) -> list[str] | None:
    spec = input_specs(info.get(node, {})).get(name)
    found = combo_choices(spec) if spec is not None else None
    return [str(choice) for choice in found] if found is not None else None


def asked(model: str, records: Iterable[BackendRecord]) -> str:
    """Every text-to-image backend and why it cannot serve this model."""
    lines = []
    for record in records:
        if record.type.t2i:
            refusal = unavailable(record) or Refusal(f"missing model '{model[:200]}'")
            lines.append(f"\n- {describe(record, refusal)}")
    return f"{REFUSED_INTRO}{''.join(lines)}" if lines else ""


def checkpoint_for(model: str, info: Mapping[str, Any], records: Sequence[BackendRecord]) -> str:
    if not model.strip():
        raise ParamError(NO_MODEL)
    known = choices(info, "CheckpointLoaderSimple", "ckpt_name") or []
    found = None if ".." in model.replace("\\", "/").split("/") else checkpoint_name(model, known)
    if found is None:
        raise ParamError(f"{unknown_model(model)}{asked(model, records)}")
    return found


def prepare(raw: Mapping[str, Any], info: Mapping[str, Any], records: Sequence[BackendRecord]) -> Prepared:
    params = parse_params(raw).resolved()
    checkpoint = checkpoint_for(params.model, info, records)
    for name, input_name in DROPDOWNS:
        offered = choices(info, "KSampler", input_name)
        if offered is not None:
            check_choice(name, getattr(params, name), offered)
    given = {str(key).lower(): value for key, value in raw.items()}
    do_not_save = dotnet.parse_bool(dotnet.to_text(given.get("donotsave", False))) is True
    return Prepared(params, checkpoint, do_not_save)
