"""The faces a reviewer sees per identity: the ones farthest from the identity's centre first, so a
face that does not belong stands out at a glance."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Optional

import numpy as np

from ..artifacts import read_marker
from ..layout import crop_url
from ..registry import FACE_EMBEDDINGS, FACES
from ..schemas import FaceRow, StageName
from ..storage import Storage
from .view import RunView


def crop_version(storage: Storage, view: RunView) -> str:
    """Changes whenever the crops may have: the faces_embed fingerprint (crop URLs can be cached forever)."""
    marker = read_marker(storage, view.layout, StageName.faces_embed)
    return marker.fingerprint if marker else "0"


def identity_faces(storage: Storage, view: RunView, per_identity: int = 10) -> dict[str, list[dict[str, Any]]]:
    """Per identity, up to ``per_identity`` embedded faces with a crop, least similar to the identity's
    centroid first (``similarity`` is that cosine); excluded faces are flagged, not hidden."""
    layout = view.layout
    faces = [f for f in FACES.read(storage, layout) if f.embedding_row is not None]
    vectors = FACE_EMBEDDINGS.read(storage, layout) if faces else np.zeros((0, 1), np.float32)
    by_track: dict[int, list[FaceRow]] = defaultdict(list)
    for f in faces:
        by_track[f.track_id].append(f)
    excluded = set(view.resolved.assignments.face_exclusions)
    version = crop_version(storage, view)
    out: dict[str, list[dict[str, Any]]] = {}
    for ident in view.resolved.identities.identities:
        members = [f for t in ident.track_ids for f in by_track.get(t, [])]
        if not members:
            out[ident.identity_id] = []
            continue
        rows = vectors[[int(f.embedding_row) for f in members if f.embedding_row is not None]]
        centre: Optional[np.ndarray] = np.asarray(view.centroids[ident.identity_id], np.float32) if ident.identity_id in view.centroids else None
        if centre is None or centre.shape[0] != rows.shape[1]:
            centre = rows.mean(axis=0)
        centre = centre / max(float(np.linalg.norm(centre)), 1e-12)
        sims = rows @ centre
        order = np.argsort(sims)[:per_identity]
        out[ident.identity_id] = [
            {
                "face_id": members[i].face_id,
                "track_id": members[i].track_id,
                "ts": members[i].ts,
                "similarity": round(float(sims[i]), 3),
                "excluded": members[i].face_id in excluded,
                "url": f"{crop_url(layout.ep_id, layout.run_id, members[i].face_id)}?v={version}" if members[i].crop_path else None,
            }
            for i in order
        ]
    return out
