"""Request and response bodies of the HTTP API (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from pipelines.ids import (
    CAST_ID_PATTERN,
    FACE_ID_PATTERN,
    IDENTITY_ID_PATTERN,
    RUN_ID_PATTERN,
    SHOW_SLUG_PATTERN,
)
from pipelines.schemas import LabelConflict, Unattached


class RequestBody(BaseModel):
    # Request bodies: no unknown fields, no NaN/Infinity, no string longer than a page of text.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=10_000)


SettingValue = Union[StrictBool, int, float, Annotated[str, Field(max_length=1000)], None]
Overrides = Annotated[
    dict[Annotated[str, Field(max_length=128)], Union[SettingValue, dict[Annotated[str, Field(max_length=64)], SettingValue]]],
    Field(default_factory=dict, max_length=64, description="Settings as dotted keys, e.g. detect_track.detect_fps"),
]
Profile = Optional[Annotated[str, Field(max_length=64, pattern=r"^[a-z_]{1,64}$")]]


class EpisodeCreateRequest(RequestBody):
    show_slug_or_id: str = Field(pattern=SHOW_SLUG_PATTERN)
    season_number: int = Field(ge=0, le=999)
    episode_number: int = Field(ge=0, le=999)
    title: Optional[str] = Field(None, max_length=500)
    air_date: Optional[str] = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$")


class EpisodeCreateResponse(BaseModel):
    ep_id: str
    created: bool


class EpisodeUpdateRequest(RequestBody):
    title: Optional[str] = Field(None, max_length=500)
    air_date: Optional[str] = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$")


class Episode(BaseModel):
    ep_id: str
    show_slug: str
    season_number: int
    episode_number: int
    title: Optional[str]
    air_date: Optional[str]
    created_at: str
    updated_at: str


class EpisodeListResponse(BaseModel):
    episodes: list[Episode]


class S3Info(BaseModel):
    bucket: Optional[str]
    v2_key: str
    v2_exists: bool
    v1_key: str
    v1_exists: bool


class LocalInfo(BaseModel):
    key: Optional[str]
    exists: bool


class EpisodeDetailResponse(Episode):
    s3: S3Info
    local: LocalInfo


class RunJobRequest(RequestBody):
    profile: Profile = None
    overrides: Overrides
    force: bool = False


class Job(BaseModel):
    job_id: str
    ep_id: str
    run_id: str
    job_type: str
    state: Literal["queued", "running", "succeeded", "failed", "canceled"]
    requested: dict[str, Any]
    progress: Optional[dict[str, Any]]
    result: Optional[dict[str, Any]]
    error: Optional[str]
    actor_name: Optional[str]
    created_at: str
    started_at: Optional[str]
    finished_at: Optional[str]


class JobListResponse(BaseModel):
    jobs: list[Job]
    total: int
    next_offset: Optional[int] = Field(description="offset of the next page; null on the last one")


class StageStatus(BaseModel):
    stage: str
    state: Optional[str] = Field(description="null: never run, or invalidated by a later change upstream")
    finished_at: Optional[str] = None
    counts: dict[str, float] = Field(default_factory=dict)
    error: Optional[str] = None


class EpisodeStatusResponse(BaseModel):
    ep_id: str
    run_id: str
    stages: list[StageStatus]
    active_job: Optional[Job]


class RunSummary(BaseModel):
    run_id: str
    stages: list[StageStatus]


class RunListResponse(BaseModel):
    ep_id: str
    runs: list[RunSummary]


class AudioPrerequisites(BaseModel):
    available: bool
    missing: list[str]
    detail: str


IDENTITY_PATTERN = IDENTITY_ID_PATTERN
RUN_FIELD = Field("main", pattern=RUN_ID_PATTERN)
CLUSTER_VERSION_PATTERN = r"^[0-9a-f]{16}$"


class CorrectionByIds(RequestBody):
    """A correction that names identities or tracks by id: the ids mean what they meant in the clustering
    the client read them from. ``cluster_version`` (or an ``If-Match`` header with it) makes a stale
    correction a 409 instead of landing on whoever holds those ids after a re-cluster."""

    cluster_version: Optional[str] = Field(
        None, pattern=CLUSTER_VERSION_PATTERN, description="cluster_version of the assignments or review bundle the ids come from; 409 when it changed"
    )
    group: Optional[str] = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the same value on corrections made in one step (a bulk action): one undo takes them all back"
    )


class ClusterAssignRequest(CorrectionByIds):
    cluster_id: str = Field(pattern=IDENTITY_PATTERN, description="identity_id of the cluster")
    cast_id: Optional[str] = Field(None, pattern=CAST_ID_PATTERN, description="null clears the assignment")


class TrackAssignRequest(CorrectionByIds):
    track_id: int = Field(ge=1, le=10**9)
    cast_id: Optional[str] = Field(None, pattern=CAST_ID_PATTERN)


class FaceExclusionRequest(CorrectionByIds):
    face_id: str = Field(pattern=FACE_ID_PATTERN)
    excluded: bool = True


class MergeRequest(CorrectionByIds):
    target_identity_id: str = Field(pattern=IDENTITY_PATTERN)
    source_identity_id: str = Field(pattern=IDENTITY_PATTERN)


class MoveTrackRequest(CorrectionByIds):
    to_identity_id: str = Field(pattern=IDENTITY_PATTERN)


class SplitRequest(CorrectionByIds):
    track_ids: list[Annotated[int, Field(ge=1, le=10**9)]] = Field(min_length=1, max_length=10000)


class IdentityView(BaseModel):
    identity_id: str
    track_ids: list[int]
    cast_id: Optional[str]
    name_source: Optional[Literal["auto", "manual"]] = None
    mark: Optional[Literal["guest", "not_face", "face"]] = None


class RejectRequest(CorrectionByIds):
    cast_id: str = Field(pattern=CAST_ID_PATTERN, description='the cast member this identity is not ("not X")')
    active: bool = Field(True, description="false takes the rejection back")


class VoiceAssignRequest(RequestBody):
    cast_id: Optional[str] = Field(pattern=CAST_ID_PATTERN, description="null clears the assignment")


class UndoRequest(RequestBody):
    seq: Optional[int] = Field(None, ge=1, le=10**9, description="the entry to take back (default: the newest still in effect)")


class MarkRequest(CorrectionByIds):
    kind: Optional[Literal["guest", "not_face", "face"]] = Field(description="face: a junk or extra identity is a real face that counts; null clears the mark")
    label: Optional[str] = Field(None, min_length=1, max_length=200, description="a guest's name (recognised in later episodes)")


class AssignmentsResponse(BaseModel):
    ep_id: str
    run_id: str
    manual_assignments: dict[str, str]
    track_overrides: dict[str, str]
    face_exclusions: list[str]
    auto_assignments: dict[str, str] = Field(default_factory=dict, description="identity_id -> cast_id named from the facebank")
    marks: dict[str, str] = Field(default_factory=dict)
    guest_labels: dict[str, str] = Field(default_factory=dict)
    rejected: dict[str, list[str]] = Field(default_factory=dict)
    facebank: Optional[dict[str, int]] = Field(None, description="faces this correction added to / removed from the show's facebank")
    identities: list[IdentityView]
    unattached: list[Unattached]
    conflicts: list[LabelConflict] = Field(description="labels the current clustering merged into one identity or split apart; see README")
    corrections: int
    cluster_version: str = Field(description="what the identity and track ids above mean: send it back with a correction (409 once the run is re-clustered)")


class ShowCreateRequest(RequestBody):
    show_id: str = Field(pattern=SHOW_SLUG_PATTERN)
    name: str = Field(min_length=1, max_length=200)


class CastCreateRequest(RequestBody):
    cast_id: str = Field(pattern=CAST_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)


class CastUpdateRequest(RequestBody):
    name: str = Field(min_length=1, max_length=200)


class VideoClipRequest(RequestBody):
    start_s: float = Field(ge=0, le=86400)
    end_s: float = Field(gt=0, le=86400)

    @model_validator(mode="after")
    def _at_most_a_minute(self) -> VideoClipRequest:
        if self.end_s - self.start_s > 60:
            raise ValueError("a clip is at most 60 s long")
        return self
