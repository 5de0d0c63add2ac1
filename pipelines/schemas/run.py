"""Typed models for every artifact the pipeline writes. Every writer and reader uses these.

Field names follow the replaced system's documented artifacts (``../shared/seed``) where they exist.
Times are seconds from the start of the video; frame indices are 0-based decode order; boxes are
``[x1, y1, x2, y2]`` in source-video pixels.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal, Optional

from pydantic import Field

from .audio import SpeakerLink
from .base import SCHEMA_VERSION, _Model, utc_now
from .shows import Suggestion


class StageName(str, Enum):
    detect_track = "detect_track"
    faces_embed = "faces_embed"
    cluster = "cluster"
    naming = "naming"
    audio = "audio"
    screentime = "screentime"


STAGE_ORDER: tuple[StageName, ...] = tuple(StageName)


class StageState(str, Enum):
    """The one state vocabulary, shared by stages and jobs."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    canceled = "canceled"


# --- video + shots -------------------------------------------------------------------------------


class VideoMeta(_Model):
    path: str
    fps: float
    frame_count: int
    duration_s: float
    width: int
    height: int
    codec: str
    size_bytes: int
    content_id: str = Field(description="Cheap content fingerprint (size + sampled bytes); keys caches.")


class Segment(_Model):
    index: int
    start_frame: int
    end_frame: int  # exclusive


class SegmentSummary(_Model):
    """Written into each segment detection file's metadata."""

    segment: Segment
    frames_decoded: int
    sampled_frames: list[int]
    cut_frames: list[int] = Field(description="Frames that start a new shot (frame differs from the previous one).")
    detections: int
    frames_detected: Optional[int] = Field(
        None,
        description="Sampled frames the detector ran on (keyframes); the others' faces were interpolated. None: every one (files written before keyframes).",
    )
    work_s: dict[str, float] = Field(
        default_factory=dict,
        description="CPU seconds the segment cost, by kind of work (decode or decode_nvdec, cuts, convert, resize, detect, chips, keyframes: deciding where to detect and interpolating).",
    )
    decoder: Literal["cpu", "nvdec"] = Field("cpu", description="Which decoder produced the segment's pictures: the CPU, or NVIDIA's NVDEC.")


class Shot(_Model):
    index: int
    start_frame: int
    end_frame: int  # exclusive
    start_s: float
    end_s: float


class ShotsFile(_Model):
    ep_id: str
    fps: float
    shots: list[Shot]


# --- detect_track ---------------------------------------------------------------------------------


class DetectionRow(_Model):
    ep_id: str
    ts: float
    frame_idx: int
    det_idx: int = Field(description="Index of the detection within its frame.")
    conf: float
    bbox_xyxy: list[float] = Field(min_length=4, max_length=4)
    landmarks: list[list[float]] = Field(description="5 points (eyes, nose, mouth corners) as [x, y].")
    track_id: Optional[int]
    interpolated: bool = Field(
        False, description="True: carried between two detected frames of its track (see detect_track.keyframe_max_gap), not detected in this frame."
    )


class TrackRow(_Model):
    track_id: int
    shot_idx: int
    first_ts: float
    last_ts: float
    first_frame_idx: int
    last_frame_idx: int
    frame_count: int = Field(description="Sampled frames in which the track was detected.")
    start_s: float = Field(description="Estimated on-screen start (first detection, within the sampling step).")
    end_s: float = Field(description="Estimated on-screen end (last detection, within the sampling step).")
    mean_conf: float
    max_face_px: float
    bboxes_sampled: list[list[float]]


class TrackMetrics(_Model):
    ep_id: str
    run_id: str
    frames_total: int
    frames_sampled: int
    stride: int
    detections: int
    tracks: int
    shots: int
    segments: int
    stitched_links: int
    wall_s: float
    segment_frames: Optional[int] = Field(None, description="Frames per detection segment (null in runs made before it was recorded)")
    frames_detected: Optional[int] = Field(None, description="Sampled frames the detector ran on (null in runs made before keyframes: all of them).")
    interpolated: Optional[int] = Field(None, description="Detections interpolated between detected frames (see detect_track.keyframe_max_gap).")
    work_s: dict[str, float] = Field(
        default_factory=dict,
        description="Where the stage's time went: CPU seconds summed over the detector actors by kind of work (decode, "
        "cuts, convert, resize, detect, chips), and the driver's wall seconds: until the first and the last detection "
        "came back (first_frame_wall, detect_wall: absent when every segment was reused), reading segments and "
        "tracking (track_wall), writing the manifests (write_wall).",
    )
    decoders: dict[str, int] = Field(default_factory=dict, description="Segments per decoder (cpu, nvdec).")


# --- faces_embed ---------------------------------------------------------------------------------


class FaceRow(_Model):
    face_id: str
    track_id: int
    frame_idx: int
    ts: float
    bbox_xyxy: list[float]
    conf: float
    quality: float
    blur: float
    contrast: float
    embedding_model: Optional[str]
    embedding_row: Optional[int] = Field(description="Row in faces.npy; null when skipped.")
    crop_path: Optional[str]
    skip: Optional[str] = Field(description="Why the face got no embedding (low_conf, low_contrast, blurry).")


class TrackRep(_Model):
    track_id: int
    faces_count: int
    embedded_count: int
    rep_face_id: Optional[str]
    prototype_row: Optional[int] = Field(description="Row in track_prototypes.npy; null when no face passed.")
    spread: float = Field(description="Mean cosine distance of the track's faces to its prototype.")
    mixed: bool = Field(description="Spread above the configured limit: the track may hold two people.")


# --- cluster -------------------------------------------------------------------------------------


class Identity(_Model):
    identity_id: str
    track_ids: list[int]
    size: int
    cohesion: float = Field(description="Mean cosine similarity of member prototypes to the centroid.")
    rep_face_id: Optional[str]
    first_ts: float
    kind: Literal["face", "extra", "junk"] = Field(
        "face", description="junk: not a face (out of screen time); extra: too small, brief or far in the background (reported apart)"
    )
    reason: Optional[str] = Field(None, description="Why an identity is junk or an extra.")


class IdentitiesFile(_Model):
    ep_id: str
    run_id: str
    embedding_model: str
    similarity_threshold: float
    identities: list[Identity]
    unclustered_track_ids: list[int] = Field(description="Tracks with no usable embedding.")
    co_occurring_tracks: list[list[int]] = Field(default_factory=list, description="Track pairs seen in one frame: never one person.")


class ClusterCentroid(_Model):
    identity_id: str
    centroid: list[float]


class ClusterCentroidsFile(_Model):
    ep_id: str
    run_id: str
    centroids: list[ClusterCentroid]


# --- corrections (kept apart from cluster output) ------------------------------------------------


class Assignments(_Model):
    """Corrections resolved against the current identities (see :mod:`pipelines.corrections`)."""

    ep_id: str
    run_id: str
    manual_assignments: dict[str, str] = Field(default_factory=dict, description="identity_id -> cast_id")
    track_overrides: dict[str, str] = Field(default_factory=dict, description="track_id -> cast_id")
    face_exclusions: list[str] = Field(default_factory=list)
    auto_assignments: dict[str, str] = Field(default_factory=dict, description="identity_id -> cast_id named from the facebank")
    marks: dict[str, Literal["guest", "not_face", "face"]] = Field(
        default_factory=dict, description="identity_id -> what a reviewer marked it (face: a junk or extra identity restored)"
    )
    guest_labels: dict[str, str] = Field(default_factory=dict, description="identity_id -> guest name")
    rejected: dict[str, list[str]] = Field(default_factory=dict, description='identity_id -> cast ids a reviewer said it is not ("not X")')
    updated_at: str = Field(default_factory=utc_now)


# --- screentime ----------------------------------------------------------------------------------


Interval = list[float]


NameSource = Literal["auto", "manual"]
IdentityKind = Literal["cast", "guest", "not_face", "unknown", "extra", "junk"]


class CastMetrics(_Model):
    name: str
    cast_id: Optional[str]
    person_id: Optional[str]
    named_by: Optional[Literal["auto", "manual", "mixed"]] = Field(None, description="How the identities counted were named.")
    face_visible_seconds: float
    visual_s: float
    speaking_s: Optional[float]
    both_s: Optional[float]
    voice_only_s: Optional[float] = Field(None, description="Speaking while not on screen.")
    confidence: float
    tracks_count: int
    faces_count: int


class IdentityScreentime(_Model):
    identity_id: str
    cast_id: Optional[str]
    name_source: Optional[NameSource] = None
    kind: IdentityKind = "unknown"
    label: Optional[str] = Field(None, description="A guest's name, when a reviewer gave one.")
    confidence: Optional[float] = Field(None, description="Similarity of the identity to its cast member's facebank faces.")
    suggestions: list[Suggestion] = Field(default_factory=list)
    visual_s: float
    intervals: list[Interval]
    track_ids: list[int]
    rep_face_id: Optional[str] = Field(None, description="The identity's representative face (its crop is the thumbnail).")


class TimelineRow(_Model):
    name: str
    cast_id: Optional[str]
    intervals: list[Interval]


class ScreentimeMath(_Model):
    cast_union_coverage_s: float
    cast_sum_time_s: float
    multi_cast_overlap_s: float
    video_duration_s: float


class IdentitySpeech(_Model):
    identity_id: str
    speaking_s: float
    both_s: float
    voice_only_s: float


class ScreentimeReport(_Model):
    ep_id: str
    run_id: str
    preset: str
    mode: Literal["tracks", "faces"]
    generated_at: str = Field(default_factory=utc_now)
    metrics: list[CastMetrics]
    identities: list[IdentityScreentime]
    timeline: list[TimelineRow]
    math: ScreentimeMath
    diagnostics: dict[str, float | int | str | list[str]]
    speakers: list[SpeakerLink] = Field(default_factory=list, description="Each voice, who it is (if known) and when it spoke: the speech timeline.")
    identity_speech: list[IdentitySpeech] = Field(default_factory=list)


CSV_COLUMNS = (
    "name",
    "cast_id",
    "person_id",
    "face_visible_seconds",
    "visual_s",
    "speaking_s",
    "both_s",
    "confidence",
    "tracks_count",
    "faces_count",
    "named_by",
    "voice_only_s",
)


# --- stage markers + progress --------------------------------------------------------------------


class StageMarker(_Model):
    stage: StageName
    state: StageState
    fingerprint: str
    config: dict
    started_at: str
    finished_at: Optional[str] = None
    counts: dict[str, float | int] = Field(default_factory=dict)
    error: Optional[str] = None
    schema_version: int = SCHEMA_VERSION


class Progress(_Model):
    phase: str
    step: str = ""
    frames_done: int = 0
    frames_total: int = 0
    secs_done: float = 0.0
    secs_total: float = 0.0
    fps_infer: Optional[float] = None
    device: str = "cpu"
    updated_at: str = Field(default_factory=utc_now)
    error: Optional[str] = None
