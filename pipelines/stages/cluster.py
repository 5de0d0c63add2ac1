"""Stage 3: cluster tracks into identities (see :mod:`pipelines.clustering`)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from actors.models.registry import embedder_identity

from ..clustering import cluster_prototypes
from ..registry import CLUSTER_CENTROIDS, DETECTIONS, FACES, IDENTITIES, TRACK_PROTOTYPES, TRACK_REPS, TRACKS, VIDEO
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
from ..stage_settings import ClusterConfig
from ..tracking.validity import ValidityRules, judge_tracks
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


def _rules(cfg: ClusterConfig) -> ValidityRules:
    return ValidityRules.from_config(cfg)


def run(ctx: RunContext) -> dict[str, float]:
    """Junk tracks become identities of their own; the rest are clustered with the merge rules (see
    :mod:`pipelines.clustering`), and an identity made only of extra tracks is an extra."""
    cfg = ctx.config.cluster
    layout = ctx.layout
    model_name, recommended = embedder_identity(ctx.config.models)
    threshold = cfg.similarity_threshold if cfg.similarity_threshold is not None else recommended
    reps = TRACK_REPS.read(ctx.storage, layout)
    tracks = {t.track_id: t for t in TRACKS.read(ctx.storage, layout)}
    protos = TRACK_PROTOTYPES.read(ctx.storage, layout)
    detections = DETECTIONS.read(ctx.storage, layout)
    faces = FACES.read(ctx.storage, layout)
    height = VIDEO.read(ctx.storage, layout).height
    ctx.progress(STAGE, 0, 1, step="cluster")
    verdicts = judge_tracks(list(tracks.values()), detections, faces, height, _rules(cfg))
    pairs = co_occurring_tracks(detections)
    rep_of = {r.track_id: r for r in reps if r.prototype_row is not None}

    groups: list[Group] = []
    small = {t for t in rep_of if verdicts[t].kind == "extra" and "small" in verdicts[t].reasons}
    members = [t for t in sorted(rep_of) if verdicts[t].kind != "junk" and t not in small]
    for ids in _cluster(members, rep_of, protos, pairs, threshold, cfg):
        if all(verdicts[t].kind == "extra" for t in ids):  # never seen as a proper face: an extra
            groups.append((ids, "extra", ", ".join(sorted({r for t in ids for r in verdicts[t].reasons}))))
        else:  # someone also seen properly: their brief or out-of-focus appearances count as them
            groups.append((ids, "face", None))
    for ids in _cluster(sorted(small), rep_of, protos, pairs, threshold, cfg):  # too small to count, even as someone known
        groups.append((ids, "extra", ", ".join(sorted({r for t in ids for r in verdicts[t].reasons}))))
    groups += [([t], "junk", verdicts[t].reason) for t in sorted(tracks) if verdicts[t].kind == "junk"]
    groups.sort(key=lambda g: (min(tracks[t].first_ts for t in g[0]), g[0][0]))

    identities, centroids = _identities(groups, tracks, rep_of, protos)
    grouped = {t for ids, _, _ in groups for t in ids}
    unclustered = sorted(t for t in tracks if t not in grouped)
    IDENTITIES.write(
        ctx.storage,
        layout,
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
    CLUSTER_CENTROIDS.write(ctx.storage, layout, ClusterCentroidsFile(ep_id=layout.ep_id, run_id=layout.run_id, centroids=centroids))
    ctx.progress(STAGE, 1, 1, step="cluster")
    kinds = [i.kind for i in identities]
    return {
        "identities": kinds.count("face"),
        "extras": kinds.count("extra"),
        "junk": kinds.count("junk"),
        "tracks": len(rep_of),
        "unclustered": len(unclustered),
        "cannot_link_pairs": len(pairs),
    }


Group = tuple[list[int], str, "str | None"]
"""(tracks, kind, reason) of one identity-to-be."""


def _identities(
    groups: list[Group], tracks: dict[int, TrackRow], rep_of: dict[int, TrackRep], protos: np.ndarray
) -> tuple[list[Identity], list[ClusterCentroid]]:
    """Numbered identities (in the groups' order), each with its centroid (mean of its tracks' prototypes,
    unit length), cohesion (mean cosine to it) and representative face (its longest confident track's)."""
    identities: list[Identity] = []
    centroids: list[ClusterCentroid] = []
    for k, (ids, kind, reason) in enumerate(groups, start=1):
        ids = sorted(ids, key=lambda t: tracks[t].first_ts)
        embedded = [t for t in ids if t in rep_of]
        vecs = protos[[int(rep_of[t].prototype_row or 0) for t in embedded]] if embedded else np.zeros((0, 1), np.float32)
        cohesion = 0.0
        if len(vecs):
            vec = vecs.sum(axis=0)
            vec /= max(float(np.linalg.norm(vec)), 1e-12)
            cohesion = float(np.mean(vecs @ vec))
            centroids.append(ClusterCentroid(identity_id=identity_id(k), centroid=[round(float(v), 6) for v in vec]))
        best = max(embedded or ids, key=lambda t: tracks[t].frame_count * tracks[t].mean_conf)
        identities.append(
            Identity(
                identity_id=identity_id(k),
                track_ids=ids,
                size=len(ids),
                cohesion=round(cohesion, 4),
                rep_face_id=rep_of[best].rep_face_id if best in rep_of else None,
                first_ts=tracks[ids[0]].first_ts,
                kind=kind,  # type: ignore[arg-type]
                reason=reason,
            )
        )
    return identities, centroids


def _cluster(
    members: list[int], rep_of: dict[int, TrackRep], protos: np.ndarray, pairs: set[tuple[int, int]], threshold: float, cfg: ClusterConfig
) -> list[list[int]]:
    if not members:
        return []
    pos = {t: i for i, t in enumerate(members)}
    vectors = protos[[int(rep_of[t].prototype_row or 0) for t in members]]
    cannot = {(pos[a], pos[b]) for a, b in pairs if a in pos and b in pos}
    result = cluster_prototypes(vectors, cannot, threshold, cfg.outlier_similarity, cfg.knn, cfg.max_link_gap)
    groups: dict[int, list[int]] = defaultdict(list)
    for t, label in zip(members, result.labels):
        groups[int(label)].append(t)
    return list(groups.values())


SPEC = StageSpec(name=STAGE, version=5, outputs=(IDENTITIES, CLUSTER_CENTROIDS), run=run)
