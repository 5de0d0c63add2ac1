"""Where each artifact lives, and typed read/write helpers over :class:`~pipelines.storage.Storage`.

Layout (relative to the data root), as in the replaced system:

- ``manifests/{ep}/runs/{run}/``: detections.jsonl, tracks.jsonl, track_metrics.json, shots.json,
  faces.jsonl, track_reps.jsonl, identities.json, cluster_centroids.json, corrections.json,
  ``{stage}.json`` markers, ``analytics/screentime.{json,csv}``
- ``embeds/{ep}/runs/{run}/``: faces.npy, track_prototypes.npy
- ``frames/{ep}/runs/{run}/``: ``crops/track_####/frame_######.jpg``, ``segments/seg_#####.parquet``
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Iterable, Sequence, TypeVar

import numpy as np
from pydantic import BaseModel

from .ids import validate_ep_id, validate_run_id
from .schemas import StageMarker, StageName
from .storage import Storage

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class RunLayout:
    ep_id: str
    run_id: str

    def __post_init__(self) -> None:
        validate_ep_id(self.ep_id)
        validate_run_id(self.run_id)

    @property
    def manifests(self) -> str:
        return f"manifests/{self.ep_id}/runs/{self.run_id}"

    @property
    def embeds(self) -> str:
        return f"embeds/{self.ep_id}/runs/{self.run_id}"

    @property
    def frames(self) -> str:
        return f"frames/{self.ep_id}/runs/{self.run_id}"

    def manifest(self, name: str) -> str:
        return f"{self.manifests}/{name}"

    def marker(self, stage: StageName) -> str:
        return self.manifest(f"{stage.value}.json")

    def segment(self, index: int) -> str:
        return f"{self.frames}/segments/seg_{index:05d}.parquet"

    def crop(self, track_id: int, frame_idx: int) -> str:
        return f"{self.frames}/crops/track_{track_id:04d}/frame_{frame_idx:06d}.jpg"

    @property
    def screentime_json(self) -> str:
        return self.manifest("analytics/screentime.json")

    @property
    def screentime_csv(self) -> str:
        return self.manifest("analytics/screentime.csv")

    @property
    def faces_npy(self) -> str:
        return f"{self.embeds}/faces.npy"

    @property
    def prototypes_npy(self) -> str:
        return f"{self.embeds}/track_prototypes.npy"


def write_model(storage: Storage, key: str, model: BaseModel) -> None:
    storage.write_text(key, model.model_dump_json(indent=2) + "\n")


def read_model(storage: Storage, key: str, cls: type[M]) -> M:
    return cls.model_validate_json(storage.read_bytes(key))


def write_jsonl(storage: Storage, key: str, rows: Iterable[BaseModel]) -> int:
    buf = io.StringIO()
    n = 0
    for row in rows:
        buf.write(row.model_dump_json())
        buf.write("\n")
        n += 1
    storage.write_text(key, buf.getvalue())
    return n


def read_jsonl(storage: Storage, key: str, cls: type[M]) -> list[M]:
    text = storage.read_text(key)
    return [cls.model_validate_json(line) for line in text.splitlines() if line.strip()]


def write_npy(storage: Storage, key: str, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    storage.write_bytes(key, buf.getvalue())


def read_npy(storage: Storage, key: str) -> np.ndarray:
    return np.load(io.BytesIO(storage.read_bytes(key)), allow_pickle=False)


def csv_text(columns: Sequence[str], rows: Iterable[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue()


def write_csv(storage: Storage, key: str, columns: Sequence[str], rows: Iterable[dict]) -> None:
    storage.write_text(key, csv_text(columns, rows))


def read_marker(storage: Storage, layout: RunLayout, stage: StageName) -> StageMarker | None:
    key = layout.marker(stage)
    if not storage.exists(key):
        return None
    return read_model(storage, key, StageMarker)


def dumps(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
