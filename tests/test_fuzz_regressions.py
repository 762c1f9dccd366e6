"""What fuzzing found, kept as plain tests."""

from __future__ import annotations

from tests.servers import APIClient


async def test_an_answer_echoing_an_integer_past_64_bits(app_client: APIClient) -> None:
    """The audit log records the request body; a 70-bit integer in it broke ListAuditLog's answer
    (orjson writes 64-bit integers only) with internal_error."""
    await app_client.error("ToggleBackend", backend_id=0, enabled=True, junk=2**70)
    entries = (await app_client.ok("ListAuditLog"))["entries"]
    assert entries[0]["route"] == "ToggleBackend" and entries[0]["changes"]["junk"] == 2**70
