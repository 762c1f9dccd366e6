"""The indexes a decision reads at 1,000 backends stay true to the registry: the backends with a free
slot (dispatch/free.py) through claims, releases, status changes, edits, re-keys, adds and deletes;
the node lists and their union (dispatch/targets.py) through the same; one verdict per node list
(dispatch/needs.py). Each is compared with what a full scan of the registry says."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from swarmkeeper.backends.base import BackendServices, BackendType
from swarmkeeper.backends.prompts import PromptTarget
from swarmkeeper.backends.record import BackendRecord
from swarmkeeper.backends.registry import BackendRegistry
from swarmkeeper.backends.status import BackendStatus
from swarmkeeper.dispatch.free import FreeBackends
from swarmkeeper.dispatch.needs import LATE_INVALID, LateNeeds, needs_of
from swarmkeeper.dispatch.requests import NoBackend, Policy, Refusal, Request
from swarmkeeper.dispatch.scheduler import Scheduler
from swarmkeeper.dispatch.select import has_free_slot
from swarmkeeper.dispatch.targets import Targets
from tests.dispatch_support import Clock, FakeBackend, NoSettings, fake_record

INFO_A = MappingProxyType({"SaveImage": {"input": {"required": {"images": ["IMAGE"]}}, "output": [],
                                         "output_node": True},
                           "Loader": {"input": {"required": {"ckpt_name": [["a.safetensors"]]}}, "output": ["IMAGE"]}})
INFO_B = MappingProxyType({**INFO_A, "Loader": {"input": {"required": {"ckpt_name": [["b.safetensors"]]}},
                                                "output": ["IMAGE"]}})


class ComfyLike(FakeBackend):
    """A fake backend that runs prompts, with a node list (Tracked through ``changed()``)."""

    node_list: Mapping[str, Any] = MappingProxyType({})

    def prompt_target(self) -> PromptTarget:
        return PromptTarget(f"{self.host.id}", "http://127.0.0.1:1", lambda: None, lambda: self.node_list)

    def set_info(self, info: Mapping[str, Any]) -> None:
        self.node_list = info
        self.changed()


COMFY_LIKE = BackendType(id="comfy_like", name="Comfy-like", description="", settings_class=NoSettings,
                         factory=ComfyLike)


def comfy_record(backend_id: int, info: Mapping[str, Any] = INFO_A) -> BackendRecord:
    record = BackendRecord(id=backend_id, type=COMFY_LIKE, settings=NoSettings(),
                           services=BackendServices(data_dir=Path("."), server_id="test"), pool=None,  # type: ignore[arg-type]
                           on_change=lambda record: None)
    record.status = BackendStatus.RUNNING
    record.backend.set_info(info)  # type: ignore[attr-defined]
    return record


def scanned(registry: BackendRegistry) -> list[int]:
    return [record.id for record in registry.all() if has_free_slot(record)]


def indexed(free: FreeBackends) -> list[int]:
    return [record.id for record in free.records()]


def test_the_free_set_follows_claims_releases_status_and_membership() -> None:
    registry = BackendRegistry()
    for backend_id in (3, 1, 2, 0):
        registry.add(fake_record(backend_id, max_usages=2 if backend_id == 2 else 1))
    free = FreeBackends(registry)
    assert indexed(free) == scanned(registry) == [0, 1, 2, 3]
    one, two = registry.get(1), registry.get(2)
    assert one is not None and two is not None
    registry.claim(one)
    registry.claim(two)  # two slots: still free
    assert indexed(free) == scanned(registry) == [0, 2, 3]
    registry.claim(two)
    assert indexed(free) == scanned(registry) == [0, 3]
    registry.release(one)
    assert indexed(free) == scanned(registry) == [0, 1, 3]
    zero = registry.get(0)
    assert zero is not None
    zero.set_status(BackendStatus.LOADING, "Loading...")
    assert indexed(free) == scanned(registry) == [1, 3]
    zero.set_status(BackendStatus.RUNNING)
    zero.enabled = False
    assert indexed(free) == scanned(registry) == [1, 3]
    zero.enabled = True
    zero.reservations = 1
    assert indexed(free) == scanned(registry) == [1, 3]
    zero.reservations = 0
    zero.backend.max_usages = 0  # an edit of the backend: it takes no work now
    assert indexed(free) == scanned(registry) == [1, 3]
    zero.backend.max_usages = 1
    registry.remove(3)
    registry.add(fake_record(7))
    assert indexed(free) == scanned(registry) == [0, 1, 7]


def test_a_re_keyed_backend_moves_in_the_free_set_and_a_new_one_takes_its_old_id() -> None:
    registry = BackendRegistry()
    for backend_id in range(4):
        registry.add(fake_record(backend_id))
    free = FreeBackends(registry)
    assert indexed(free) == [0, 1, 2, 3]
    first = registry.get(0)
    assert first is not None
    registry.rekey(first, 9)
    registry.add(fake_record(0, status=BackendStatus.ERRORED))
    assert indexed(free) == scanned(registry) == [1, 2, 3, 9]
    assert free.records()[-1] is first
    registry.remove(9)
    assert indexed(free) == scanned(registry) == [1, 2, 3]


async def test_the_free_set_matches_a_full_scan_through_random_changes_and_decisions() -> None:
    """Statuses, toggles, claims and releases at random: before each decision the index holds what
    a full scan finds, and the backend granted is one of them."""
    chance = random.Random(15)
    registry = BackendRegistry()
    for backend_id in range(40):
        registry.add(fake_record(backend_id, max_usages=chance.choice((1, 2)), model=chance.choice((None, "m"))))
    scheduler = Scheduler(registry, Policy, clock=Clock())
    held: list[BackendRecord] = []
    for _ in range(400):
        record = chance.choice(registry.all())
        move = chance.random()
        if move < 0.2:
            record.set_status(chance.choice(list(BackendStatus)))
        elif move < 0.3:
            record.enabled = not record.enabled
        elif move < 0.35 and held:
            registry.release(held.pop(chance.randrange(len(held))))
        expected = [r for r in registry.all() if has_free_slot(r)]
        assert list(scheduler.free.records()) == expected
        request = Request(check=lambda r: None, model=chance.choice((None, "m")))
        future = scheduler.submit(request)
        if not future.done():
            scheduler.withdraw(request)  # it waits (every backend able to take it is busy or loading)
        elif future.exception() is None:
            assert future.result().record in expected
            held.append(future.result().record)
        else:
            assert not expected  # it failed: nothing was free


def test_the_union_follows_node_lists_and_is_reused_while_none_changed() -> None:
    registry = BackendRegistry()
    first, second = comfy_record(0, INFO_A), comfy_record(1, INFO_A)
    registry.add(first)
    registry.add(second)
    targets = Targets(registry=registry)
    union = targets.union(registry.all())
    assert union == INFO_A
    registry.claim(first)  # a change that is not a node list's: the same union, not rebuilt
    assert targets.union(registry.all()) is union
    second.backend.set_info(INFO_B)  # type: ignore[attr-defined]
    merged = targets.union(registry.all())
    assert merged["Loader"]["input"]["required"]["ckpt_name"][0] == ["a.safetensors", "b.safetensors"]
    first.enabled = False
    assert targets.union(registry.all()) is INFO_B
    registry.remove(1)
    assert targets.union(registry.all()) == {}
    first.enabled = True
    assert targets.union(registry.all()) is INFO_A


def test_a_node_list_is_read_again_only_when_its_record_changed() -> None:
    registry = BackendRegistry()
    record = comfy_record(0, MappingProxyType({}))
    registry.add(record)
    targets = Targets(registry=registry)
    assert targets.info_of(record) == Refusal("its node list is not read yet", True)
    record.backend.set_info(INFO_A)  # type: ignore[attr-defined]
    assert targets.info_of(record) is INFO_A


def test_a_prompt_is_judged_once_per_node_list() -> None:
    graph = {"1": {"class_type": "Loader", "inputs": {"ckpt_name": "b.safetensors"}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}
    records = [comfy_record(n, INFO_A if n % 2 else INFO_B) for n in range(6)]
    needs = needs_of(graph, INFO_B, Targets().info_of)
    verdicts = [needs(record) for record in records]
    assert verdicts[0] is None and verdicts[2] is None and verdicts[4] is None
    assert verdicts[1] == Refusal("missing ckpt_name 'b.safetensors' (node 1, Loader)")
    assert len(needs._cache) == 2  # two node lists, two verdicts


async def test_a_final_refusal_fails_the_request_though_a_backend_may_come_back() -> None:
    registry = BackendRegistry()
    registry.add(fake_record(0))
    registry.add(fake_record(1, status=BackendStatus.LOADING))
    scheduler = Scheduler(registry, Policy, clock=Clock())
    later = Request(check=lambda record: Refusal("not yet", transient=True))
    assert not scheduler.submit(later).done()  # a transient refusal (and a loading backend): it waits
    scheduler.withdraw(later)
    failed = scheduler.submit(Request(check=lambda record: Refusal("the prompt is invalid", final=True)))
    assert isinstance(failed.exception(), NoBackend) and failed.exception().message == "the prompt is invalid"  # type: ignore[union-attr]


async def test_a_prompt_with_no_node_list_known_waits_then_is_validated_on_the_first_one() -> None:
    registry = BackendRegistry()
    record = comfy_record(0, MappingProxyType({}))
    registry.add(record)
    targets = Targets(registry=registry)
    scheduler = Scheduler(registry, Policy, clock=Clock())
    graph = {"1": {"class_type": "Loader", "inputs": {"ckpt_name": "b.safetensors"}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}
    outputs: list[str] = []
    needs = LateNeeds(frozenset(), (), None, targets.info_of, body={"prompt": graph},
                      union=lambda: targets.union(registry.all()), outputs=outputs)
    future = scheduler.submit(Request(check=needs))
    assert not future.done()  # its node list is not read yet: it waits
    record.backend.set_info(INFO_B)  # type: ignore[attr-defined]
    scheduler.pump(full=True)
    assert future.result().record is record and outputs == ["2"] and needs.classes == {"Loader", "SaveImage"}
    scheduler.release(record)
    wrong = LateNeeds(frozenset(), (), None, targets.info_of, body={"prompt": graph},
                      union=lambda: MappingProxyType({}), outputs=[])
    record.backend.set_info(INFO_A)  # type: ignore[attr-defined]
    failed = scheduler.submit(Request(check=wrong))
    assert failed.exception().message.startswith(LATE_INVALID + "Prompt outputs failed validation")  # type: ignore[union-attr]
