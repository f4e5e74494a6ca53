"""An app's audit trail: who did what to it (`msgtrail.audit`), newest first."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from msgtrail.web.api.openapi import errors
from msgtrail.web.deps import Svc, caller

router = APIRouter(tags=["audit"])


@router.get("/apps/{app_id}/audit", summary="An app's audit trail",
            responses=errors(400, 401, 404, 503))
def audit_trail(request: Request, svc: Svc, app_id: str,
                limit: int = Query(50, ge=1, le=500),
                before: int | None = Query(None, ge=1, le=2**63 - 1,
                                           description="`next_before` of the previous "
                                                       "page")) -> dict[str, Any]:
    """Keys issued, rotated and revoked, connectors and settings changed, exports asked
    for, files downloaded and dashboard sign-ins, newest first: `{"events": [{"id",
    "at", "action", "via", "key_prefix", "remote_addr", "detail"}…], "next_before"}`.
    Pass `next_before` back as `before` for the next page; it is null on the last."""
    events, next_before = svc.audit_trail(caller(request, svc, app_id), limit, before)
    return {"events": events, "next_before": next_before}
