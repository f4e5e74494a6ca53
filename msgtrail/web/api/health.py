"""Liveness that means something: the database answers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Health check")
def healthz(request: Request) -> JSONResponse:
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            conn.rollback()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the database is unhealthy
        return JSONResponse({"status": "unavailable", "errors": [str(exc)]}, status_code=503)
    return JSONResponse({"status": "ok"})
