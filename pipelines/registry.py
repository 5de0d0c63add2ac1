"""Every artifact of a run, declared once: its file, its schema, and how it is read and written.

Stages, the review code, the API and :class:`~pipelines.stages.base.StageSpec` ``outputs`` use these
declarations; nothing else names a run's files (``tests/test_architecture.py`` checks it). Where a run's
folders are is :mod:`pipelines.layout`'s business; how bytes become models is :mod:`pipelines.artifacts`'.

Four shapes, each typed by what it holds:

- :class:`ModelArtifact`: one JSON document (a pydantic model);
- :class:`RowsArtifact`: JSON lines, one model per row;
- :class:`ArrayArtifact`: a NumPy array (embeddings, under ``embeds/``);
- :class:`FileArtifact`: bytes or text another tool reads (CSV, Parquet, RTTM).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from pydantic import BaseModel

from .artifacts import read_jsonl, read_model, read_npy, write_jsonl, write_model, write_npy
from .layout import RunLayout
from .schemas import (
    ClusterCentroidsFile,
    DetectionRow,
    FaceRow,
    IdentitiesFile,
    NamingFile,
    ScreentimeReport,
    ShotsFile,
    SpeechTurn,
    TrackMetrics,
    TrackRep,
    TrackRow,
    VideoMeta,
    VoicesFile,
)
from .schemas.corrections import CorrectionsLog
from .storage import Storage

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class _Artifact:
    name: str
    """Path under the run's folder (``manifests/`` or, for arrays, ``embeds/``)."""
    description: str

    def key(self, layout: RunLayout) -> str:
        return layout.manifest(self.name)

    def exists(self, storage: Storage, layout: RunLayout) -> bool:
        return storage.exists(self.key(layout))


@dataclass(frozen=True)
class ModelArtifact(_Artifact, Generic[M]):
    schema: type[M]

    def read(self, storage: Storage, layout: RunLayout) -> M:
        return read_model(storage, self.key(layout), self.schema)

    def read_if_exists(self, storage: Storage, layout: RunLayout) -> M | None:
        return self.read(storage, layout) if self.exists(storage, layout) else None

    def write(self, storage: Storage, layout: RunLayout, model: M) -> None:
        write_model(storage, self.key(layout), model)


@dataclass(frozen=True)
class RowsArtifact(_Artifact, Generic[M]):
    schema: type[M]

    def read(self, storage: Storage, layout: RunLayout) -> list[M]:
        return read_jsonl(storage, self.key(layout), self.schema)

    def write(self, storage: Storage, layout: RunLayout, rows: Iterable[M]) -> int:
        return write_jsonl(storage, self.key(layout), rows)


@dataclass(frozen=True)
class ArrayArtifact(_Artifact):
    def key(self, layout: RunLayout) -> str:
        return f"{layout.embeds}/{self.name}"

    def read(self, storage: Storage, layout: RunLayout) -> np.ndarray:
        return read_npy(storage, self.key(layout))

    def write(self, storage: Storage, layout: RunLayout, array: np.ndarray) -> None:
        write_npy(storage, self.key(layout), array)


@dataclass(frozen=True)
class FileArtifact(_Artifact):
    media_type: str

    def read_text(self, storage: Storage, layout: RunLayout) -> str:
        return storage.read_text(self.key(layout))

    def write_text(self, storage: Storage, layout: RunLayout, text: str) -> None:
        storage.write_text(self.key(layout), text)

    def write_bytes(self, storage: Storage, layout: RunLayout, data: bytes) -> None:
        storage.write_bytes(self.key(layout), data)


# --- detect_track ---------------------------------------------------------------------------------
VIDEO = ModelArtifact("video.json", "The video's probe: fps, size, frame count, duration, audio.", VideoMeta)
DETECTIONS = RowsArtifact("detections.jsonl", "Every face detected on a sampled frame, with its track.", DetectionRow)
TRACKS = RowsArtifact("tracks.jsonl", "Every track: its shot, first and last frames, boxes.", TrackRow)
SHOTS = ModelArtifact("shots.json", "Shot boundaries.", ShotsFile)
TRACK_METRICS = ModelArtifact("track_metrics.json", "How detection and tracking went (counts, stride, where the time went).", TrackMetrics)
# --- faces_embed ----------------------------------------------------------------------------------
FACES = RowsArtifact("faces.jsonl", "The faces embedded per track, with their crops and embedding rows.", FaceRow)
TRACK_REPS = RowsArtifact("track_reps.jsonl", "Each track's representative face and prototype row.", TrackRep)
FACE_EMBEDDINGS = ArrayArtifact("faces.npy", "One unit face embedding per row of faces.jsonl (embedding_row).")
TRACK_PROTOTYPES = ArrayArtifact("track_prototypes.npy", "One unit prototype per track (prototype_row).")
# --- cluster and naming ---------------------------------------------------------------------------
IDENTITIES = ModelArtifact("identities.json", "Tracks clustered into identities, with their kinds.", IdentitiesFile)
CLUSTER_CENTROIDS = ModelArtifact("cluster_centroids.json", "Each identity's centroid.", ClusterCentroidsFile)
IDENTITY_NAMES = ModelArtifact("identity_names.json", "Each identity's naming from the show's facebank.", NamingFile)
# --- audio ----------------------------------------------------------------------------------------
SPEECH = RowsArtifact("audio/speech.jsonl", "Speech turns, each with its voice.", SpeechTurn)
VOICES = ModelArtifact("audio/voices.json", "The episode's voices (centroids, seconds of speech).", VoicesFile)
SPEECH_RTTM = FileArtifact("audio/speech.rttm", "The speech turns as RTTM (what diarization tools read).", "text/plain")
SPEECH_EMBEDDINGS = ArrayArtifact("speech_turns.npy", "One unit speaker embedding per row of audio/speech.jsonl.")
# --- review and screentime ------------------------------------------------------------------------
CORRECTIONS = ModelArtifact("corrections.json", "The reviewers' append-only corrections log.", CorrectionsLog)
SCREENTIME = ModelArtifact("analytics/screentime.json", "The screen-time report.", ScreentimeReport)
SCREENTIME_CSV = FileArtifact("analytics/screentime.csv", "The report's cast table (CSV_COLUMNS).", "text/csv")
EXPORT_CSV = FileArtifact("analytics/export.csv", "The tidy export (pipelines.exports.EXPORT_SCHEMA) as CSV.", "text/csv")
EXPORT_PARQUET = FileArtifact("analytics/export.parquet", "The tidy export as Parquet.", "application/vnd.apache.parquet")

Artifact = ModelArtifact | RowsArtifact | ArrayArtifact | FileArtifact
ALL: tuple[Artifact, ...] = (
    VIDEO,
    DETECTIONS,
    TRACKS,
    SHOTS,
    TRACK_METRICS,
    FACES,
    TRACK_REPS,
    FACE_EMBEDDINGS,
    TRACK_PROTOTYPES,
    IDENTITIES,
    CLUSTER_CENTROIDS,
    IDENTITY_NAMES,
    SPEECH,
    VOICES,
    SPEECH_RTTM,
    SPEECH_EMBEDDINGS,
    CORRECTIONS,
    SCREENTIME,
    SCREENTIME_CSV,
    EXPORT_CSV,
    EXPORT_PARQUET,
)
