"""Response bodies of the routes that answer with more than a stored artifact (the OpenAPI schema is
generated from these), and the error responses each route can give."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, Field

from pipelines.schemas import CastMember, FaceRow, LabelConflict, ShowRecord, Unattached
from pipelines.service import IntegrityReport

from .models import Job, StageStatus


class ErrorResponse(BaseModel):
    detail: Any = Field(description="What was wrong: a sentence, or for 422 the fields refused")


class StaleClusteringResponse(ErrorResponse):
    cluster_version: str = Field(description="The run's current clustering version: reload the ids and send this one")


def errors(*codes: int, stale: bool = False) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: each error status it can give, with its body's model."""
    meaning = {
        400: "malformed request body (e.g. multipart whose boundary or headers are broken)",
        401: "a mutating request without the API token (when the server has one)",
        404: "an unknown episode, run, identity, track, job, show or cast member",
        409: "the run's state does not allow it (a stage not run yet, a job in flight, another show's cast member)",
        413: "an upload over the size limit",
        415: "a body that is not JSON or multipart",
        422: "a bad id, parameter or body",
    }
    out: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse, "description": meaning[code]} for code in codes}
    if stale:
        out[409] = {"model": StaleClusteringResponse, "description": meaning[409] + "; or the run was re-clustered since the ids were read"}
    return out


READ = errors(404, 422)
WRITE = errors(401, 404, 409, 422)


def binary(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """A 200 whose body is a file (JPEG, MP4, CSV, an event stream), not JSON."""
    return {200: {"content": {media_type: {"schema": {"type": "string", "format": "binary"}}}, "description": description}}


class HealthResponse(BaseModel):
    status: str
    data_dir: str
    auth: bool = Field(description="whether mutating requests need the API token")


class EpisodeDeleted(BaseModel):
    ep_id: str
    deleted: bool
    artifacts_removed: int


class EpisodeProgress(BaseModel):
    ep_id: str
    job_id: Optional[str]
    job_type: Optional[str] = None
    state: Optional[str]
    progress: Optional[dict[str, Any]]


class JobAccepted(Job):
    progress_url: str
    events_url: str = Field(description="server-sent events of the job's progress until it ends")


class JobProgress(BaseModel):
    job_id: str
    state: str
    progress: Optional[dict[str, Any]]
    error: Optional[str]


class RunState(BaseModel):
    ep_id: str
    run_id: str
    stages: list[StageStatus]
    active_job: Optional[Job] = Field(None, description="the job in flight on the run, if any")
    artifacts: list[str]


class TrackSummary(BaseModel):
    track_id: int
    start_s: float
    end_s: float
    faces: int


class ClusterView(BaseModel):
    identity_id: str
    cohesion: float
    rep_face_id: Optional[str]
    tracks: list[TrackSummary]


class ClusterTracks(BaseModel):
    ep_id: str
    run_id: str
    clusters: list[ClusterView]
    unclustered_track_ids: list[int]


class CropView(FaceRow):
    url: Optional[str]


class TrackCrops(BaseModel):
    ep_id: str
    run_id: str
    track_id: int
    total: int
    crops: list[CropView]


class ReviewBundle(BaseModel):
    ep_id: str
    run_id: str
    cluster_version: str = Field(description="send it back with corrections made from this bundle (409 once re-clustered)")
    suggestion_floor: Optional[float] = Field(description="suggestions scoring below it are not likely cast matches (each suggestion's `likely`)")
    identities: list[dict[str, Any]] = Field(
        description="longest on screen first: naming, suggestions (with `likely`), merge candidates, seconds, tracks (and faces with ?faces=N)"
    )
    needs_review: list[dict[str, Any]]
    unattached: list[Unattached]
    conflicts: list[LabelConflict]
    validator: IntegrityReport


class TimelineExport(BaseModel):
    ep_id: str
    run_id: str
    people: list[str]
    seconds: list[dict[str, Any]] = Field(description="per second of the episode: {second, on_screen: {person: seconds}}")


class CorrectionEntry(BaseModel):
    seq: int
    op: str
    cast_id: Optional[str]
    created_at: str
    undone: bool
    target_seq: Optional[int]
    group: Optional[str] = None


class CorrectionsList(BaseModel):
    ep_id: str
    run_id: str
    corrections: list[CorrectionEntry] = Field(description="newest first")
    next_undo: Optional[int] = Field(description="the entry an undo takes back next")


class ShowList(BaseModel):
    shows: list[ShowRecord]


class ShowCreated(BaseModel):
    show_id: str
    created: bool


class CastList(BaseModel):
    show_id: str
    cast: list[CastMember]


class CastCreated(BaseModel):
    cast_id: str
    created: bool


class CastDeleted(BaseModel):
    cast_id: str
    deleted: bool


class FacebankFace(BaseModel):
    entry_id: str
    kind: str
    cast_id: Optional[str] = None
    label: Optional[str] = None
    source: str
    photo: Optional[str] = None
    ep_id: Optional[str] = None
    run_id: Optional[str] = None
    identity_id: Optional[str] = None
    face_id: Optional[str] = None
    embedding_model: str
    created_at: str
    chip_url: Optional[str]


class FacebankView(BaseModel):
    show_id: str
    faces: list[FacebankFace]
    models: dict[str, int] = Field(description="faces per embedding model")


class CastFaces(BaseModel):
    show_id: str
    cast_id: str
    faces: list[FacebankFace]


class FacesAdded(BaseModel):
    show_id: str
    cast_id: str
    added: list[FacebankFace]


class FaceDeleted(BaseModel):
    entry_id: str
    deleted: int


class SeasonTable(BaseModel):
    show_id: str
    run_id: str
    rows: list[dict[str, Any]] = Field(description="episode x cast member: seconds, share of the episode, how it was named, speaking")
    episodes: list[dict[str, Any]]
    totals: list[dict[str, Any]]
    skipped: list[dict[str, str]]


class SessionState(BaseModel):
    auth_required: Optional[bool] = None
    signed_in: bool
    csrf_token: Optional[str] = None
