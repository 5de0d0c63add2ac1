"""Shows and their cast members."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from pipelines.corrections import load_corrections
from pipelines.ids import parse_ep_id
from pipelines.layout import RunLayout, episodes_with_runs, runs_prefix
from pipelines.review.errors import Conflict
from pipelines.review.view import load_view

from ..context import CAST, SHOW, ApiContext, Ctx
from ..models import CastCreateRequest, CastUpdateRequest, ShowCreateRequest

router = APIRouter(tags=["shows"])


@router.get("/shows")
def list_shows(ctx: Ctx) -> dict:
    return {"shows": ctx.store.list_shows()}


@router.post("/shows", status_code=201)
def create_show(req: ShowCreateRequest, ctx: Ctx) -> dict:
    return {"show_id": req.show_id, "created": ctx.store.create_show(req.show_id, req.name)}


@router.get("/shows/{show_id}/cast")
def list_cast(ctx: Ctx, show_id: str = SHOW) -> dict:
    ctx.show(show_id)
    return {"show_id": show_id, "cast": ctx.store.list_cast(show_id)}


@router.post("/shows/{show_id}/cast", status_code=201)
def create_cast(req: CastCreateRequest, ctx: Ctx, show_id: str = SHOW) -> dict:
    ctx.show(show_id)
    existing = ctx.store.get_cast(req.cast_id)
    if existing and existing["show_id"] != show_id:
        raise HTTPException(409, f"cast id {req.cast_id} belongs to show {existing['show_id']}")
    return {"cast_id": req.cast_id, "created": ctx.store.create_cast(req.cast_id, show_id, req.name)}


@router.get("/shows/{show_id}/cast/{cast_id}")
def get_cast(ctx: Ctx, show_id: str = SHOW, cast_id: str = CAST) -> dict:
    return ctx.cast_member(show_id, cast_id)


@router.patch("/shows/{show_id}/cast/{cast_id}")
def update_cast(req: CastUpdateRequest, ctx: Ctx, show_id: str = SHOW, cast_id: str = CAST) -> dict:
    ctx.cast_member(show_id, cast_id)
    ctx.store.update_cast(cast_id, req.name)
    return ctx.cast_member(show_id, cast_id)


def runs_naming(ctx: ApiContext, show_id: str, cast_id: str) -> list[str]:
    """``ep_id/run_id`` of every run of the show whose current corrections name ``cast_id``."""
    found = []
    for ep_id in episodes_with_runs(ctx.storage):
        if parse_ep_id(ep_id).show != show_id:
            continue
        for run_id in ctx.storage.children(runs_prefix(ep_id)):
            layout = RunLayout(ep_id, run_id)
            if not any(c.cast_id == cast_id for c in load_corrections(ctx.storage, layout).corrections):
                continue
            try:
                a = load_view(ctx.storage, layout).resolved.assignments
            except (Conflict, FileNotFoundError):
                continue
            if cast_id in a.manual_assignments.values() or cast_id in a.track_overrides.values():
                found.append(f"{ep_id}/{run_id}")
    return found


@router.delete("/shows/{show_id}/cast/{cast_id}")
def delete_cast(ctx: Ctx, show_id: str = SHOW, cast_id: str = CAST) -> dict:
    """Refused (409) while any run's corrections assign this cast member: unassign first."""
    ctx.cast_member(show_id, cast_id)
    runs = runs_naming(ctx, show_id, cast_id)
    if runs:
        raise HTTPException(409, f"cast member {cast_id} is assigned in {', '.join(runs[:5])}{' ...' if len(runs) > 5 else ''}; unassign it first")
    return {"cast_id": cast_id, "deleted": ctx.store.delete_cast(cast_id)}
