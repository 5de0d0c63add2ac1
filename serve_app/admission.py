"""Starting a job: every check before anything is registered, then one atomic register-if-idle step,
then the job actor. The same path serves every job route, async or streaming."""

from __future__ import annotations

from typing import Any, Optional

from fastapi import HTTPException

from pipelines.ids import InvalidIdError, validate_ep_id
from pipelines.schemas import STAGE_ORDER, StageName, StageState
from pipelines.service import DEFAULT_RUN_ID, ConfigError, RunLayout, read_marker, resolve_config

from . import jobs as job_service
from .context import ApiContext


def admit(
    ctx: ApiContext, job_type: str, ep_id: str, run_id: Optional[str], profile: Optional[str], overrides: dict[str, Any], force: bool, requested: dict[str, Any]
) -> dict[str, Any]:
    """Register and start a job; 404/409/422 (and nothing registered) when it cannot run."""
    try:
        validate_ep_id(ep_id)
    except InvalidIdError as exc:
        raise HTTPException(422, str(exc)) from None
    ep = ctx.episode(ep_id)
    run_id = run_id or DEFAULT_RUN_ID
    try:
        resolve_config(profile, overrides)
    except ConfigError as exc:
        raise HTTPException(422, str(exc)) from None
    stages = job_service.JOB_STAGES[job_type]
    video = None
    if stages[0] is StageName.detect_track:
        video = ctx.source_video(ep)
        if video is None:
            raise HTTPException(409, f"detect_track needs the episode's video: upload it to /episodes/{ep_id}/video or put it in S3")
    else:
        if StageName.audio in stages:  # the audio stage decodes the video when it can reach it
            video = ctx.source_video(ep)
        prev = StageName.detect_track if stages[0] is StageName.audio else STAGE_ORDER[STAGE_ORDER.index(stages[0]) - 1]
        marker = read_marker(ctx.storage, RunLayout(ep_id, run_id), prev)
        if marker is None or marker.state is not StageState.succeeded:
            raise HTTPException(409, f"{stages[0].value} needs a finished {prev.value} stage for {ep_id}/{run_id}")
    job_id = job_service.new_job_id()
    job, busy = ctx.store.create_job_if_idle(job_id, ep_id, run_id, job_type, requested, job_service.actor_name(job_type, ep_id, job_id))
    if job is None:
        raise HTTPException(409, f"job {busy['job_id']} is already running on {ep_id}/{run_id}")  # type: ignore[index]
    spec = {
        "job_id": job_id,
        "ep_id": ep_id,
        "run_id": run_id,
        "video": video,
        "profile": profile,
        "overrides": overrides,
        "force": force,
        "stages": [s.value for s in stages],
    }
    try:
        job_service.launch(ctx.store, job, spec, db_path=ctx.settings.db_path, data_uri=ctx.settings.data_uri, s3_endpoint=ctx.settings.s3_endpoint)
    except Exception as exc:  # noqa: BLE001
        raise HTTPException(503, f"could not start the job: {exc}") from None
    return job
