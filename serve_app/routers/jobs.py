"""Jobs: start a stage (or a group of stages) on an episode run, follow it, cancel it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse

from pipelines.ids import EP_ID_PATTERN
from pipelines.schemas import StageName

from .. import jobs as job_service
from ..admission import admit
from ..context import EP, JOB_ID, RUN, Ctx
from ..models import (
    AnalyzeScreenTimeRequest,
    Job,
    JobListResponse,
    JobRequest,
    RunJobRequest,
)
from ..responses import JobAccepted, JobProgress, binary
from ..sse import job_events

SSE = binary("text/event-stream", "server-sent events: the job's progress until it ends (header X-Job-Id)")

router = APIRouter(tags=["jobs"])
STAGE_JOBS = ("detect_track", "faces_embed", "cluster")


def _accepted(job: dict[str, Any]) -> JSONResponse:
    return JSONResponse({**job, "progress_url": f"/jobs/{job['job_id']}/progress"}, status_code=202)


def _stage_routes(job_type: str) -> tuple[Callable, Callable]:
    def start_async(req: JobRequest, ctx: Ctx) -> JSONResponse:
        return _accepted(admit(ctx, job_type, req.ep_id, req.run_id, req.profile, req.overrides, req.force, req.model_dump()))

    def start_streaming(req: JobRequest, ctx: Ctx) -> StreamingResponse:
        job = admit(ctx, job_type, req.ep_id, req.run_id, req.profile, req.overrides, req.force, req.model_dump())
        return StreamingResponse(job_events(ctx.store, job["job_id"]), media_type="text/event-stream", headers={"X-Job-Id": job["job_id"]})

    return start_async, start_streaming


for _job_type in STAGE_JOBS:
    _async, _streaming = _stage_routes(_job_type)
    router.post(f"/jobs/{_job_type}_async", status_code=202, response_model=JobAccepted, summary=f"Start {_job_type} (returns the job)")(_async)
    router.post(f"/jobs/{_job_type}", response_class=StreamingResponse, responses=SSE, summary=f"Start {_job_type} and stream its progress (SSE)")(_streaming)
    # The replaced system's path: served, kept out of the schema (the route above is the same job).
    router.post(f"/celery_jobs/{_job_type}", include_in_schema=False)(_streaming)


@router.post("/jobs/episode_cleanup_async", status_code=202, response_model=JobAccepted, summary="Re-embed, re-cluster and recompute screen time")
def episode_cleanup(req: JobRequest, ctx: Ctx) -> JSONResponse:
    return _accepted(admit(ctx, "episode_cleanup", req.ep_id, req.run_id, req.profile, req.overrides, True, req.model_dump()))


@router.post("/jobs/screen_time/analyze", status_code=202, response_model=JobAccepted)
def analyze_screen_time(req: AnalyzeScreenTimeRequest, ctx: Ctx) -> JSONResponse:
    overrides: dict[str, Any] = {"screentime.preset": req.preset}
    if req.screen_time_mode:
        overrides["screentime.mode"] = req.screen_time_mode
    return _accepted(admit(ctx, "screen_time_analyze", req.ep_id, req.run_id, None, overrides, False, req.model_dump()))


@router.post("/episodes/{ep_id}/runs/{run_id}/jobs/{stage}", status_code=202, response_model=JobAccepted)
def run_scoped_job(req: RunJobRequest, ctx: Ctx, ep_id: str = EP, run_id: str = RUN, stage: StageName = PathParam(...)) -> JSONResponse:
    job_type = "screentime" if stage is StageName.screentime else stage.value
    return _accepted(admit(ctx, job_type, ep_id, run_id, req.profile, req.overrides, req.force, {"ep_id": ep_id, "run_id": run_id, **req.model_dump()}))


@router.get("/jobs", response_model=JobListResponse)
def list_jobs(
    ctx: Ctx,
    ep_id: Optional[str] = Query(None, pattern=EP_ID_PATTERN),
    job_type: Optional[str] = Query(None, max_length=64),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10**9),
) -> dict:
    """Newest first, a page at a time; ``next_offset`` is null on the last page."""
    total = ctx.store.count_jobs(ep_id=ep_id, job_type=job_type)
    jobs = ctx.store.list_jobs(ep_id=ep_id, job_type=job_type, limit=limit, offset=offset)
    return {"jobs": jobs, "total": total, "next_offset": offset + len(jobs) if offset + len(jobs) < total else None}


@router.get("/jobs/{job_id}", response_model=Job)
def get_job(ctx: Ctx, job_id: str = JOB_ID) -> dict:
    return ctx.job(job_id)


@router.get("/jobs/{job_id}/progress", response_model=JobProgress)
def job_progress(ctx: Ctx, job_id: str = JOB_ID) -> dict:
    job = ctx.job(job_id)
    return {"job_id": job_id, "state": job["state"], "progress": job["progress"], "error": job["error"]}


@router.post("/jobs/{job_id}/cancel", response_model=Job)
def cancel(ctx: Ctx, job_id: str = JOB_ID) -> dict:
    ctx.job(job_id)
    return job_service.cancel_job(ctx.store, ctx.storage, job_id)
