"""The corrected view of a clustered run: identities with the human corrections replayed, tracks by id,
centroids by identity; and the summaries the review screens show."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Optional

from ..artifacts import read_marker, read_model
from ..corrections import Resolved, load_corrections
from ..layout import RunLayout, crop_url
from ..registry import CLUSTER_CENTROIDS, TRACK_REPS
from ..schemas import ClusterCentroidsFile, Identity, StageName, StageState, TrackRep, TrackRow
from ..screentime import ScreentimeInputs, name_of
from ..storage import Storage
from .errors import Conflict
from .inputs import resolved_inputs


@dataclass
class RunView:
    layout: RunLayout
    inputs: ScreentimeInputs  # with the corrections applied (no detections: tracks mode)
    resolved: Resolved
    tracks: dict[int, TrackRow]
    centroids: dict[str, list[float]]

    @cached_property
    def identity_by_id(self) -> dict[str, Identity]:
        return {i.identity_id: i for i in self.resolved.identities.identities}

    def cast_of(self, identity_id: str) -> Optional[str]:
        """The identity's cast member: a human's name, else the facebank's automatic one."""
        return name_of(self.resolved.assignments, identity_id)[0]


def require_clusters(storage: Storage, layout: RunLayout) -> None:
    marker = read_marker(storage, layout, StageName.cluster)
    if marker is None or marker.state is not StageState.succeeded:
        raise Conflict(f"no clusters for {layout.ep_id}/{layout.run_id} yet: run the cluster stage")


def load_view(storage: Storage, layout: RunLayout) -> RunView:
    require_clusters(storage, layout)
    inputs, resolved = resolved_inputs(storage, layout, with_detections=False)
    key = CLUSTER_CENTROIDS.key(layout)
    centroids = read_model(storage, key, ClusterCentroidsFile) if storage.exists(key) else None
    return RunView(
        layout=layout,
        inputs=inputs,
        resolved=resolved,
        tracks={t.track_id: t for t in inputs.tracks},
        centroids={c.identity_id: c.centroid for c in (centroids.centroids if centroids else [])},
    )


def assignments_summary(storage: Storage, view: RunView) -> dict[str, Any]:
    a = view.resolved.assignments
    return {
        "ep_id": view.layout.ep_id,
        "run_id": view.layout.run_id,
        "manual_assignments": a.manual_assignments,
        "track_overrides": a.track_overrides,
        "face_exclusions": a.face_exclusions,
        "auto_assignments": a.auto_assignments,
        "marks": a.marks,
        "guest_labels": a.guest_labels,
        "rejected": a.rejected,
        "identities": [
            {
                "identity_id": i.identity_id,
                "track_ids": i.track_ids,
                "cast_id": name_of(a, i.identity_id)[0],
                "name_source": name_of(a, i.identity_id)[1],
                "mark": a.marks.get(i.identity_id),
            }
            for i in view.resolved.identities.identities
        ],
        "unattached": [u.model_dump() for u in view.resolved.unattached],
        "conflicts": [c.model_dump() for c in view.resolved.conflicts],
        "corrections": len(load_corrections(storage, view.layout).corrections),
        "cluster_version": view.resolved.cluster_version,
    }


def track_labels(view: RunView, cast_names: dict[str, str]) -> dict[int, str]:
    """The label each track is drawn with: its cast member's name, else its identity id."""
    labels: dict[int, str] = {}
    for ident in view.resolved.identities.identities:
        cast = view.cast_of(ident.identity_id)
        for t in ident.track_ids:
            labels[t] = cast_names.get(cast, cast) if cast else ident.identity_id
    for track_key, track_cast in view.resolved.assignments.track_overrides.items():
        labels[int(track_key)] = cast_names.get(track_cast, track_cast)
    return labels


def naming_summary(view: RunView, identity_id: str) -> dict[str, Any]:
    """How an identity is named: source, mark, confidence, and the facebank's suggestions."""
    a = view.resolved.assignments
    naming = view.resolved.naming.get(identity_id)
    rejected = set(a.rejected.get(identity_id, []))
    source = name_of(a, identity_id)[1]
    base = view.identity_by_id.get(identity_id)
    return {
        "name_source": source,
        "kind": base.kind if base else "face",
        "reason": base.reason if base else None,
        "mark": a.marks.get(identity_id),
        "guest_label": a.guest_labels.get(identity_id) or (naming.guest_label if naming else None),
        "confidence": naming.confidence if naming and source == "auto" else None,
        "naming_reason": naming.reason if naming else None,
        "suggestions": [{**sg.model_dump(), "rejected": sg.cast_id in rejected} for sg in naming.suggestions] if naming else [],
    }


def needs_review(view: RunView, seconds: dict[str, float]) -> list[dict[str, Any]]:
    """Identities with no name and no mark, longest on screen first: what a reviewer should look at."""
    a = view.resolved.assignments
    out = []
    for i in view.resolved.identities.identities:
        if name_of(a, i.identity_id)[0] or i.identity_id in a.marks or i.kind != "face":
            continue
        naming = view.resolved.naming.get(i.identity_id)
        top = naming.suggestions[0] if naming and naming.suggestions else None
        out.append(
            {
                "identity_id": i.identity_id,
                "visual_s": seconds.get(i.identity_id, 0.0),
                "reason": naming.reason if naming else "not_named",
                "guest_label": naming.guest_label if naming else None,
                "top_suggestion": top.model_dump() if top else None,
            }
        )
    return sorted(out, key=lambda r: -r["visual_s"])


def _track_summary(view: RunView, track_id: int) -> dict[str, Any]:
    t = view.tracks[track_id]
    return {"track_id": track_id, "start_s": t.start_s, "end_s": t.end_s, "faces": t.frame_count}


def cluster_tracks(view: RunView) -> dict[str, Any]:
    """Clusters and their tracks, with the human corrections (merge, move, split) applied."""
    identities = view.resolved.identities
    return {
        "ep_id": view.layout.ep_id,
        "run_id": view.layout.run_id,
        "clusters": [
            {
                "identity_id": i.identity_id,
                "cohesion": i.cohesion,
                "rep_face_id": i.rep_face_id,
                "tracks": [_track_summary(view, t) for t in i.track_ids if t in view.tracks],
            }
            for i in identities.identities
        ],
        "unclustered_track_ids": identities.unclustered_track_ids,
    }


def _longest_track_face(track_ids: list[int], view: RunView, reps: dict[int, TrackRep]) -> Optional[str]:
    """The representative face of an identity's longest track: its face when corrections moved its own
    representative's track away (or made the identity)."""
    known = [t for t in track_ids if t in reps and t in view.tracks]
    return reps[max(known, key=lambda t: view.tracks[t].frame_count)].rep_face_id if known else None


def faces_review_bundle(storage: Storage, view: RunView, seconds: dict[str, float]) -> dict[str, Any]:
    """Identities ranked by screen time, with their tracks and representative crops."""
    from .integrity import validate_run

    layout = view.layout
    reps = {r.track_id: r for r in TRACK_REPS.read(storage, layout)}

    def track(t: int) -> dict[str, Any]:
        rep = reps.get(t)
        return {
            **_track_summary(view, t),
            "mixed": rep.mixed if rep else None,
            "rep_crop_url": crop_url(layout.ep_id, layout.run_id, rep.rep_face_id if rep else None),
        }

    unattached = view.resolved.unattached
    return {
        "ep_id": layout.ep_id,
        "run_id": layout.run_id,
        "cluster_version": view.resolved.cluster_version,
        "identities": [
            {
                "identity_id": i.identity_id,
                "cast_id": view.cast_of(i.identity_id),
                **naming_summary(view, i.identity_id),
                "visual_s": seconds.get(i.identity_id, 0.0),
                "cohesion": i.cohesion,
                "rep_crop_url": crop_url(layout.ep_id, layout.run_id, i.rep_face_id or _longest_track_face(i.track_ids, view, reps)),
                "tracks": [track(t) for t in i.track_ids if t in view.tracks],
            }
            for i in sorted(view.resolved.identities.identities, key=lambda i: -seconds.get(i.identity_id, 0.0))
        ],
        "needs_review": needs_review(view, seconds),
        "unattached": [u.model_dump() for u in unattached],
        "conflicts": [c.model_dump() for c in view.resolved.conflicts],
        "validator": validate_run(storage, layout, [u.seq for u in unattached]).model_dump(),
    }
