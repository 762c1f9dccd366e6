"""(swarmkeeper) Reading the audit log."""

from __future__ import annotations

from typing import Annotated

from swarmkeeper.api.permissions import VIEW_AUDIT_LOG
from swarmkeeper.api.routes import APICall, RouteTable
from swarmkeeper.types import JSONObject

routes = RouteTable()


@routes.route("ListAuditLog", flag=VIEW_AUDIT_LOG, user_update=False, returns="""
    "entries": [{"id": 42, "time": 1767225600.0, "time_text": "2026-01-01 00:00:00", "user": "alice",
                 "route": "EditBackend", "backend_id": "0", "new_backend_id": null, "address": "10.0.0.5",
                 "changes": {"backend_id": 0, "title": "GPU 0", "settings": {"Token": "\\t<secret>"}},
                 "outcome": "ok"}]
""")
async def list_audit_log(
    call: APICall,
    backend: Annotated[str, "Only entries about this backend id (including calls on 'all' backends)."] = "",
    user: Annotated[str, "Only entries by this user."] = "",
    limit: Annotated[int, "How many entries at most (1 to 1000)."] = 100,
    before: Annotated[int, "Only entries older than this entry id (to page back)."] = 0,
) -> JSONObject:
    """Who changed what, newest first: every changing call (backends, users, keys), logins and lockouts,
    with secrets redacted."""
    entries = await call.services.accounts.audit.query(
        backend=backend or None, user=user or None, limit=limit, before=before or None)
    return {"entries": [entry.describe() for entry in entries]}
