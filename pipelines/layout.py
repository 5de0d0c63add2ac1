"""Where everything lives in the data dir and in a source bucket: the one module that builds and
parses storage keys. Every other module asks it.

Data dir (local or ``s3://``), as in the replaced system:

- ``manifests/{ep}/runs/{run}/``: the run's artifacts, each declared in :mod:`pipelines.registry`
  (detections.jsonl, tracks.jsonl, ..., ``analytics/screentime.{json,csv}``), and ``{stage}.json`` markers
- ``embeds/{ep}/runs/{run}/``: the run's arrays (faces.npy, track_prototypes.npy, speech_turns.npy)
- ``frames/{ep}/runs/{run}/``: ``crops/track_####/frame_######.jpg``, ``segments/seg_#####.parquet``
- ``raw/{ep}/video.mp4``: a video uploaded through the API
- ``catalogs/{name}/``: catalog summaries
- ``shows/{show}/``: show.json, ``cast/{cast_id}.json``, ``facebank/{entry_id}.json`` (one reference
  face each), ``chips/{entry_id}.jpg`` (its aligned chip), ``calibration.json``, ``voices/{ep_id}.json``
  (each episode's voices and who was on screen while they spoke)

Source bucket (``SCREENALYTICS_S3_BUCKET`` or a catalog prefix): ``raw/videos/{show}/s{SS}/e{EE}/episode.mp4``
(v2), then ``raw/videos/{ep_id}/episode.mp4`` (v1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from .ids import (
    make_ep_id,
    parse_ep_id,
    parse_face_id,
    validate_cast_id,
    validate_ep_id,
    validate_run_id,
    validate_show_id,
)
from .schemas import StageName

_V2_SOURCE = re.compile(r"raw/videos/(?P<show>[a-z0-9][a-z0-9_-]*)/s(?P<s>\d{2,3})/e(?P<e>\d{2,3})/episode\.mp4$")
_V1_SOURCE = re.compile(r"raw/videos/(?P<ep>[^/]+)/episode\.mp4$")


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


def crop_url(ep_id: str, run_id: str, face: Optional[str]) -> Optional[str]:
    """The API path of a face's crop (relative to the API root), or None."""
    if not face:
        return None
    track_id, frame_idx = parse_face_id(face)
    return f"/episodes/{ep_id}/runs/{run_id}/crops/{track_id}/{frame_idx}.jpg"


def uploaded_video_key(ep_id: str) -> str:
    return f"raw/{validate_ep_id(ep_id)}/video.mp4"


def episode_prefixes(ep_id: str) -> tuple[str, ...]:
    """Every prefix holding an episode's artifacts (what deleting the episode removes)."""
    validate_ep_id(ep_id)
    return (f"manifests/{ep_id}", f"embeds/{ep_id}", f"frames/{ep_id}", f"raw/{ep_id}")


def runs_prefix(ep_id: str) -> str:
    return f"manifests/{validate_ep_id(ep_id)}/runs"


def episodes_with_runs(storage, skip: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Every valid episode id that has a run in the data dir (CLI, catalog and API runs alike), but
    those in ``skip`` (already known: one listing of their runs saved each)."""
    from .ids import InvalidIdError

    found = []
    for name in storage.children("manifests"):
        if name in skip:
            continue
        try:
            validate_ep_id(name)
        except InvalidIdError:
            continue
        if storage.children(runs_prefix(name)):
            found.append(name)
    return found


def catalog_prefix(name: str) -> str:
    return f"catalogs/{name}"


def source_video_keys(ep_id: str) -> tuple[str, str]:
    """The episode's source keys in a bucket: (v2, v1), looked up in that order."""
    key = parse_ep_id(ep_id)
    return f"raw/videos/{key.show}/s{key.season:02d}/e{key.episode:02d}/episode.mp4", f"raw/videos/{ep_id}/episode.mp4"


def ep_id_of_source_key(key: str) -> Optional[str]:
    """The episode a bucket key holds, by the v2 or v1 scheme (or a file named ``{ep_id}.mp4``)."""
    if m := _V2_SOURCE.search(key):
        return make_ep_id(m["show"], int(m["s"]), int(m["e"]))
    if m := _V1_SOURCE.search(key):
        return m["ep"]
    if key.endswith(".mp4"):
        return key.rsplit("/", 1)[-1][: -len(".mp4")]
    return None


def shows_prefix() -> str:
    return "shows"


def show_key(show_id: str) -> str:
    return f"shows/{validate_show_id(show_id)}/show.json"


def cast_prefix(show_id: str) -> str:
    return f"shows/{validate_show_id(show_id)}/cast"


def cast_key(show_id: str, cast_id: str) -> str:
    return f"{cast_prefix(show_id)}/{validate_cast_id(cast_id)}.json"


def facebank_prefix(show_id: str) -> str:
    return f"shows/{validate_show_id(show_id)}/facebank"


def facebank_entry_key(show_id: str, entry_id: str) -> str:
    return f"{facebank_prefix(show_id)}/{entry_id}.json"


def facebank_chip_key(show_id: str, entry_id: str) -> str:
    return f"shows/{validate_show_id(show_id)}/chips/{entry_id}.jpg"


def calibration_key(show_id: str) -> str:
    return f"shows/{validate_show_id(show_id)}/calibration.json"


def voices_prefix(show_id: str) -> str:
    return f"shows/{validate_show_id(show_id)}/voices"


def episode_voices_key(show_id: str, ep_id: str) -> str:
    return f"{voices_prefix(show_id)}/{parse_ep_id(ep_id).ep_id}.json"
