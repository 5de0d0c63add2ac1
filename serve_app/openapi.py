"""The OpenAPI schema as a client needs it: every error status a route can answer with, declared with
its body, and the Bearer token as a security scheme on the routes that need it (so ``/docs`` can send
it: "Authorize"). Derived from the routes themselves, so a new route is documented the same way."""

from __future__ import annotations

import typing
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from .models import CorrectionByIds
from .responses import ErrorResponse, StaleClusteringResponse

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
UPLOADS = ("/episodes/{ep_id}/video", "/shows/{show_id}/cast/{cast_id}/faces")
MEANING = {
    400: "malformed multipart body (a boundary other than the header's, an oversized part header, a body cut off)",
    401: "no or a wrong API token (the server has one): send Authorization: Bearer <token>",
    404: "an unknown episode, run, identity, track, face, job, show or cast member",
    409: "the current state does not allow it: a stage not run yet, a job in flight on the run, another show's cast member",
    413: "the upload is over the size limit",
    415: "the body is neither JSON nor multipart",
    422: "a bad id, parameter or body (the detail names the fields)",
}


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every route, through included routers (FastAPI keeps those as one entry each)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif getattr(route, "original_router", None) is not None:
            yield from api_routes(route.original_router.routes)
        elif getattr(route, "routes", None) is not None:
            yield from api_routes(route.routes)


def error_codes(route: APIRoute) -> list[int]:
    """The error statuses ``route`` can answer with."""
    methods = route.methods or set()
    mutating = bool(methods & MUTATING)
    codes = {422}
    if "{" in route.path:
        codes.add(404)
    if mutating:
        codes |= {401, 409, 415}
    elif route.path.startswith("/episodes/{ep_id}/"):
        codes.add(409)  # a run's stage that has not run yet
    if route.path in UPLOADS and "POST" in methods:
        codes |= {400, 413}
    return sorted(codes)


def _stale(route: APIRoute) -> bool:
    """Whether the route takes a correction by ids (409 with the current clustering version when stale)."""
    hints = typing.get_type_hints(route.endpoint)
    return any(isinstance(t, type) and issubclass(t, CorrectionByIds) for t in hints.values())


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the schema with errors and security declared (built once)."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = spec.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas["ErrorResponse"] = ErrorResponse.model_json_schema()
        schemas["StaleClusteringResponse"] = StaleClusteringResponse.model_json_schema()
        components["securitySchemes"] = {
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": "the API token (SCREENALYTICS_API_TOKEN); needed by mutating requests when set"}
        }
        for route in api_routes(app.routes):
            if not route.include_in_schema:
                continue
            for method in route.methods or ():
                operation = spec["paths"].get(route.path, {}).get(method.lower())
                if operation is None:
                    continue
                responses = operation.setdefault("responses", {})
                for code in error_codes(route):
                    model = "StaleClusteringResponse" if code == 409 and _stale(route) else "ErrorResponse"
                    description = MEANING[code] + ("; or the run was re-clustered since the ids were read" if model == "StaleClusteringResponse" else "")
                    body = {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}}}
                    if code == 422 or str(code) not in responses:  # our 422 body is {"detail": ...}, not FastAPI's (api._validation_errors)
                        responses[str(code)] = body
                if method in MUTATING:
                    operation["security"] = [{"bearerAuth": []}]
        app.openapi_schema = spec
        return spec

    app.openapi = schema  # type: ignore[method-assign]
