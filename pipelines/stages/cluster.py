"""Stage 3: cluster tracks into identities (see :mod:`pipelines.clustering`)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from actors.models.registry import embedder_identity

from ..artifacts import read_jsonl, read_npy, write_model
from ..clustering import cluster_prototypes
from ..schemas import (
    ClusterCentroid,
    ClusterCentroidsFile,
    DetectionRow,
    IdentitiesFile,
    Identity,
    StageName,
    TrackRep,
    TrackRow,
)
from .base import RunContext, StageSpec

STAGE = StageName.cluster


def co_occurring_tracks(detections: list[DetectionRow]) -> set[tuple[int, int]]:
    """Pairs of tracks detected in the same frame: never the same person."""
    by_frame: dict[int, set[int]] = defaultdict(set)
    for d in detections:
        if d.track_id is not None:
            by_frame[d.frame_idx].add(d.track_id)
    pairs: set[tuple[int, int]] = set()
    for ids in by_frame.values():
        ordered = sorted(ids)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                pairs.add((a, b))
    return pairs


def identity_id(k: int) -> str:
    return f"id_{k:04d}"


def run(ctx: RunContext) -> dict[str, float]:
    cfg = ctx.config.cluster
    layout = ctx.layout
    model_name, recommended = embedder_identity(ctx.config.models)
    threshold = cfg.similarity_threshold if cfg.similarity_threshold is not None else recommended
    reps = read_jsonl(ctx.storage, layout.manifest("track_reps.jsonl"), TrackRep)
    tracks = {t.track_id: t for t in read_jsonl(ctx.storage, layout.manifest("tracks.jsonl"), TrackRow)}
    protos = read_npy(ctx.storage, layout.prototypes_npy)
    ctx.progress(STAGE, 0, 1, step="cluster")

    usable = [r for r in reps if r.prototype_row is not None]
    pos = {r.track_id: i for i, r in enumerate(usable)}
    vectors = (
        protos[[r.prototype_row for r in usable if r.prototype_row is not None]]
        if usable
        else np.zeros((0, protos.shape[1] if protos.ndim == 2 else 1), np.float32)
    )
    pairs = co_occurring_tracks(read_jsonl(ctx.storage, layout.manifest("detections.jsonl"), DetectionRow))
    cannot = {(pos[a], pos[b]) for a, b in pairs if a in pos and b in pos}
    result = cluster_prototypes(vectors, cannot, threshold, cfg.outlier_similarity, cfg.knn)

    groups: dict[int, list[int]] = defaultdict(list)
    for r, label in zip(usable, result.labels):
        groups[int(label)].append(r.track_id)
    rep_of = {r.track_id: r for r in usable}
    ordered = sorted(groups.values(), key=lambda ids: min(tracks[t].first_ts for t in ids))
    identities: list[Identity] = []
    centroids: list[ClusterCentroid] = []
    for k, ids in enumerate(ordered, start=1):
        ids = sorted(ids, key=lambda t: tracks[t].first_ts)
        vec = vectors[[pos[t] for t in ids]].sum(axis=0)
        vec /= max(float(np.linalg.norm(vec)), 1e-12)
        cohesion = float(np.mean(vectors[[pos[t] for t in ids]] @ vec))
        best = max(ids, key=lambda t: tracks[t].frame_count * tracks[t].mean_conf)
        identities.append(
            Identity(
                identity_id=identity_id(k),
                track_ids=ids,
                size=len(ids),
                cohesion=round(cohesion, 4),
                rep_face_id=rep_of[best].rep_face_id,
                first_ts=tracks[ids[0]].first_ts,
            )
        )
        centroids.append(ClusterCentroid(identity_id=identity_id(k), centroid=[round(float(v), 6) for v in vec]))
    unclustered = sorted(t for t in tracks if t not in pos)
    write_model(
        ctx.storage,
        layout.manifest("identities.json"),
        IdentitiesFile(
            ep_id=layout.ep_id,
            run_id=layout.run_id,
            embedding_model=model_name,
            similarity_threshold=threshold,
            identities=identities,
            unclustered_track_ids=unclustered,
            co_occurring_tracks=[[a, b] for a, b in sorted(pairs)],
        ),
    )
    write_model(ctx.storage, layout.manifest("cluster_centroids.json"), ClusterCentroidsFile(ep_id=layout.ep_id, run_id=layout.run_id, centroids=centroids))
    ctx.progress(STAGE, 1, 1, step="cluster")
    return {"identities": len(identities), "tracks": len(usable), "unclustered": len(unclustered), "cannot_link_pairs": len(cannot)}


SPEC = StageSpec(name=STAGE, version=2, outputs=("identities.json", "cluster_centroids.json"), run=run)
