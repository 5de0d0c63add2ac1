"""Shows, their cast members, each show's facebank and its season screen-time table.

Shows and cast live in the data dir (``pipelines.shows.roster``), so the CLI and catalog runs see the
same cast as the API.
"""

from __future__ import annotations

from typing import Literal

import ray
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from pipelines.ids import parse_ep_id
from pipelines.schemas import CastMember, FacebankEntry
from pipelines.service import (
    SEASON_COLUMNS,
    Conflict,
    RunLayout,
    bank,
    csv_text,
    episodes_with_runs,
    facebank,
    facebank_chip_key,
    load_corrections,
    load_view,
    resolve_config,
    roster,
    runs_prefix,
    season_table,
)

from ..caching import cached_bytes
from ..context import CAST, ENTRY, RUN_Q, SHOW, ApiContext, Ctx
from ..models import CastCreateRequest, CastUpdateRequest, ShowCreateRequest
from ..responses import CastCreated, CastDeleted, CastFaces, CastList, FacebankView, FaceDeleted, FacesAdded, SeasonTable, ShowCreated, ShowList, binary
from ..uploads import receive_small_files

router = APIRouter(tags=["shows"])
PHOTO_UPLOAD_LIMIT = 64 * 1024 * 1024


@router.get("/shows", response_model=ShowList)
def list_shows(ctx: Ctx) -> dict:
    return {"shows": [s.model_dump() for s in roster.list_shows(ctx.storage)]}


@router.post("/shows", status_code=201, response_model=ShowCreated)
def create_show(req: ShowCreateRequest, ctx: Ctx) -> dict:
    return {"show_id": req.show_id, "created": roster.create_show(ctx.storage, req.show_id, req.name)}


@router.get("/shows/{show_id}/cast", response_model=CastList)
def list_cast(ctx: Ctx, show_id: str = SHOW) -> dict:
    ctx.show(show_id)
    return {"show_id": show_id, "cast": [m.model_dump() for m in roster.list_cast(ctx.storage, show_id)]}


@router.post("/shows/{show_id}/cast", status_code=201, response_model=CastCreated)
def create_cast(req: CastCreateRequest, ctx: Ctx, show_id: str = SHOW) -> dict:
    ctx.show(show_id)
    try:
        return {"cast_id": req.cast_id, "created": roster.create_cast(ctx.storage, show_id, req.cast_id, req.name)}
    except roster.CastIdTaken as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/shows/{show_id}/cast/{cast_id}", response_model=CastMember)
def get_cast(ctx: Ctx, show_id: str = SHOW, cast_id: str = CAST) -> dict:
    return ctx.cast_member(show_id, cast_id)


@router.patch("/shows/{show_id}/cast/{cast_id}", response_model=CastMember)
def update_cast(req: CastUpdateRequest, ctx: Ctx, show_id: str = SHOW, cast_id: str = CAST) -> dict:
    member = roster.get_cast(ctx.storage, show_id, cast_id)
    ctx.cast_member(show_id, cast_id)
    assert member is not None
    return roster.rename_cast(ctx.storage, member, req.name).model_dump()


def runs_naming(ctx: ApiContext, show_id: str, cast_id: str) -> list[str]:
    """``ep_id/run_id`` of every run of the show whose current corrections name ``cast_id``."""
    found = []
    for ep_id in episodes_with_runs(ctx.storage):
        if parse_ep_id(ep_id).show != show_id:
            continue
        for run_id in ctx.storage.children(runs_prefix(ep_id)):
            layout = RunLayout(ep_id, run_id)
            if not any(getattr(c, "cast_id", None) == cast_id for c in load_corrections(ctx.storage, layout).corrections):
                continue
            try:
                a = load_view(ctx.storage, layout).resolved.assignments
            except (Conflict, FileNotFoundError):
                continue
            if cast_id in a.manual_assignments.values() or cast_id in a.track_overrides.values():
                found.append(f"{ep_id}/{run_id}")
    return found


@router.delete("/shows/{show_id}/cast/{cast_id}", response_model=CastDeleted)
def delete_cast(ctx: Ctx, show_id: str = SHOW, cast_id: str = CAST) -> dict:
    """Refused (409) while any run's corrections assign this cast member: unassign first. The member's
    photo faces leave the facebank with them."""
    ctx.cast_member(show_id, cast_id)
    runs = runs_naming(ctx, show_id, cast_id)
    if runs:
        raise HTTPException(409, f"cast member {cast_id} is assigned in {', '.join(runs[:5])}{' ...' if len(runs) > 5 else ''}; unassign it first")
    facebank.remove_entries(ctx.storage, show_id, [e.entry_id for e in facebank.list_entries(ctx.storage, show_id) if e.cast_id == cast_id])
    return {"cast_id": cast_id, "deleted": roster.delete_cast(ctx.storage, show_id, cast_id)}


# --- facebank -------------------------------------------------------------------------------------


def _entry_view(show_id: str, entry: FacebankEntry) -> dict:
    data = entry.model_dump(exclude={"embedding", "chip_key"})
    data["chip_url"] = f"/shows/{show_id}/facebank/{entry.entry_id}.jpg" if entry.chip_key else None
    return data


@router.get("/shows/{show_id}/facebank", response_model=FacebankView)
def get_facebank(ctx: Ctx, show_id: str = SHOW) -> dict:
    """Every reference face of the show (cast and not-cast), without embeddings."""
    ctx.show(show_id)
    entries = facebank.list_entries(ctx.storage, show_id)
    return {"show_id": show_id, "faces": [_entry_view(show_id, e) for e in entries], "models": facebank.models_in_bank(ctx.storage, show_id)}


@router.get("/shows/{show_id}/cast/{cast_id}/faces", response_model=CastFaces)
def cast_faces(ctx: Ctx, show_id: str = SHOW, cast_id: str = CAST) -> dict:
    ctx.cast_member(show_id, cast_id)
    entries = [e for e in facebank.list_entries(ctx.storage, show_id) if e.cast_id == cast_id]
    return {"show_id": show_id, "cast_id": cast_id, "faces": [_entry_view(show_id, e) for e in entries]}


@router.post("/shows/{show_id}/cast/{cast_id}/faces", status_code=201, response_model=FacesAdded)
async def add_cast_faces(
    request: Request, ctx: Ctx, show_id: str = SHOW, cast_id: str = CAST, pick: Literal["only", "largest"] = Query("only"), profile: str | None = Query(None)
) -> dict:
    """Reference photos (multipart, one ``files`` part each): one face per photo, detected, aligned and
    embedded with the pipeline's models. 422 names a photo with no face or several (``pick=largest``
    takes the largest). The show and cast member are created when missing."""
    files = await receive_small_files(request.headers.get("content-type", ""), request.stream(), PHOTO_UPLOAD_LIMIT)
    # Decoding photos and waiting on the facebank actor block: a worker thread does it, never the event loop.
    return await run_in_threadpool(_add_photos, ctx, show_id, cast_id, files, pick, profile)


def _add_photos(ctx: ApiContext, show_id: str, cast_id: str, files: list[tuple[str, bytes]], pick: Literal["only", "largest"], profile: str | None) -> dict:
    try:
        models = resolve_config(profile, None).config.models
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    other = roster.find_cast(ctx.storage, cast_id)
    if other is not None and other.show_id != show_id:
        raise HTTPException(409, f"cast id {cast_id} belongs to show {other.show_id}")

    def embed(image, threshold):  # type: ignore[no-untyped-def]  # the show's actor, once the photos passed their checks
        return ray.get(bank.actor(show_id).embed_photo.remote(models.model_dump(), image, threshold))

    photos = [bank.PhotoInput(name, data) for name, data in files]
    try:
        added = bank.add_photos(ctx.storage, show_id, cast_id, photos, models, pick=pick, embed=embed)
    except bank.PhotoError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"show_id": show_id, "cast_id": cast_id, "added": [_entry_view(show_id, e) for e in added]}


@router.get("/shows/{show_id}/facebank/{entry_id}.jpg", response_class=Response, responses=binary("image/jpeg", "the reference face's aligned chip"))
def facebank_chip(request: Request, ctx: Ctx, show_id: str = SHOW, entry_id: str = ENTRY) -> Response:
    """A reference face's aligned chip (an entry's chip never changes: cached for good)."""
    key = facebank_chip_key(show_id, entry_id)
    if not ctx.storage.exists(key):
        raise HTTPException(404, f"no chip for facebank face {entry_id}")
    return cached_bytes(request, ctx.storage.read_bytes(key), "image/jpeg", immutable=True)


@router.delete("/shows/{show_id}/facebank/{entry_id}", response_model=FaceDeleted)
def delete_facebank_face(ctx: Ctx, show_id: str = SHOW, entry_id: str = ENTRY) -> dict:
    """Remove one reference face (a face a reviewer confirmed comes back if its run is corrected again)."""
    ctx.show(show_id)
    if facebank.read_entry(ctx.storage, show_id, entry_id) is None:
        raise HTTPException(404, f"facebank face {entry_id} not found in show {show_id}")
    return {"entry_id": entry_id, "deleted": facebank.remove_entries(ctx.storage, show_id, [entry_id])}


# --- season ---------------------------------------------------------------------------------------


@router.get("/shows/{show_id}/screentime", response_model=SeasonTable, responses=binary("text/csv", "with format=csv: the rows as CSV"))
def season_screentime(ctx: Ctx, show_id: str = SHOW, run_id: str = RUN_Q, format: Literal["json", "csv"] = Query("json")) -> Response:
    """Episode x cast member: seconds, share of the episode and how each was named (JSON or CSV)."""
    ctx.show(show_id)
    table = season_table(ctx.storage, show_id, run_id)
    if format == "csv":
        return Response(
            csv_text(SEASON_COLUMNS, table["rows"]), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{show_id}_season.csv"'}
        )
    return JSONResponse(table)
