"""Health, as orchestrators ask for it: `/livez` (the process answers; restart it if
not), `/readyz` (it can do its work; send it traffic only then) and `/healthz` (the
database answers; kept as it was)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from msgtrail.runtime import metrics
from msgtrail.web.api.openapi import errors
from msgtrail.web.deps import Svc

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Health check")
def healthz(svc: Svc) -> JSONResponse:
    error = svc.database_error()
    if error is not None:
        return JSONResponse({"status": "unavailable", "errors": [error]}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/livez", summary="Liveness: the process answers")
async def livez() -> JSONResponse:
    # Asks nothing of the database or the store: a process is not restarted for
    # their trouble, which /readyz reports.
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="Readiness: database, migrations, storage, workers",
            responses=errors(503))
def readyz(svc: Svc) -> JSONResponse:
    problems = svc.not_ready()
    if problems:
        return JSONResponse({"status": "unavailable", "errors": problems}, status_code=503,
                            headers={"Retry-After": "5"})
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Prometheus metrics of every process of this machine",
            response_class=Response)
async def metrics_page(svc: Svc) -> Response:
    body, content_type = await run_in_threadpool(
        metrics.exposition, svc.engine, svc.settings.activity_retention_days)
    return Response(body, media_type=content_type)
