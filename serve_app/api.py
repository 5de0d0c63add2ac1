"""The FastAPI application: one router per resource, the guard in front, errors as ``{"detail": ...}``.

``build_app(settings)`` builds it; :mod:`serve_app.app` serves it through Ray Serve, and the same factory
runs under uvicorn or a TestClient (routes that start jobs need a running Ray). Errors: 400 a host not
allowed, 401/403 a mutating request without the token or from another origin, 404 unknown episode, run,
track or job, 409 a stage whose inputs are missing (named), 413/415 bad uploads, 422 bad ids or parameters.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pipelines.ids import InvalidIdError
from pipelines.service import ConfigError, Conflict, NotFound, StaleClustering
from pipelines.storage import open_storage

from . import openapi
from .context import ApiContext
from .review_ui import pages as review_pages
from .routers import compat, corrections, episodes, jobs, runs, shows, system
from .security import Guard
from .security import router as auth_router
from .settings import ApiSettings
from .state import StateStore

MAX_ECHO_CHARS = 200


def _echo(value: Any) -> Any:
    """A request value fit to show back in an error: finite, and short."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_ECHO_CHARS else text[:MAX_ECHO_CHARS] + f"... ({len(text)} chars)"


def _validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))[:500], "type": e.get("type"), "input": _echo(e.get("input"))} for e in errors[:20]]


def build_app(settings: ApiSettings) -> FastAPI:
    app = FastAPI(title="Screenalytics", version="0.1.0", description="Who is on screen, and for how long, in TV episodes.")
    app.state.ctx = ApiContext(settings=settings, storage=open_storage(settings.data_uri), store=StateStore(settings.db_path))
    app.state.ctx.move_legacy_roster()
    for module in (system, episodes, jobs, runs, corrections, shows, review_pages):
        app.include_router(module.router)
    if settings.compat_routes:
        app.include_router(compat.router)
    app.include_router(auth_router)
    app.add_middleware(Guard, settings=settings)
    openapi.install(app)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_errors(list(exc.errors()))}, status_code=422)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def conflict(request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(StaleClustering)
    async def stale_clustering(request: Request, exc: StaleClustering) -> JSONResponse:
        # The current version beside the detail (and as the ETag), so a client can reload and retry.
        return JSONResponse({"detail": str(exc), "cluster_version": exc.current}, status_code=409, headers={"ETag": f'"{exc.current}"'})

    @app.exception_handler(InvalidIdError)
    @app.exception_handler(ConfigError)
    async def invalid_value(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    return app
