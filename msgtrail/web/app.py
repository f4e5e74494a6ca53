"""The ASGI application: routers, and the one place errors become HTTP answers."""

from __future__ import annotations

import atexit
import logging
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp

from msgtrail import __version__
from msgtrail.errors import MsgtrailError
from msgtrail.runtime import allocators, logs, metrics
from msgtrail.runtime import worker as worker_mod
from msgtrail.runtime.worker import Worker
from msgtrail.service import Service
from msgtrail.settings import Settings
from msgtrail.web.api import (
    activity_exports,
    audit,
    docs_page,
    events,
    exports,
    files,
    health,
    history,
    notifications,
    openapi,
    webhooks,
)
from msgtrail.web.dashboard import app_pages
from msgtrail.web.dashboard import views as dashboard
from msgtrail.web.draining import Drain
from msgtrail.web.request_log import RequestLog

log = logging.getLogger("msgtrail")


# OneSignal's routes, served at the root and under /api/v1.
API_ROUTERS = (notifications.router, events.router, exports.router, history.router,
               activity_exports.router, webhooks.router, audit.router)


def app_from_env() -> ASGIApp:
    """The service built from MSGTRAIL_* variables: the entry point of each process
    when `msgtrail serve --processes N` runs several."""
    from msgtrail.db.engine import make_engine

    allocators.bound()
    logs.configure(os.environ.get("MSGTRAIL_LOG_LEVEL", "info"),
                   os.environ.get("MSGTRAIL_LOG_FORMAT", "console"))
    # (The parent chose the metrics directory; each process records its own memory.)
    metrics.watch_memory()
    atexit.register(metrics.process_exit)
    settings = Settings()
    return served(create_app(settings, make_engine(settings.resolved_database_url(),
                                                   settings.workers)))


def error_response(exc: Exception) -> JSONResponse:
    """The answer to an exception: OneSignal's envelope, with the status it maps to."""
    if isinstance(exc, MsgtrailError):
        return JSONResponse({"errors": exc.messages, **exc.extra},
                            status_code=exc.status_code, headers=exc.headers)
    if isinstance(exc, OperationalError):
        log.warning("database unavailable: %s", exc)
        return JSONResponse({"errors": ["Service temporarily unavailable"]}, status_code=503,
                            headers={"Retry-After": "5"})
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse({"errors": ["Internal server error"]}, status_code=500)


def served(app: FastAPI) -> ASGIApp:
    """The ASGI application a server runs: provider webhooks go straight to their
    handler, everything else through FastAPI (see webhooks.FastPath)."""
    service = app.state.service
    return RequestLog(Drain(webhooks.FastPath(app, error_response), service.shutdown),
                      service.settings.log_requests)


async def _error_handler(_req: Request, exc: Exception) -> JSONResponse:
    return error_response(exc)


def create_app(settings: Settings, engine: Engine, workers: int | None = None) -> FastAPI:
    """The service; `workers` in-process background workers run beside the API."""
    count = settings.workers if workers is None else workers

    service = Service(settings, engine)
    metrics.watch_pool(engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        pool = [Worker(settings, engine, service.store, name=f"inproc-{i}")
                for i in range(count)]
        for worker in pool:
            worker.start()

        def wake_workers() -> None:
            for worker in pool:
                worker.wake()

        service.wake_workers = wake_workers
        service.workers_stalled = lambda: [w for w in map(Worker.stalled, pool) if w]
        service.shutdown.install(settings.shutdown_delay_seconds)
        yield
        # uvicorn has stopped accepting and finished the requests in flight.
        worker_mod.stop(pool, settings.shutdown_grace_seconds, hurry=service.shutdown.hurry)
        service.close()

    # /docs is msgtrail's own (docs_page: no CDN); ReDoc would load from one.
    app = FastAPI(title="msgtrail", version=__version__, lifespan=lifespan,
                  description="Per-recipient message activity and its exports.",
                  docs_url=None, redoc_url=None)
    # The one thing on app.state: routes and pages reach it through `deps.service`.
    app.state.service = service
    for router in API_ROUTERS:
        app.include_router(router)
        # OneSignal's former base URL (https://onesignal.com/api/v1), which older SDKs
        # and community libraries still call: they work by changing only the host.
        app.include_router(router, prefix="/api/v1", include_in_schema=False)
    app.include_router(dashboard.router)
    app.include_router(app_pages.router)
    app.mount("/static", dashboard.static_files(), name="static")
    app.include_router(files.router)
    app.include_router(health.router)
    app.include_router(docs_page.router)
    app.mount("/docs/assets", docs_page.assets(), name="docs-assets")
    openapi.install(app)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_req: Request, exc: RequestValidationError) -> JSONResponse:
        messages = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ())
                             if p not in ("body", "query", "path"))
            messages.append(f"{where or 'body'}: {err.get('msg')}")
        return JSONResponse({"errors": messages}, status_code=400)

    @app.exception_handler(HTTPException)
    async def _http_error(_req: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"errors": [str(exc.detail)]}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    for kind in (MsgtrailError, OperationalError, Exception):
        app.add_exception_handler(kind, _error_handler)
    return app
