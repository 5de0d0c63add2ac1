"""Episodes: create, read, update, delete, upload the video, and follow their jobs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from pipelines.ids import InvalidIdError, make_ep_id, parse_ep_id
from pipelines.service import VideoError, episode_prefixes, facebank, probe_video, source_video_keys, uploaded_video_key

from ..context import EP, ApiContext, Ctx
from ..models import (
    EpisodeCreateRequest,
    EpisodeCreateResponse,
    EpisodeDetailResponse,
    EpisodeListResponse,
    EpisodeUpdateRequest,
)
from ..responses import EpisodeDeleted, EpisodeProgress, binary
from ..sse import job_events
from ..uploads import ReceivedFile, receive_file

router = APIRouter(tags=["episodes"])


def episode_detail(ctx: Ctx, ep_id: str) -> dict[str, Any]:
    ep = ctx.episode(ep_id)
    v2, v1 = source_video_keys(ep_id)
    return {
        **ep,
        "s3": {"bucket": ctx.settings.s3_bucket, "v2_key": v2, "v2_exists": ctx.s3_exists(v2), "v1_key": v1, "v1_exists": ctx.s3_exists(v1)},
        "local": {"key": ep.get("video_key"), "exists": bool(ep.get("video_key")) and ctx.storage.exists(ep["video_key"])},
    }


@router.get("/episodes", response_model=EpisodeListResponse)
def list_episodes(ctx: Ctx) -> dict:
    """Every episode: created here, or found with runs in the data dir (processed by the CLI or a catalog)."""
    ctx.adopt_episodes()
    return {"episodes": ctx.store.list_episodes()}


@router.post("/episodes", response_model=EpisodeCreateResponse, status_code=201)
def create_episode(req: EpisodeCreateRequest, ctx: Ctx) -> dict:
    try:
        ep_id = make_ep_id(req.show_slug_or_id, req.season_number, req.episode_number)
    except InvalidIdError as exc:
        raise HTTPException(422, str(exc)) from None
    created = ctx.store.create_episode(ep_id, req.show_slug_or_id.lower(), req.season_number, req.episode_number, req.title, req.air_date)
    return {"ep_id": ep_id, "created": created}


@router.get("/episodes/{ep_id}", response_model=EpisodeDetailResponse)
def get_episode(ctx: Ctx, ep_id: str = EP) -> dict:
    return episode_detail(ctx, ep_id)


@router.patch("/episodes/{ep_id}", response_model=EpisodeDetailResponse)
def update_episode(req: EpisodeUpdateRequest, ctx: Ctx, ep_id: str = EP) -> dict:
    ctx.episode(ep_id)
    ctx.store.update_episode(ep_id, **req.model_dump(exclude_unset=True))
    return episode_detail(ctx, ep_id)


@router.delete("/episodes/{ep_id}", response_model=EpisodeDeleted)
def delete_episode(ctx: Ctx, ep_id: str = EP, delete_artifacts: bool = Query(False)) -> dict:
    ctx.episode(ep_id)
    active = ctx.store.active_jobs(ep_id)
    if active:
        raise HTTPException(409, f"episode {ep_id} has a job in flight ({active[0]['job_id']}); cancel it first")
    removed = 0
    if delete_artifacts:
        for prefix in episode_prefixes(ep_id):
            removed += ctx.storage.delete_prefix(prefix)
        show = parse_ep_id(ep_id).show  # faces a reviewer confirmed in it leave the show's facebank too
        removed += facebank.remove_entries(ctx.storage, show, [e.entry_id for e in facebank.list_entries(ctx.storage, show) if e.ep_id == ep_id])
    ctx.store.delete_episode(ep_id, artifacts_kept=not delete_artifacts)
    return {"ep_id": ep_id, "deleted": True, "artifacts_removed": removed}


@router.post(
    "/episodes/{ep_id}/video",
    response_model=EpisodeDetailResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}}
            },
        }
    },
)
async def upload_video(request: Request, ctx: Ctx, ep_id: str = EP) -> dict:
    """Upload the episode's video (multipart, part ``file``), streamed to disk; it is checked to be a
    complete, decodable video before it replaces the episode's video. Only the body's streaming runs on
    the event loop: lookups, probing and storing run in a worker thread, so other requests never wait."""
    await run_in_threadpool(ctx.episode, ep_id)
    length = request.headers.get("content-length")
    received = await receive_file(
        request.headers.get("content-type", ""), request.stream(), int(length) if length and length.isdigit() else None, ctx.settings.max_upload_bytes
    )
    return await run_in_threadpool(_store_video, ctx, ep_id, received)


def _store_video(ctx: ApiContext, ep_id: str, received: ReceivedFile) -> dict:
    try:
        try:
            probe_video(received.path)
        except VideoError as exc:
            raise HTTPException(422, str(exc).replace(str(received.path), received.filename)) from None
        ctx.storage.upload_file(uploaded_video_key(ep_id), received.path)
    finally:
        received.path.unlink(missing_ok=True)
    ctx.store.update_episode(ep_id, video_key=uploaded_video_key(ep_id))
    return episode_detail(ctx, ep_id)


@router.get("/episodes/{ep_id}/progress", response_model=EpisodeProgress)
def episode_progress(ctx: Ctx, ep_id: str = EP) -> dict:
    ctx.episode(ep_id)
    latest = ctx.store.list_jobs(ep_id=ep_id, limit=1)
    if not latest:
        return {"ep_id": ep_id, "job_id": None, "state": None, "progress": None}
    job = latest[0]
    return {"ep_id": ep_id, "job_id": job["job_id"], "job_type": job["job_type"], "state": job["state"], "progress": job["progress"]}


@router.get(
    "/episodes/{ep_id}/events", response_class=StreamingResponse, responses=binary("text/event-stream", "server-sent events: the job's progress until it ends")
)
def episode_events(ctx: Ctx, ep_id: str = EP) -> StreamingResponse:
    """Server-sent events: progress of the episode's latest job, until it ends."""
    ctx.episode(ep_id)
    latest = ctx.store.list_jobs(ep_id=ep_id, limit=1)
    if not latest:
        raise HTTPException(404, f"no job for episode {ep_id}")
    return StreamingResponse(job_events(ctx.store, latest[0]["job_id"]), media_type="text/event-stream")
