"""An async client for ComfyUI's server protocol: HTTP routes over httpx, events over websockets.

It knows ComfyUI's wire format and nothing of swarmkeeper's registry. Every library error is
turned into :mod:`swarmkeeper.clients.errors` in one place, :func:`map_errors`, so callers catch
``ComfyError`` and show its ``message``. What a real ComfyUI sends is described in
``shared/reference/comfyui-api.md``::

    async with ComfyClient("http://127.0.0.1:8188") as comfy:
        async with comfy.connect_events(client_id) as events:
            queued = await comfy.queue_prompt(graph, client_id)
            async for event in events:
                if isinstance(event, dict) and event["type"] == "execution_success":
                    break
"""

from swarmkeeper.clients.comfyui.address import Address
from swarmkeeper.clients.comfyui.boundary import MIB, map_errors
from swarmkeeper.clients.comfyui.client import MAX_FILE_BYTES, MAX_JSON_BYTES, ComfyClient, SentPrompt
from swarmkeeper.clients.comfyui.events import (
    IMAGE_FORMATS,
    TYPE_PREFIX,
    BinaryEvent,
    BinaryEventType,
    ComfyEvent,
    ComfyEvents,
    JSONObject,
    parse_text_event,
    peek_type,
)
from swarmkeeper.clients.comfyui.feed import EventFeed, FrameCallback

__all__ = [
    "IMAGE_FORMATS",
    "MAX_FILE_BYTES",
    "MAX_JSON_BYTES",
    "MIB",
    "TYPE_PREFIX",
    "Address",
    "BinaryEvent",
    "BinaryEventType",
    "ComfyClient",
    "ComfyEvent",
    "ComfyEvents",
    "EventFeed",
    "FrameCallback",
    "JSONObject",
    "SentPrompt",
    "map_errors",
    "parse_text_event",
    "peek_type",
]
