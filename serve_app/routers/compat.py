"""The replaced system's routes (``../shared/seed/API_REFERENCE.md``), kept for its clients.

Each is the same operation as a primary route, where the run is named in the path
(``/episodes/{ep_id}/runs/{run_id}/...``); here the run comes by query (``?run_id=``, default ``main``)
or in the body, the way the seed had it, and stage jobs start through ``/jobs/{stage}_async``,
``/jobs/{stage}`` (streaming) and ``/celery_jobs/{stage}``. Every one is marked deprecated in the schema,
and ``SCREENALYTICS_COMPAT_ROUTES=false`` turns them all off (:class:`serve_app.settings.ApiSettings`).
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import Field

from pipelines.ids import RUN_ID_PATTERN
from pipelines.service import RunLayout

from ..admission import admit
from ..context import EP, IDENTITY, RUN_Q, VOICE, Ctx
from ..models import (
    AssignmentsResponse,
    ClusterAssignRequest,
    EpisodeStatusResponse,
    FaceExclusionRequest,
    MarkRequest,
    MergeRequest,
    MoveTrackRequest,
    Overrides,
    Profile,
    RejectRequest,
    RequestBody,
    SplitRequest,
    TrackAssignRequest,
    UndoRequest,
    VideoClipRequest,
    VoiceAssignRequest,
)
from ..responses import ClusterTracks, CorrectionsList, JobAccepted, ReviewBundle, TimelineExport, TrackCrops, binary
from . import corrections, jobs, runs
from .corrections import IF_MATCH

router = APIRouter(tags=["compat (seed routes)"], deprecated=True)
RUN_FIELD = Field("main", pattern=RUN_ID_PATTERN, description="the run (the primary route names it in its path)")
TRACK = PathParam(ge=1, le=10**9)


class _InBody(RequestBody):
    run_id: str = RUN_FIELD


class ClusterAssignSeed(ClusterAssignRequest, _InBody):
    pass


class TrackAssignSeed(TrackAssignRequest, _InBody):
    pass


class FaceExclusionSeed(FaceExclusionRequest, _InBody):
    pass


class MergeSeed(MergeRequest, _InBody):
    pass


class MoveTrackSeed(MoveTrackRequest, _InBody):
    pass


class SplitSeed(SplitRequest, _InBody):
    pass


class RejectSeed(RejectRequest, _InBody):
    pass


class MarkSeed(MarkRequest, _InBody):
    pass


class UndoSeed(UndoRequest, _InBody):
    pass


class VoiceAssignSeed(VoiceAssignRequest, _InBody):
    pass


class VideoClipSeed(VideoClipRequest, _InBody):
    pass


class JobRequest(RequestBody):
    """A seed job request: the episode (and run) in the body."""

    ep_id: str = Field(max_length=200)
    run_id: Optional[str] = Field(None, pattern=RUN_ID_PATTERN)
    profile: Profile = None
    overrides: Overrides
    force: bool = False


class AnalyzeScreenTimeRequest(RequestBody):
    ep_id: str
    run_id: Optional[str] = Field(None, pattern=RUN_ID_PATTERN)
    preset: Literal["default", "stricter", "strict"] = "default"
    screen_time_mode: Optional[Literal["tracks", "faces"]] = None


# --- corrections ----------------------------------------------------------------------------------


@router.get("/episodes/{ep_id}/assignments", response_model=AssignmentsResponse)
def get_assignments(ctx: Ctx, ep_id: str = EP, run_id: str = RUN_Q) -> dict:
    return corrections.get_assignments(ctx, ep_id, run_id)


def cluster_assignment(req: ClusterAssignSeed, ctx: Ctx, ep_id: str = EP, if_match: Optional[str] = IF_MATCH) -> dict:
    return corrections.cluster_assignment(req, ctx, ep_id, req.run_id, if_match)


def track_assignment(req: TrackAssignSeed, ctx: Ctx, ep_id: str = EP, if_match: Optional[str] = IF_MATCH) -> dict:
    return corrections.track_assignment(req, ctx, ep_id, req.run_id, if_match)


def face_exclusion(req: FaceExclusionSeed, ctx: Ctx, ep_id: str = EP, if_match: Optional[str] = IF_MATCH) -> dict:
    return corrections.face_exclusion(req, ctx, ep_id, req.run_id, if_match)


for _method in (router.post, router.put):
    _method("/episodes/{ep_id}/assignments/cluster", response_model=AssignmentsResponse)(cluster_assignment)
    _method("/episodes/{ep_id}/assignments/track", response_model=AssignmentsResponse)(track_assignment)
    _method("/episodes/{ep_id}/assignments/face_exclusion", response_model=AssignmentsResponse)(face_exclusion)


@router.post("/episodes/{ep_id}/identities/merge", response_model=AssignmentsResponse)
def merge_identities(req: MergeSeed, ctx: Ctx, ep_id: str = EP, if_match: Optional[str] = IF_MATCH) -> dict:
    return corrections.merge_identities(req, ctx, ep_id, req.run_id, if_match)


@router.post("/episodes/{ep_id}/tracks/{track_id}/move", response_model=AssignmentsResponse)
def move_track(req: MoveTrackSeed, ctx: Ctx, ep_id: str = EP, track_id: int = TRACK, if_match: Optional[str] = IF_MATCH) -> dict:
    return corrections.move_track(req, ctx, ep_id, req.run_id, track_id, if_match)


@router.post("/episodes/{ep_id}/identities/split", response_model=AssignmentsResponse)
def split_identity(req: SplitSeed, ctx: Ctx, ep_id: str = EP, if_match: Optional[str] = IF_MATCH) -> dict:
    return corrections.split_identity(req, ctx, ep_id, req.run_id, if_match)


@router.post("/episodes/{ep_id}/identities/{identity_id}/reject", response_model=AssignmentsResponse)
def reject_suggestion(req: RejectSeed, ctx: Ctx, ep_id: str = EP, identity_id: str = IDENTITY, if_match: Optional[str] = IF_MATCH) -> dict:
    return corrections.reject_suggestion(req, ctx, ep_id, req.run_id, identity_id, if_match)


@router.post("/episodes/{ep_id}/identities/{identity_id}/mark", response_model=AssignmentsResponse)
def mark_identity(req: MarkSeed, ctx: Ctx, ep_id: str = EP, identity_id: str = IDENTITY, if_match: Optional[str] = IF_MATCH) -> dict:
    return corrections.mark_identity(req, ctx, ep_id, req.run_id, identity_id, if_match)


@router.get("/episodes/{ep_id}/corrections", response_model=CorrectionsList)
def list_corrections(ctx: Ctx, ep_id: str = EP, run_id: str = RUN_Q) -> dict:
    return corrections.list_corrections(ctx, ep_id, run_id)


@router.post("/episodes/{ep_id}/corrections/undo", response_model=AssignmentsResponse)
def undo_last(req: UndoSeed, ctx: Ctx, ep_id: str = EP) -> dict:
    return corrections.undo_last(req, ctx, ep_id, req.run_id)


@router.post("/episodes/{ep_id}/voices/{voice_id}/assign", response_model=AssignmentsResponse)
def assign_voice(req: VoiceAssignSeed, ctx: Ctx, ep_id: str = EP, voice_id: str = VOICE) -> dict:
    return corrections.assign_voice(req, ctx, ep_id, req.run_id, voice_id)


# --- runs -----------------------------------------------------------------------------------------
@router.get("/episodes/{ep_id}/status", response_model=EpisodeStatusResponse)
def episode_status(ctx: Ctx, ep_id: str = EP, run_id: str = RUN_Q) -> dict:
    ctx.episode(ep_id)
    active = ctx.store.active_jobs(ep_id, run_id)
    return {"ep_id": ep_id, "run_id": run_id, "stages": ctx.stage_statuses(RunLayout(ep_id, run_id)), "active_job": active[0] if active else None}


@router.get("/episodes/{ep_id}/cluster_tracks", response_model=ClusterTracks)
def cluster_tracks(ctx: Ctx, ep_id: str = EP, run_id: str = RUN_Q) -> dict:
    return runs.cluster_tracks(ctx, ep_id, run_id)


@router.get("/episodes/{ep_id}/tracks/{track_id}/crops", response_model=TrackCrops)
def track_crops(
    ctx: Ctx, ep_id: str = EP, track_id: int = TRACK, run_id: str = RUN_Q, offset: int = Query(0, ge=0, le=10**9), limit: int = Query(50, ge=1, le=500)
) -> dict:
    return runs.track_crops(ctx, ep_id, track_id, run_id, offset, limit)


@router.get("/episodes/{ep_id}/tracks/{track_id}/integrity", response_model=runs.IntegrityReport)
def track_integrity(ctx: Ctx, ep_id: str = EP, track_id: int = TRACK, run_id: str = RUN_Q) -> Any:
    return runs.track_integrity(ctx, ep_id, track_id, run_id)


@router.get("/episodes/{ep_id}/faces_review_bundle", response_model=ReviewBundle)
def faces_review_bundle(ctx: Ctx, ep_id: str = EP, run_id: str = RUN_Q, faces: int = Query(0, ge=0, le=50)) -> dict:
    return runs.faces_review_bundle(ctx, ep_id, run_id, faces)


@router.get("/episodes/{ep_id}/timestamp/{timestamp_s}/preview", response_class=Response, responses=binary("image/jpeg", "the frame with named boxes"))
def timestamp_preview(ctx: Ctx, ep_id: str = EP, timestamp_s: float = PathParam(ge=0, le=86400), run_id: str = RUN_Q) -> Response:
    return runs.timestamp_preview(ctx, ep_id, timestamp_s, run_id)


@router.post("/episodes/{ep_id}/video_clip", response_class=Response, responses=binary("video/mp4", "the clip with overlays"))
def video_clip(req: VideoClipSeed, ctx: Ctx, ep_id: str = EP) -> Response:
    return runs.video_clip(req, ctx, ep_id, req.run_id)


@router.get("/episodes/{ep_id}/timeline_export", response_model=TimelineExport, responses=binary("text/csv", "with format=csv: one row per second"))
def timeline_export(ctx: Ctx, ep_id: str = EP, run_id: str = RUN_Q, format: str = runs.FORMAT_Q) -> Any:
    return runs.timeline_export(ctx, ep_id, run_id, format)


# --- jobs -----------------------------------------------------------------------------------------
STAGE_JOBS = ("detect_track", "faces_embed", "cluster")


def _admit(ctx: Ctx, job_type: str, req: JobRequest) -> dict[str, Any]:
    return admit(ctx, job_type, req.ep_id, req.run_id, req.profile, req.overrides, req.force, req.model_dump())


def _stage_routes(job_type: str) -> None:
    def start_async(req: JobRequest, ctx: Ctx) -> JSONResponse:
        return jobs.accepted(_admit(ctx, job_type, req))

    def start_streaming(req: JobRequest, ctx: Ctx) -> StreamingResponse:
        return jobs.job_stream(ctx, _admit(ctx, job_type, req))

    router.post(f"/jobs/{job_type}_async", status_code=202, response_model=JobAccepted, summary=f"Start {job_type} (returns the job)")(start_async)
    router.post(f"/jobs/{job_type}", response_class=StreamingResponse, responses=jobs.SSE, summary=f"Start {job_type} and stream its progress (SSE)")(
        start_streaming
    )
    # The replaced system's Celery path: served, kept out of the schema (the route above is the same job).
    router.post(f"/celery_jobs/{job_type}", response_class=StreamingResponse, include_in_schema=False)(start_streaming)


for _job_type in STAGE_JOBS:
    _stage_routes(_job_type)


@router.post("/jobs/episode_cleanup_async", status_code=202, response_model=JobAccepted, summary="Re-embed, re-cluster and recompute screen time")
def episode_cleanup(req: JobRequest, ctx: Ctx) -> JSONResponse:
    return jobs.accepted(admit(ctx, "episode_cleanup", req.ep_id, req.run_id, req.profile, req.overrides, True, req.model_dump()))


@router.post("/jobs/screen_time/analyze", status_code=202, response_model=JobAccepted)
def analyze_screen_time(req: AnalyzeScreenTimeRequest, ctx: Ctx) -> JSONResponse:
    overrides: dict[str, Any] = {"screentime.preset": req.preset}
    if req.screen_time_mode:
        overrides["screentime.mode"] = req.screen_time_mode
    return jobs.accepted(admit(ctx, "screen_time_analyze", req.ep_id, req.run_id, None, overrides, False, req.model_dump()))
