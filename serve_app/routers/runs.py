"""Runs of an episode: stage state, screen time computed on request, the validator, the review bundle,
crops, labelled frames and clips, and the per-second timeline."""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import PlainTextResponse, Response

from pipelines.schemas import CSV_COLUMNS, ScreentimeReport
from pipelines.service import (
    DEFAULT_RUN_ID,
    IntegrityReport,
    RunLayout,
    VideoError,
    assist,
    crop_url,
    csv_rows,
    csv_text,
    faces_of_track,
    frames,
    live_screentime,
    per_second,
    review_bundle,
    runs_prefix,
    speech_rttm,
    track_labels,
    view,
)
from pipelines.service import run_integrity as service_run_integrity
from pipelines.service import track_integrity as service_track_integrity

from ..caching import cached_bytes
from ..context import EP, RUN, RUN_PATH, ApiContext, Ctx
from ..models import RunListResponse, RunSummary, VideoClipRequest
from ..responses import ClusterTracks, ReviewBundle, RunState, TimelineExport, TrackCrops, binary

router = APIRouter(tags=["runs"])
PRESET_Q = Query("default", pattern="^(default|stricter|strict)$")
FORMAT_Q = Query("json", pattern="^(json|csv)$")
TRACK = PathParam(ge=1, le=10**9)
MODE_Q = Query(None, pattern="^(tracks|faces)$")


@router.get("/episodes/{ep_id}/runs", response_model=RunListResponse)
def list_runs(ctx: Ctx, ep_id: str = EP) -> dict:
    ctx.episode(ep_id)
    runs = ctx.storage.children(runs_prefix(ep_id))
    return {"ep_id": ep_id, "runs": [RunSummary(run_id=r, stages=ctx.stage_statuses(RunLayout(ep_id, r))) for r in runs]}


@router.get(RUN_PATH + "/state", response_model=RunState)
def run_state(ctx: Ctx, ep_id: str = EP, run_id: str = RUN) -> dict:
    """Each stage's state, the job in flight on the run (if any) and the run's artifacts. An episode's
    ``main`` run is there from its creation, and a run a job has started before it wrote anything: with
    every stage not run. Any other run without artifacts is 404."""
    ctx.episode(ep_id)
    layout = RunLayout(ep_id, run_id)
    active = ctx.store.active_jobs(ep_id, run_id)
    if run_id != DEFAULT_RUN_ID and not active and not ctx.storage.children(layout.manifests):
        raise HTTPException(404, f"Run {run_id} of {ep_id} not found")
    return {
        "ep_id": ep_id,
        "run_id": run_id,
        "stages": [s.model_dump() for s in ctx.stage_statuses(layout)],
        "active_job": active[0] if active else None,
        "artifacts": ctx.storage.list(layout.manifests),
    }


def _screentime(ctx: ApiContext, layout: RunLayout, preset: str = "default", mode: Optional[str] = None) -> ScreentimeReport:
    return live_screentime(ctx.storage, layout, ctx.cast_names(layout.ep_id), preset, mode)


@router.get(RUN_PATH + "/screentime", response_model=ScreentimeReport)
def run_screentime(ctx: Ctx, ep_id: str = EP, run_id: str = RUN, preset: str = PRESET_Q, mode: Optional[str] = MODE_Q) -> ScreentimeReport:
    """Screen time per cast member and per identity, honouring the current corrections."""
    return _screentime(ctx, ctx.run(ep_id, run_id), preset, mode)


@router.get(RUN_PATH + "/screentime.csv", response_class=PlainTextResponse, responses=binary("text/csv", "screen time as CSV"))
def run_screentime_csv(ctx: Ctx, ep_id: str = EP, run_id: str = RUN, preset: str = PRESET_Q, mode: Optional[str] = MODE_Q) -> PlainTextResponse:
    report = _screentime(ctx, ctx.run(ep_id, run_id), preset, mode)
    return PlainTextResponse(csv_text(CSV_COLUMNS, csv_rows(report)), media_type="text/csv")


@router.get(RUN_PATH + "/speech.rttm", response_class=PlainTextResponse, responses=binary("text/plain", "the run's speech turns in RTTM"))
def run_speech_rttm(ctx: Ctx, ep_id: str = EP, run_id: str = RUN) -> PlainTextResponse:
    """Who speaks when, as the audio stage found it, in RTTM (what diarization tools read and score)."""
    text = speech_rttm(ctx.storage, ctx.run(ep_id, run_id))
    if text is None:
        raise HTTPException(404, f"no speech turns for {ep_id}/{run_id}: run the audio stage (with its speech models installed)")
    return PlainTextResponse(text, media_type="text/plain")


@router.get(RUN_PATH + "/cluster_tracks", response_model=ClusterTracks)
def cluster_tracks(ctx: Ctx, ep_id: str = EP, run_id: str = RUN) -> dict:
    """Clusters and their tracks, with the human corrections (merge, move, split) applied."""
    return view.cluster_tracks(view.load_view(ctx.storage, ctx.run(ep_id, run_id)))


@router.get(RUN_PATH + "/integrity", response_model=IntegrityReport)
def run_integrity(ctx: Ctx, ep_id: str = EP, run_id: str = RUN) -> IntegrityReport:
    return service_run_integrity(ctx.storage, ctx.run(ep_id, run_id))


@router.get(RUN_PATH + "/tracks/{track_id}/crops", response_model=TrackCrops)
def track_crops(
    ctx: Ctx,
    ep_id: str = EP,
    track_id: int = TRACK,
    run_id: str = RUN,
    offset: int = Query(0, ge=0, le=10**9),
    limit: int = Query(50, ge=1, le=500),
) -> dict:
    layout = ctx.run(ep_id, run_id)
    faces = faces_of_track(ctx.storage, layout, track_id)
    return {
        "ep_id": ep_id,
        "run_id": run_id,
        "track_id": track_id,
        "total": len(faces),
        "crops": [{**f.model_dump(), "url": crop_url(ep_id, run_id, f.face_id) if f.crop_path else None} for f in faces[offset : offset + limit]],
    }


@router.get(RUN_PATH + "/crops/{track_id}/{frame_idx}.jpg", response_class=Response, responses=binary("image/jpeg", "the face crop"))
def crop_image(
    request: Request,
    ctx: Ctx,
    ep_id: str = EP,
    run_id: str = RUN,
    track_id: int = PathParam(ge=1, le=10**9),
    frame_idx: int = PathParam(ge=0, le=10**9),
    v: Optional[str] = Query(None, max_length=64, description="the crops' version (from the review bundle): cached for good when given"),
    readable: bool = Query(False, description="a dark or flat crop contrast-stretched for display (the stored crop is unchanged)"),
) -> Response:
    layout = ctx.run(ep_id, run_id)
    key = layout.crop(track_id, frame_idx)
    if not ctx.storage.exists(key):
        raise HTTPException(404, f"no crop for track {track_id} at frame {frame_idx}")
    data = ctx.storage.read_bytes(key)
    return cached_bytes(request, assist.readable_thumbnail(data) if readable else data, "image/jpeg", immutable=v is not None)


@router.get(RUN_PATH + "/tracks/{track_id}/integrity", response_model=IntegrityReport)
def track_integrity(ctx: Ctx, ep_id: str = EP, track_id: int = TRACK, run_id: str = RUN) -> IntegrityReport:
    return service_track_integrity(ctx.storage, ctx.run(ep_id, run_id), track_id)


@router.get(RUN_PATH + "/faces_review_bundle", response_model=ReviewBundle)
def faces_review_bundle(ctx: Ctx, ep_id: str = EP, run_id: str = RUN, faces: int = Query(0, ge=0, le=50)) -> dict:
    """Everything the review screen needs: identities (with corrections, naming and suggestions), their
    tracks and seconds, what needs review, the validator; with ``faces=N``, up to N face crops per
    identity, the ones farthest from the identity's centre first."""
    return review_bundle(ctx.storage, ctx.run(ep_id, run_id), ctx.cast_names(ep_id), faces)


def _labels(ctx: ApiContext, layout: RunLayout) -> dict[int, str]:
    return track_labels(ctx.storage, layout, ctx.cast_names(layout.ep_id))


@router.get(RUN_PATH + "/timestamp/{timestamp_s}/preview", response_class=Response, responses=binary("image/jpeg", "the frame with named boxes"))
def timestamp_preview(ctx: Ctx, ep_id: str = EP, timestamp_s: float = PathParam(ge=0, le=86400), run_id: str = RUN) -> Response:
    """The frame at ``timestamp_s`` with named face boxes (JPEG)."""
    layout = ctx.run(ep_id, run_id)
    duration = frames.video_duration(ctx.storage, layout)
    if timestamp_s >= duration:
        raise HTTPException(422, f"timestamp_s {timestamp_s} is past the end of the video ({duration:.2f}s)")
    try:
        jpeg = frames.preview_jpeg(ctx.storage, layout, ctx.video_path(ep_id, layout), timestamp_s, _labels(ctx, layout))
    except VideoError as exc:
        raise HTTPException(422, str(exc)) from None
    return Response(jpeg, media_type="image/jpeg")


@router.post(RUN_PATH + "/video_clip", response_class=Response, responses=binary("video/mp4", "the clip with overlays"))
def video_clip(req: VideoClipRequest, ctx: Ctx, ep_id: str = EP, run_id: str = RUN) -> Response:
    """An MP4 of ``[start_s, end_s)`` with named face boxes (at most 60 s)."""
    layout = ctx.run(ep_id, run_id)
    if req.end_s <= req.start_s:
        raise HTTPException(422, "end_s must be after start_s")
    duration = frames.video_duration(ctx.storage, layout)
    if req.start_s >= duration:
        raise HTTPException(422, f"start_s is past the end of the video ({duration:.2f}s)")
    data = frames.clip_mp4(ctx.storage, layout, ctx.video_path(ep_id, layout), req.start_s, req.end_s, _labels(ctx, layout))
    if not data:
        raise HTTPException(422, f"no frames in [{req.start_s}, {req.end_s}) of a {duration:.2f}s video")
    return Response(data, media_type="video/mp4", headers={"Content-Disposition": f'attachment; filename="{ep_id}_{req.start_s:.0f}-{req.end_s:.0f}.mp4"'})


@router.get(RUN_PATH + "/timeline_export", response_model=TimelineExport, responses=binary("text/csv", "with format=csv: one row per second"))
def timeline_export(ctx: Ctx, ep_id: str = EP, run_id: str = RUN, format: str = FORMAT_Q):
    """Who is on screen each second: seconds covered per person in every one-second bin."""
    people, seconds = per_second(_screentime(ctx, ctx.run(ep_id, run_id)))
    if format == "csv":
        return PlainTextResponse(csv_text(["second", *people], [{"second": s["second"], **s["on_screen"]} for s in seconds]), media_type="text/csv")
    return {"ep_id": ep_id, "run_id": run_id, "people": people, "seconds": seconds}
