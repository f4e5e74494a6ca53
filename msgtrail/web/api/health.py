"""Liveness that means something: the database answers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from msgtrail.web.deps import Svc

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Health check")
def healthz(svc: Svc) -> JSONResponse:
    error = svc.database_error()
    if error is not None:
        return JSONResponse({"status": "unavailable", "errors": [error]}, status_code=503)
    return JSONResponse({"status": "ok"})
