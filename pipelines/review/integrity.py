"""Run validator: consistency of a run's artifacts, as codes a reviewer can act on. Computed on demand.

Codes: missing_tracks, faces_missing_tracks, identities_missing_tracks, tracks_without_clusters,
assignment_missing_cluster (corrections that no longer re-attach), missing_crops, missing_embeddings.
"""

from __future__ import annotations

from pydantic import BaseModel

from ..artifacts import read_marker
from ..layout import RunLayout
from ..registry import FACE_EMBEDDINGS, FACES, IDENTITIES, TRACKS
from ..schemas import StageName, StageState, TrackRow
from ..storage import Storage


class IntegrityIssue(BaseModel):
    code: str
    count: int
    examples: list[str]


class IntegrityReport(BaseModel):
    ep_id: str
    run_id: str
    ok: bool
    issues: list[IntegrityIssue]


def _issue(code: str, items: list) -> IntegrityIssue | None:
    return IntegrityIssue(code=code, count=len(items), examples=[str(i) for i in items[:10]]) if items else None


def validate_run(storage: Storage, layout: RunLayout, unattached_seqs: list[int] | None = None, track_id: int | None = None) -> IntegrityReport:
    issues: list[IntegrityIssue | None] = []

    def done(stage: StageName) -> bool:
        m = read_marker(storage, layout, stage)
        return m is not None and m.state is StageState.succeeded

    tracks: dict[int, TrackRow] = {}
    if done(StageName.detect_track):
        if TRACKS.exists(storage, layout):
            tracks = {t.track_id: t for t in TRACKS.read(storage, layout)}
        else:
            issues.append(_issue("missing_tracks", ["tracks.jsonl"]))
    if done(StageName.faces_embed) and FACES.exists(storage, layout):
        faces = FACES.read(storage, layout)
        if track_id is not None:
            faces = [f for f in faces if f.track_id == track_id]
        issues.append(_issue("faces_missing_tracks", sorted({f.track_id for f in faces if f.track_id not in tracks})))
        issues.append(_issue("missing_crops", [f.face_id for f in faces if f.crop_path and not storage.exists(f.crop_path)]))
        rows = FACE_EMBEDDINGS.read(storage, layout).shape[0] if FACE_EMBEDDINGS.exists(storage, layout) else 0
        issues.append(_issue("missing_embeddings", [f.face_id for f in faces if f.embedding_row is not None and f.embedding_row >= rows]))
    if done(StageName.cluster) and IDENTITIES.exists(storage, layout):
        identities = IDENTITIES.read(storage, layout)
        clustered = {t for i in identities.identities for t in i.track_ids} | set(identities.unclustered_track_ids)
        issues.append(_issue("identities_missing_tracks", sorted(clustered - set(tracks))))
        wanted = [t for t in tracks if track_id is None or t == track_id]
        issues.append(_issue("tracks_without_clusters", sorted(t for t in wanted if t not in clustered)))
    if unattached_seqs:
        issues.append(_issue("assignment_missing_cluster", [f"correction {s}" for s in unattached_seqs]))
    found = [i for i in issues if i is not None]
    return IntegrityReport(ep_id=layout.ep_id, run_id=layout.run_id, ok=not found, issues=found)
