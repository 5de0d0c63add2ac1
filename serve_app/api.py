"""The FastAPI application: episodes, jobs with live progress, runs and screen time.

``build_app(settings)`` builds it; :mod:`serve_app.app` serves it through Ray Serve, and the same
factory runs under plain uvicorn. Errors follow FastAPI's ``{"detail": ...}``: 404 unknown episode,
run or job; 409 a stage whose inputs are missing (named); 422 bad ids or parameters.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Optional

from fastapi import FastAPI, File, HTTPException, Path as PathParam, Query, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from pipelines.artifacts import RunLayout, csv_text, read_marker, read_model, write_model
from pipelines.corrections import CORRECTIONS_FILE, Correction, IdentityAnchor, TrackAnchor, identity_anchor, track_anchor
from pipelines.screentime import compute_screentime, csv_rows
from pipelines.stages.screentime import load_corrections, resolved_inputs
from pipelines.config import ConfigError, resolve_config
from pipelines.ids import CAST_ID_PATTERN, EP_ID_PATTERN, RUN_ID_PATTERN, SHOW_SLUG_PATTERN, make_ep_id, parse_ep_id, validate_ep_id
from pipelines.runner import DEFAULT_RUN_ID
import cv2

from pipelines.integrity import IntegrityReport, validate_run
from pipelines.overlays import DetectionIndex, draw, render_clip
from pipelines.schemas import (
    CSV_COLUMNS,
    STAGE_ORDER,
    ClusterCentroidsFile,
    DetectionRow,
    FaceRow,
    ScreentimeReport,
    StageName,
    StageState,
    TrackMetrics,
    TrackRep,
    VideoMeta,
)
from pipelines.artifacts import read_jsonl
from pipelines.storage import Storage, open_storage

from . import jobs as job_service
from .models import (
    AnalyzeScreenTimeRequest,
    AssignmentsResponse,
    AudioPrerequisites,
    CastCreateRequest,
    CastUpdateRequest,
    ClusterAssignRequest,
    EpisodeCreateRequest,
    EpisodeCreateResponse,
    EpisodeDetailResponse,
    EpisodeListResponse,
    EpisodeStatusResponse,
    EpisodeUpdateRequest,
    FaceExclusionRequest,
    Job,
    JobListResponse,
    JobRequest,
    MergeRequest,
    MoveTrackRequest,
    RunJobRequest,
    RunListResponse,
    RunSummary,
    ShowCreateRequest,
    SplitRequest,
    StageStatus,
    TrackAssignRequest,
    VideoClipRequest,
)
from .state import FINAL_STATES, StateStore

EP = PathParam(pattern=EP_ID_PATTERN, description="{show}-s{SS}e{EE}")
RUN = PathParam(pattern=RUN_ID_PATTERN)
RUN_Q = Query(DEFAULT_RUN_ID, pattern=RUN_ID_PATTERN)
SSE_POLL_S = 0.5
MAX_UPLOAD_BYTES = 20 * 1024**3


@dataclass(frozen=True)
class ApiSettings:
    data_uri: str
    db_path: str
    s3_bucket: Optional[str] = None
    s3_endpoint: Optional[str] = None

    @classmethod
    def from_env(cls, data_uri: str | None = None) -> "ApiSettings":
        data_uri = data_uri or os.environ.get("SCREENALYTICS_DATA_DIR", "data")
        if not data_uri.startswith("s3://"):
            data_uri = str(Path(data_uri).resolve())
        default_db = (
            str(Path.home() / ".cache" / "screenalytics" / "state.sqlite3") if data_uri.startswith("s3://") else f"{data_uri}/state.sqlite3"
        )
        return cls(
            data_uri,
            os.environ.get("SCREENALYTICS_STATE_DB", default_db),
            os.environ.get("SCREENALYTICS_S3_BUCKET") or None,
            os.environ.get("S3_ENDPOINT_URL") or None,
        )


def s3_keys(ep_id: str) -> tuple[str, str]:
    key = parse_ep_id(ep_id)
    return f"raw/videos/{key.show}/s{key.season:02d}/e{key.episode:02d}/episode.mp4", f"raw/videos/{ep_id}/episode.mp4"


def _crop_url(ep_id: str, run_id: str, face_id: str | None) -> str | None:
    if not face_id:
        return None
    _, track, frame = face_id.split("_")
    return f"/episodes/{ep_id}/runs/{run_id}/crops/{int(track)}/{int(frame)}.jpg"


def video_key(ep_id: str) -> str:
    return f"raw/{ep_id}/video.mp4"


def build_app(settings: ApiSettings) -> FastAPI:
    storage: Storage = open_storage(settings.data_uri)
    store = StateStore(settings.db_path)
    app = FastAPI(title="Screenalytics", version="0.1.0", description="Who is on screen, and for how long, in TV episodes.")

    def episode_or_404(ep_id: str) -> dict[str, Any]:
        ep = store.get_episode(ep_id)
        if ep is None:
            raise HTTPException(404, f"Episode {ep_id} not found")
        return ep

    def job_or_404(job_id: str) -> dict[str, Any]:
        job = store.get_job(job_id)
        if job is None:
            raise HTTPException(404, f"Job {job_id} not found")
        return job

    def s3_client():
        import boto3

        return boto3.client("s3", endpoint_url=settings.s3_endpoint)

    def s3_exists(key: str) -> bool:
        if not settings.s3_bucket:
            return False
        from botocore.exceptions import ClientError

        try:
            s3_client().head_object(Bucket=settings.s3_bucket, Key=key)
            return True
        except ClientError:
            return False

    def source_video(ep: dict[str, Any]) -> Optional[str]:
        """The episode's video: an upload in the data dir, else S3 (v2 key, then v1)."""
        if ep.get("video_key") and storage.exists(ep["video_key"]):
            return str(storage.local_path(ep["video_key"]))
        for key in s3_keys(ep["ep_id"]):
            if s3_exists(key):
                return f"s3://{settings.s3_bucket}/{key}"
        return None

    def stage_statuses(layout: RunLayout) -> list[StageStatus]:
        out = []
        for stage in STAGE_ORDER:
            m = read_marker(storage, layout, stage)
            out.append(
                StageStatus(stage=stage.value, state=m.state.value if m else None, finished_at=m.finished_at if m else None,
                            counts=dict(m.counts) if m else {}, error=m.error if m else None)
            )
        return out

    def start(job_type: str, ep_id: str, run_id: Optional[str], profile: Optional[str], overrides: dict, force: bool, requested: dict) -> dict:
        validate_or_422(ep_id)
        ep = episode_or_404(ep_id)
        run_id = run_id or DEFAULT_RUN_ID
        try:
            resolve_config(profile, overrides)
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from None
        stages = job_service.JOB_STAGES[job_type]
        layout = RunLayout(ep_id, run_id)
        video = None
        if stages[0] is StageName.detect_track:
            video = source_video(ep)
            if video is None:
                raise HTTPException(409, f"detect_track needs the episode's video: upload it to /episodes/{ep_id}/video or put it in S3")
        else:
            prev = STAGE_ORDER[STAGE_ORDER.index(stages[0]) - 1]
            marker = read_marker(storage, layout, prev)
            if marker is None or marker.state is not StageState.succeeded:
                raise HTTPException(409, f"{stages[0].value} needs a finished {prev.value} stage for {ep_id}/{run_id}")
        busy = [j for j in store.list_jobs(ep_id=ep_id) if j["run_id"] == run_id and j["state"] not in FINAL_STATES]
        if busy:
            raise HTTPException(409, f"job {busy[0]['job_id']} is already running on {ep_id}/{run_id}")
        return job_service.submit_job(
            store, settings.db_path, settings.data_uri, s3_endpoint=settings.s3_endpoint, job_type=job_type, ep_id=ep_id, run_id=run_id, video=video,
            profile=profile, overrides=overrides, force=force, requested=requested,
        )

    def validate_or_422(ep_id: str) -> None:
        try:
            validate_ep_id(ep_id)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    async def job_events(job_id: str) -> AsyncIterator[str]:
        last = None
        while True:
            job = store.get_job(job_id)
            if job is None:
                return
            payload = json.dumps({"job_id": job_id, "state": job["state"], "progress": job["progress"], "error": job["error"]})
            if payload != last:
                yield f"event: progress\ndata: {payload}\n\n"
                last = payload
            if job["state"] in FINAL_STATES:
                yield f"event: done\ndata: {payload}\n\n"
                return
            await asyncio.sleep(SSE_POLL_S)

    # --- health + audio ---------------------------------------------------------------------------

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "data_dir": settings.data_uri}

    @app.get("/audio/prerequisites", response_model=AudioPrerequisites)
    def audio_prerequisites() -> AudioPrerequisites:
        return AudioPrerequisites(
            available=False,
            missing=["speaker diarization model", "speech recognition model", "audio pipeline"],
            detail="Screenalytics measures visual screen time only; speaking_s and both_s are reported as null.",
        )

    # --- episodes ---------------------------------------------------------------------------------

    @app.get("/episodes", response_model=EpisodeListResponse)
    def list_episodes() -> dict:
        return {"episodes": store.list_episodes()}

    @app.post("/episodes", response_model=EpisodeCreateResponse, status_code=201)
    def create_episode(req: EpisodeCreateRequest) -> dict:
        try:
            ep_id = make_ep_id(req.show_slug_or_id, req.season_number, req.episode_number)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        created = store.create_episode(ep_id, req.show_slug_or_id.lower(), req.season_number, req.episode_number, req.title, req.air_date)
        return {"ep_id": ep_id, "created": created}

    @app.get("/episodes/{ep_id}", response_model=EpisodeDetailResponse)
    def get_episode(ep_id: str = EP) -> dict:
        ep = episode_or_404(ep_id)
        v2, v1 = s3_keys(ep_id)
        return {
            **ep,
            "s3": {"bucket": settings.s3_bucket, "v2_key": v2, "v2_exists": s3_exists(v2), "v1_key": v1, "v1_exists": s3_exists(v1)},
            "local": {"key": ep.get("video_key"), "exists": bool(ep.get("video_key")) and storage.exists(ep["video_key"])},
        }

    @app.patch("/episodes/{ep_id}", response_model=EpisodeDetailResponse)
    def update_episode(req: EpisodeUpdateRequest, ep_id: str = EP) -> dict:
        episode_or_404(ep_id)
        store.update_episode(ep_id, **req.model_dump(exclude_unset=True))
        return get_episode(ep_id)

    @app.delete("/episodes/{ep_id}")
    def delete_episode(ep_id: str = EP, delete_artifacts: bool = Query(False)) -> dict:
        episode_or_404(ep_id)
        active = [j for j in store.list_jobs(ep_id=ep_id) if j["state"] not in FINAL_STATES]
        if active:
            raise HTTPException(409, f"episode {ep_id} has a job in flight ({active[0]['job_id']}); cancel it first")
        removed = 0
        if delete_artifacts:
            for prefix in (f"manifests/{ep_id}", f"embeds/{ep_id}", f"frames/{ep_id}", f"raw/{ep_id}"):
                removed += storage.delete_prefix(prefix)
        store.delete_episode(ep_id)
        return {"ep_id": ep_id, "deleted": True, "artifacts_removed": removed}

    @app.post("/episodes/{ep_id}/video", response_model=EpisodeDetailResponse)
    async def upload_video(ep_id: str = EP, file: UploadFile = File(...)) -> dict:
        """Upload the episode's video (multipart). It is checked to be a complete, decodable video first."""
        import tempfile

        from pipelines.video import VideoError, probe_video

        episode_or_404(ep_id)
        with tempfile.NamedTemporaryFile(suffix=".mp4", delete=False) as tmp:
            size = 0
            while chunk := await file.read(8 << 20):
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    os.unlink(tmp.name)
                    raise HTTPException(413, "video larger than 20 GiB")
                tmp.write(chunk)
        try:
            try:
                probe_video(tmp.name)
            except VideoError as exc:
                raise HTTPException(422, str(exc).replace(tmp.name, file.filename or "upload")) from None
            storage.upload_file(video_key(ep_id), Path(tmp.name))
        finally:
            os.unlink(tmp.name)
        store.update_episode(ep_id, video_key=video_key(ep_id))
        return get_episode(ep_id)

    @app.get("/episodes/{ep_id}/status", response_model=EpisodeStatusResponse)
    def episode_status(ep_id: str = EP, run_id: str = RUN_Q) -> dict:
        episode_or_404(ep_id)
        active = [j for j in store.list_jobs(ep_id=ep_id) if j["run_id"] == run_id and j["state"] not in FINAL_STATES]
        return {"ep_id": ep_id, "run_id": run_id, "stages": stage_statuses(RunLayout(ep_id, run_id)), "active_job": active[0] if active else None}

    @app.get("/episodes/{ep_id}/progress")
    def episode_progress(ep_id: str = EP) -> dict:
        episode_or_404(ep_id)
        latest = store.list_jobs(ep_id=ep_id)
        if not latest:
            return {"ep_id": ep_id, "job_id": None, "state": None, "progress": None}
        job = latest[0]
        return {"ep_id": ep_id, "job_id": job["job_id"], "job_type": job["job_type"], "state": job["state"], "progress": job["progress"]}

    @app.get("/episodes/{ep_id}/events")
    def episode_events(ep_id: str = EP) -> StreamingResponse:
        """Server-sent events: progress of the episode's latest job, until it ends."""
        episode_or_404(ep_id)
        latest = store.list_jobs(ep_id=ep_id)
        if not latest:
            raise HTTPException(404, f"no job for episode {ep_id}")
        return StreamingResponse(job_events(latest[0]["job_id"]), media_type="text/event-stream")

    # --- runs + screen time -------------------------------------------------------------------------

    @app.get("/episodes/{ep_id}/runs", response_model=RunListResponse)
    def list_runs(ep_id: str = EP) -> dict:
        episode_or_404(ep_id)
        runs = sorted({key.split("/")[3] for key in storage.list(f"manifests/{ep_id}/runs") if key.count("/") >= 4})
        return {"ep_id": ep_id, "runs": [RunSummary(run_id=r, stages=stage_statuses(RunLayout(ep_id, r))) for r in runs]}

    def run_or_404(ep_id: str, run_id: str) -> RunLayout:
        episode_or_404(ep_id)
        layout = RunLayout(ep_id, run_id)
        if not storage.list(layout.manifests):
            raise HTTPException(404, f"Run {run_id} of {ep_id} not found")
        return layout

    @app.get("/episodes/{ep_id}/runs/{run_id}/state")
    def run_state(ep_id: str = EP, run_id: str = RUN) -> dict:
        layout = run_or_404(ep_id, run_id)
        artifacts = storage.list(layout.manifests)
        return {"ep_id": ep_id, "run_id": run_id, "stages": [s.model_dump() for s in stage_statuses(layout)], "artifacts": artifacts}

    def require_clusters(layout: RunLayout) -> None:
        marker = read_marker(storage, layout, StageName.cluster)
        if marker is None or marker.state is not StageState.succeeded:
            raise HTTPException(409, f"no clusters for {layout.ep_id}/{layout.run_id} yet: run the cluster stage")

    def live_screentime(layout: RunLayout, preset: str, mode: Optional[str]) -> ScreentimeReport:
        """Computed on request from the run's artifacts and the current corrections (milliseconds)."""
        require_clusters(layout)
        overrides: dict[str, Any] = {"screentime.preset": preset}
        if mode:
            overrides["screentime.mode"] = mode
        cfg = resolve_config(None, overrides).config.screentime
        inputs, resolved = resolved_inputs(storage, layout, with_detections=cfg.mode == "faces")
        report = compute_screentime(inputs, cfg, {c["cast_id"]: c["name"] for c in store.list_cast()})
        report.diagnostics["corrections_unattached"] = len(resolved.unattached)
        return report

    PRESET_Q = Query("default", pattern="^(default|stricter|strict)$")
    MODE_Q = Query(None, pattern="^(tracks|faces)$")

    @app.get("/episodes/{ep_id}/runs/{run_id}/screentime", response_model=ScreentimeReport)
    def run_screentime(ep_id: str = EP, run_id: str = RUN, preset: str = PRESET_Q, mode: Optional[str] = MODE_Q) -> ScreentimeReport:
        """Screen time per cast member and per identity, honouring the current corrections."""
        return live_screentime(run_or_404(ep_id, run_id), preset, mode)

    @app.get("/episodes/{ep_id}/runs/{run_id}/screentime.csv", response_class=PlainTextResponse)
    def run_screentime_csv(ep_id: str = EP, run_id: str = RUN, preset: str = PRESET_Q, mode: Optional[str] = MODE_Q) -> PlainTextResponse:
        report = live_screentime(run_or_404(ep_id, run_id), preset, mode)
        return PlainTextResponse(csv_text(CSV_COLUMNS, csv_rows(report)), media_type="text/csv")

    @app.get("/episodes/{ep_id}/cluster_tracks")
    def cluster_tracks(ep_id: str = EP, run_id: str = RUN_Q) -> dict:
        """Clusters and their tracks, with the human corrections (merge, move, split) applied."""
        layout = run_or_404(ep_id, run_id)
        resolved, tracks, _ = view(layout)
        identities = resolved.identities
        return {
            "ep_id": ep_id,
            "run_id": run_id,
            "clusters": [
                {
                    "identity_id": i.identity_id,
                    "cohesion": i.cohesion,
                    "rep_face_id": i.rep_face_id,
                    "tracks": [{"track_id": t, "start_s": tracks[t].start_s, "end_s": tracks[t].end_s, "faces": tracks[t].frame_count} for t in i.track_ids],
                }
                for i in identities.identities
            ],
            "unclustered_track_ids": identities.unclustered_track_ids,
        }

    # --- jobs -------------------------------------------------------------------------------------

    def _job_response(job: dict) -> dict:
        return {**job, "progress_url": f"/jobs/{job['job_id']}/progress"}

    for stage_type in ("detect_track", "faces_embed", "cluster"):
        def make(job_type: str):
            def start_async(req: JobRequest) -> JSONResponse:
                job = start(job_type, req.ep_id, req.run_id, req.profile, req.overrides, req.force, req.model_dump())
                return JSONResponse(_job_response(job), status_code=202)

            def start_streaming(req: JobRequest) -> StreamingResponse:
                job = start(job_type, req.ep_id, req.run_id, req.profile, req.overrides, req.force, req.model_dump())
                return StreamingResponse(job_events(job["job_id"]), media_type="text/event-stream", headers={"X-Job-Id": job["job_id"]})

            return start_async, start_streaming

        start_async, start_streaming = make(stage_type)
        app.post(f"/jobs/{stage_type}_async", status_code=202, summary=f"Start {stage_type} (returns the job)")(start_async)
        app.post(f"/jobs/{stage_type}", summary=f"Start {stage_type} and stream its progress (SSE)")(start_streaming)
        app.post(f"/celery_jobs/{stage_type}", summary=f"Start {stage_type} and stream its progress (SSE); the replaced system's path")(start_streaming)

    @app.post("/jobs/episode_cleanup_async", status_code=202, summary="Re-embed, re-cluster and recompute screen time")
    def episode_cleanup(req: JobRequest) -> JSONResponse:
        job = start("episode_cleanup", req.ep_id, req.run_id, req.profile, req.overrides, True, req.model_dump())
        return JSONResponse(_job_response(job), status_code=202)

    @app.post("/jobs/screen_time/analyze", status_code=202)
    def analyze_screen_time(req: AnalyzeScreenTimeRequest) -> JSONResponse:
        overrides: dict[str, Any] = {"screentime.preset": req.preset}
        if req.screen_time_mode:
            overrides["screentime.mode"] = req.screen_time_mode
        job = start("screen_time_analyze", req.ep_id, req.run_id, None, overrides, False, req.model_dump())
        return JSONResponse(_job_response(job), status_code=202)

    @app.post("/episodes/{ep_id}/runs/{run_id}/jobs/{stage}", status_code=202)
    def run_scoped_job(req: RunJobRequest, ep_id: str = EP, run_id: str = RUN, stage: StageName = PathParam(...)) -> JSONResponse:
        job_type = "screentime" if stage is StageName.screentime else stage.value
        job = start(job_type, ep_id, run_id, req.profile, req.overrides, req.force, {"ep_id": ep_id, "run_id": run_id, **req.model_dump()})
        return JSONResponse(_job_response(job), status_code=202)

    @app.get("/jobs", response_model=JobListResponse)
    def list_jobs(ep_id: Optional[str] = Query(None, pattern=EP_ID_PATTERN), job_type: Optional[str] = Query(None, max_length=64)) -> dict:
        return {"jobs": store.list_jobs(ep_id=ep_id, job_type=job_type)}

    @app.get("/jobs/{job_id}", response_model=Job)
    def get_job(job_id: str = PathParam(pattern=r"^job-[0-9a-f]{12}$")) -> dict:
        return job_or_404(job_id)

    @app.get("/jobs/{job_id}/progress")
    def job_progress(job_id: str = PathParam(pattern=r"^job-[0-9a-f]{12}$")) -> dict:
        job = job_or_404(job_id)
        return {"job_id": job_id, "state": job["state"], "progress": job["progress"], "error": job["error"]}

    @app.post("/jobs/{job_id}/cancel", response_model=Job)
    def cancel(job_id: str = PathParam(pattern=r"^job-[0-9a-f]{12}$")) -> dict:
        job_or_404(job_id)
        return job_service.cancel_job(store, job_id)

    # --- corrections --------------------------------------------------------------------------------

    def view(layout: RunLayout):
        """(corrected identities + assignments, tracks by id, centroids by identity) of a clustered run."""
        require_clusters(layout)
        inputs, resolved = resolved_inputs(storage, layout, with_detections=False)
        tracks = inputs.tracks
        centroids_key = layout.manifest("cluster_centroids.json")
        centroids = read_model(storage, centroids_key, ClusterCentroidsFile) if storage.exists(centroids_key) else None
        return resolved, {t.track_id: t for t in tracks}, {c.identity_id: c.centroid for c in (centroids.centroids if centroids else [])}

    def assignments_body(layout: RunLayout) -> dict:
        resolved, _, _ = view(layout)
        a = resolved.assignments
        log = load_corrections(storage, layout)
        return {
            "ep_id": layout.ep_id,
            "run_id": layout.run_id,
            "manual_assignments": a.manual_assignments,
            "track_overrides": a.track_overrides,
            "face_exclusions": a.face_exclusions,
            "identities": [
                {"identity_id": i.identity_id, "track_ids": i.track_ids, "cast_id": a.manual_assignments.get(i.identity_id)}
                for i in resolved.identities.identities
            ],
            "unattached": [u.model_dump() for u in resolved.unattached],
            "corrections": len(log.corrections),
        }

    def append_correction(ep_id: str, run_id: str, build) -> dict:
        layout = run_or_404(ep_id, run_id)
        with store.mutex():
            resolved, tracks, centroids = view(layout)
            identities = {i.identity_id: i for i in resolved.identities.identities}

            def identity(identity_id: str) -> IdentityAnchor:
                if identity_id not in identities:
                    raise HTTPException(404, f"Identity {identity_id} not found in {ep_id}/{run_id}")
                return identity_anchor(identities[identity_id], tracks, centroids)

            def track(track_id: int) -> TrackAnchor:
                if track_id not in tracks:
                    raise HTTPException(404, f"Track {track_id} not found in {ep_id}/{run_id}")
                return track_anchor(tracks[track_id])

            log = load_corrections(storage, layout)
            fields = build(identity, track)
            log.corrections.append(Correction(seq=len(log.corrections) + 1, **fields))
            write_model(storage, layout.manifest(CORRECTIONS_FILE), log)
        return assignments_body(layout)

    @app.get("/episodes/{ep_id}/assignments", response_model=AssignmentsResponse)
    def get_assignments(ep_id: str = EP, run_id: str = RUN_Q) -> dict:
        return assignments_body(run_or_404(ep_id, run_id))

    def cluster_assignment(req: ClusterAssignRequest, ep_id: str = EP) -> dict:
        return append_correction(ep_id, req.run_id, lambda identity, track: {"op": "assign_cluster", "identity": identity(req.cluster_id), "cast_id": req.cast_id})

    def track_assignment(req: TrackAssignRequest, ep_id: str = EP) -> dict:
        return append_correction(ep_id, req.run_id, lambda identity, track: {"op": "assign_track", "track": track(req.track_id), "cast_id": req.cast_id})

    def face_exclusion(req: FaceExclusionRequest, ep_id: str = EP) -> dict:
        track_id, frame_idx = (int(x) for x in req.face_id.split("_")[1:3])
        return append_correction(
            ep_id, req.run_id, lambda identity, track: {"op": "exclude_face", "track": track(track_id), "frame_idx": frame_idx, "exclude": req.excluded}
        )

    for method in (app.post, app.put):
        method("/episodes/{ep_id}/assignments/cluster", response_model=AssignmentsResponse)(cluster_assignment)
        method("/episodes/{ep_id}/assignments/track", response_model=AssignmentsResponse)(track_assignment)
        method("/episodes/{ep_id}/assignments/face_exclusion", response_model=AssignmentsResponse)(face_exclusion)

    @app.post("/episodes/{ep_id}/identities/merge", response_model=AssignmentsResponse)
    def merge_identities(req: MergeRequest, ep_id: str = EP) -> dict:
        if req.target_identity_id == req.source_identity_id:
            raise HTTPException(422, "cannot merge an identity into itself")
        return append_correction(
            ep_id, req.run_id, lambda identity, track: {"op": "merge", "identity": identity(req.target_identity_id), "other": identity(req.source_identity_id)}
        )

    @app.post("/episodes/{ep_id}/tracks/{track_id}/move", response_model=AssignmentsResponse)
    def move_track(req: MoveTrackRequest, ep_id: str = EP, track_id: int = PathParam(ge=1)) -> dict:
        return append_correction(
            ep_id, req.run_id, lambda identity, track: {"op": "move_track", "track": track(track_id), "identity": identity(req.to_identity_id)}
        )

    @app.post("/episodes/{ep_id}/identities/split", response_model=AssignmentsResponse)
    def split_identity(req: SplitRequest, ep_id: str = EP) -> dict:
        return append_correction(ep_id, req.run_id, lambda identity, track: {"op": "split", "tracks": [track(t) for t in req.track_ids]})

    # --- review: validator, crops, bundle, previews, clips, timeline ---------------------------------

    def video_path(ep_id: str) -> str:
        from pipelines.runner import resolve_video_source

        source = source_video(episode_or_404(ep_id))
        if source is None:
            raise HTTPException(409, f"episode {ep_id} has no video")
        return str(resolve_video_source(source, Path.home() / ".cache" / "screenalytics"))

    def track_labels(layout: RunLayout) -> dict[int, str]:
        resolved, _, _ = view(layout)
        names = {c["cast_id"]: c["name"] for c in store.list_cast()}
        labels = {}
        for ident in resolved.identities.identities:
            cast = resolved.assignments.manual_assignments.get(ident.identity_id)
            for t in ident.track_ids:
                labels[t] = names.get(cast, cast) if cast else ident.identity_id
        for t, cast in resolved.assignments.track_overrides.items():
            labels[int(t)] = names.get(cast, cast)
        return labels

    def detection_index(layout: RunLayout) -> tuple[DetectionIndex, float, int]:
        meta = read_model(storage, layout.manifest("video.json"), VideoMeta)
        stride = read_model(storage, layout.manifest("track_metrics.json"), TrackMetrics).stride
        return DetectionIndex(read_jsonl(storage, layout.manifest("detections.jsonl"), DetectionRow)), meta.fps, stride

    @app.get("/episodes/{ep_id}/runs/{run_id}/integrity", response_model=IntegrityReport)
    def run_integrity(ep_id: str = EP, run_id: str = RUN) -> IntegrityReport:
        layout = run_or_404(ep_id, run_id)
        unattached = []
        if storage.exists(layout.manifest("identities.json")):
            unattached = [u.seq for u in view(layout)[0].unattached]
        return validate_run(storage, layout, unattached)

    def faces_of_track(layout: RunLayout, track_id: int) -> list[FaceRow]:
        if not storage.exists(layout.manifest("faces.jsonl")):
            raise HTTPException(409, f"no faces for {layout.ep_id}/{layout.run_id} yet: run the faces_embed stage")
        faces = [f for f in read_jsonl(storage, layout.manifest("faces.jsonl"), FaceRow) if f.track_id == track_id]
        if not faces:
            raise HTTPException(404, f"Track {track_id} not found in {layout.ep_id}/{layout.run_id}")
        return faces

    @app.get("/episodes/{ep_id}/tracks/{track_id}/crops")
    def track_crops(ep_id: str = EP, track_id: int = PathParam(ge=1), run_id: str = RUN_Q,
                    offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=500)) -> dict:
        layout = run_or_404(ep_id, run_id)
        faces = faces_of_track(layout, track_id)
        page = faces[offset : offset + limit]
        return {
            "ep_id": ep_id, "run_id": run_id, "track_id": track_id, "total": len(faces),
            "crops": [{**f.model_dump(), "url": f"/episodes/{ep_id}/runs/{run_id}/crops/{track_id}/{f.frame_idx}.jpg" if f.crop_path else None} for f in page],
        }

    @app.get("/episodes/{ep_id}/runs/{run_id}/crops/{track_id}/{frame_idx}.jpg", response_class=Response)
    def crop_image(ep_id: str = EP, run_id: str = RUN, track_id: int = PathParam(ge=1), frame_idx: int = PathParam(ge=0)) -> Response:
        layout = run_or_404(ep_id, run_id)
        key = layout.crop(track_id, frame_idx)
        if not storage.exists(key):
            raise HTTPException(404, f"no crop for track {track_id} at frame {frame_idx}")
        return Response(storage.read_bytes(key), media_type="image/jpeg")

    @app.get("/episodes/{ep_id}/tracks/{track_id}/integrity", response_model=IntegrityReport)
    def track_integrity(ep_id: str = EP, track_id: int = PathParam(ge=1), run_id: str = RUN_Q) -> IntegrityReport:
        layout = run_or_404(ep_id, run_id)
        faces_of_track(layout, track_id)
        return validate_run(storage, layout, track_id=track_id)

    @app.get("/episodes/{ep_id}/faces_review_bundle")
    def faces_review_bundle(ep_id: str = EP, run_id: str = RUN_Q) -> dict:
        """Everything the review screen needs: identities (with corrections), their tracks and seconds, validator."""
        layout = run_or_404(ep_id, run_id)
        resolved, tracks, _ = view(layout)
        report = live_screentime(layout, "default", None)
        seconds = {i.identity_id: i.visual_s for i in report.identities}
        reps = {r.track_id: r for r in read_jsonl(storage, layout.manifest("track_reps.jsonl"), TrackRep)}
        return {
            "ep_id": ep_id,
            "run_id": run_id,
            "identities": [
                {
                    "identity_id": i.identity_id,
                    "cast_id": resolved.assignments.manual_assignments.get(i.identity_id),
                    "visual_s": seconds.get(i.identity_id, 0.0),
                    "cohesion": i.cohesion,
                    "rep_crop_url": _crop_url(ep_id, run_id, i.rep_face_id),
                    "tracks": [
                        {"track_id": t, "start_s": tracks[t].start_s, "end_s": tracks[t].end_s, "faces": tracks[t].frame_count,
                         "mixed": reps[t].mixed if t in reps else None, "rep_crop_url": _crop_url(ep_id, run_id, reps[t].rep_face_id if t in reps else None)}
                        for t in i.track_ids if t in tracks
                    ],
                }
                for i in sorted(resolved.identities.identities, key=lambda i: -seconds.get(i.identity_id, 0.0))
            ],
            "unattached": [u.model_dump() for u in resolved.unattached],
            "validator": validate_run(storage, layout, [u.seq for u in resolved.unattached]).model_dump(),
        }

    @app.get("/episodes/{ep_id}/timestamp/{timestamp_s}/preview", response_class=Response)
    def timestamp_preview(ep_id: str = EP, timestamp_s: float = PathParam(ge=0, le=86400), run_id: str = RUN_Q) -> Response:
        """The frame at ``timestamp_s`` with named face boxes (JPEG)."""
        from pipelines.video import VideoError, read_frame_at

        layout = run_or_404(ep_id, run_id)
        index, fps, stride = detection_index(layout)
        try:
            frame = read_frame_at(video_path(ep_id), timestamp_s)
        except VideoError as exc:
            raise HTTPException(422, str(exc)) from None
        image = draw(frame, index.near(int(round(timestamp_s * fps)), stride), track_labels(layout) if storage.exists(layout.manifest("identities.json")) else {})
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        return Response(jpeg.tobytes(), media_type="image/jpeg")

    @app.post("/episodes/{ep_id}/video_clip", response_class=Response)
    def video_clip(req: VideoClipRequest, ep_id: str = EP) -> Response:
        """An MP4 of ``[start_s, end_s)`` with named face boxes (at most 60 s)."""
        layout = run_or_404(ep_id, req.run_id)
        if req.end_s <= req.start_s:
            raise HTTPException(422, "end_s must be after start_s")
        index, fps, stride = detection_index(layout)
        meta = read_model(storage, layout.manifest("video.json"), VideoMeta)
        if req.start_s >= meta.duration_s:
            raise HTTPException(422, f"start_s is past the end of the video ({meta.duration_s:.1f}s)")
        labels = track_labels(layout) if storage.exists(layout.manifest("identities.json")) else {}
        data = render_clip(video_path(ep_id), req.start_s, min(req.end_s, meta.duration_s), index, labels, stride, fps)
        return Response(data, media_type="video/mp4", headers={"Content-Disposition": f'attachment; filename="{ep_id}_{req.start_s:.0f}-{req.end_s:.0f}.mp4"'})

    @app.get("/episodes/{ep_id}/timeline_export")
    def timeline_export(ep_id: str = EP, run_id: str = RUN_Q, format: str = Query("json", pattern="^(json|csv)$")):
        """Who is on screen each second: seconds covered per person in every one-second bin."""
        from pipelines import intervals as iv

        layout = run_or_404(ep_id, run_id)
        report = live_screentime(layout, "default", None)
        rows = {r.name: iv.seconds_per_bin(r.intervals, report.math.video_duration_s) for r in report.timeline if r.intervals}
        for ident in report.identities:
            if ident.cast_id is None:
                rows[ident.identity_id] = iv.seconds_per_bin(ident.intervals, report.math.video_duration_s)
        rows.pop("Unassigned", None)
        n = max((len(v) for v in rows.values()), default=0)
        seconds = [{"second": k, "on_screen": {name: round(v[k], 3) for name, v in rows.items() if v[k] > 0}} for k in range(n)]
        if format == "csv":
            names = sorted(rows)
            return PlainTextResponse(csv_text(["second", *names], [{"second": s["second"], **s["on_screen"]} for s in seconds]), media_type="text/csv")
        return {"ep_id": ep_id, "run_id": run_id, "people": sorted(rows), "seconds": seconds}

    # --- shows + cast -----------------------------------------------------------------------------

    @app.get("/shows")
    def list_shows() -> dict:
        return {"shows": store.list_shows()}

    @app.post("/shows", status_code=201)
    def create_show(req: ShowCreateRequest) -> dict:
        return {"show_id": req.show_id, "created": store.create_show(req.show_id, req.name)}

    def show_or_404(show_id: str) -> dict:
        show = store.get_show(show_id)
        if show is None:
            raise HTTPException(404, f"Show {show_id} not found")
        return show

    SHOW = PathParam(pattern=SHOW_SLUG_PATTERN)
    CAST = PathParam(pattern=CAST_ID_PATTERN)

    @app.get("/shows/{show_id}/cast")
    def list_cast(show_id: str = SHOW) -> dict:
        show_or_404(show_id)
        return {"show_id": show_id, "cast": store.list_cast(show_id)}

    @app.post("/shows/{show_id}/cast", status_code=201)
    def create_cast(req: CastCreateRequest, show_id: str = SHOW) -> dict:
        show_or_404(show_id)
        existing = store.get_cast(req.cast_id)
        if existing and existing["show_id"] != show_id:
            raise HTTPException(409, f"cast id {req.cast_id} belongs to show {existing['show_id']}")
        return {"cast_id": req.cast_id, "created": store.create_cast(req.cast_id, show_id, req.name)}

    def cast_or_404(show_id: str, cast_id: str) -> dict:
        show_or_404(show_id)
        member = store.get_cast(cast_id)
        if member is None or member["show_id"] != show_id:
            raise HTTPException(404, f"Cast member {cast_id} not found in show {show_id}")
        return member

    @app.get("/shows/{show_id}/cast/{cast_id}")
    def get_cast(show_id: str = SHOW, cast_id: str = CAST) -> dict:
        return cast_or_404(show_id, cast_id)

    @app.patch("/shows/{show_id}/cast/{cast_id}")
    def update_cast(req: CastUpdateRequest, show_id: str = SHOW, cast_id: str = CAST) -> dict:
        cast_or_404(show_id, cast_id)
        store.update_cast(cast_id, req.name)
        return store.get_cast(cast_id)  # type: ignore[return-value]

    @app.delete("/shows/{show_id}/cast/{cast_id}")
    def delete_cast(show_id: str = SHOW, cast_id: str = CAST) -> dict:
        cast_or_404(show_id, cast_id)
        return {"cast_id": cast_id, "deleted": store.delete_cast(cast_id)}

    app.state.store = store
    app.state.storage = storage
    return app
