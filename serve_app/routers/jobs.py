"""Jobs: start a stage (or a group of stages) on an episode run, follow it, cancel it."""

from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse

from pipelines.ids import EP_ID_PATTERN
from pipelines.schemas import StageName

from .. import jobs as job_service
from ..admission import admit
from ..context import EP, JOB_ID, RUN, RUN_PATH, ApiContext, Ctx
from ..models import Job, JobListResponse, RunJobRequest
from ..responses import JobAccepted, JobProgress, binary
from ..sse import job_events

SSE = binary("text/event-stream", "server-sent events: the job's progress until it ends (header X-Job-Id)")

router = APIRouter(tags=["jobs"])


def accepted(job: dict[str, Any]) -> JSONResponse:
    """202 with the job and where to follow it."""
    return JSONResponse({**job, "progress_url": f"/jobs/{job['job_id']}/progress", "events_url": f"/jobs/{job['job_id']}/events"}, status_code=202)


def job_stream(ctx: ApiContext, job: dict[str, Any]) -> StreamingResponse:
    return StreamingResponse(job_events(ctx.store, job["job_id"]), media_type="text/event-stream", headers={"X-Job-Id": job["job_id"]})


@router.post(RUN_PATH + "/jobs/cleanup", status_code=202, response_model=JobAccepted, summary="Re-embed, re-cluster and recompute screen time")
def run_cleanup(req: RunJobRequest, ctx: Ctx, ep_id: str = EP, run_id: str = RUN) -> JSONResponse:
    return accepted(admit(ctx, "episode_cleanup", ep_id, run_id, req.profile, req.overrides, True, {"ep_id": ep_id, "run_id": run_id, **req.model_dump()}))


@router.post(RUN_PATH + "/jobs/{stage}", status_code=202, response_model=JobAccepted, summary="Start a stage on the run (returns the job)")
def run_scoped_job(req: RunJobRequest, ctx: Ctx, ep_id: str = EP, run_id: str = RUN, stage: StageName = PathParam(...)) -> JSONResponse:
    """The stage, and the stages before it that are not finished with the same settings (each is reused
    when its inputs and settings are unchanged)."""
    job_type = "screentime" if stage is StageName.screentime else stage.value
    return accepted(admit(ctx, job_type, ep_id, run_id, req.profile, req.overrides, req.force, {"ep_id": ep_id, "run_id": run_id, **req.model_dump()}))


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


@router.get("/jobs/{job_id}/events", response_class=StreamingResponse, responses=SSE)
def job_event_stream(ctx: Ctx, job_id: str = JOB_ID) -> StreamingResponse:
    """Server-sent events: the job's progress until it ends."""
    return job_stream(ctx, ctx.job(job_id))


@router.post("/jobs/{job_id}/cancel", response_model=Job)
def cancel(ctx: Ctx, job_id: str = JOB_ID) -> dict:
    ctx.job(job_id)
    return job_service.cancel_job(ctx.store, ctx.storage, job_id)
