"""The Swarm-API backend type (``swarmswarmbackend``): SwarmUI's way of chaining servers across
machines. The real backend is a :class:`~swarmkeeper.backends.swarm_parent.SwarmParent`; the
non-real children it spawns, one per running remote backend, are
:class:`~swarmkeeper.backends.swarm_child.SwarmChild` of the same type (so a SwarmUI that uses us
as its remote sees them as ``swarmswarmbackend`` entries, which its AllowForwarding setting relies on).
"""

from __future__ import annotations

from swarmkeeper.backends.base import Backend, BackendHost, BackendType
from swarmkeeper.backends.swarm_child import SwarmChild
from swarmkeeper.backends.swarm_parent import SwarmParent
from swarmkeeper.backends.swarm_settings import TYPE_ID, SwarmSettings


def swarm_backend(host: BackendHost[SwarmSettings]) -> Backend[SwarmSettings]:
    """A parent for a real backend (or a control instance an autoscaling backend spawned for a
    worker), a child for one its parent spawned."""
    return SwarmParent(host) if host.real or host.control else SwarmChild(host)


SWARM_TYPE: BackendType[SwarmSettings] = BackendType(
    id=TYPE_ID, name="Swarm-API-Backend", description="Connect SwarmUI to another instance of SwarmUI as a backend.",
    settings_class=SwarmSettings, factory=swarm_backend, fast_load=True, standard=True)
