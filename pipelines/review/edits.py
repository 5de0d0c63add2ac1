"""Writing human corrections: anchored entries appended to the run's log under a lock.

The caller provides the lock (the API uses its state store's cross-process write lock); the anchors are
built from the current corrected view, so an entry names what the reviewer saw.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Optional

from ..anchors import identity_anchor, track_anchor
from ..corrections import load_corrections
from ..layout import RunLayout
from ..registry import CORRECTIONS
from ..schemas.corrections import CORRECTION, IdentityAnchor, TrackAnchor
from ..storage import Storage
from .errors import NotFound, StaleClustering
from .view import RunView, load_view

IdentityRef = Callable[[str], IdentityAnchor]
TrackRef = Callable[[int], TrackAnchor]
CorrectionBuilder = Callable[[IdentityRef, TrackRef], "dict[str, Any] | list[dict[str, Any]]"]


def append_correction(
    storage: Storage,
    layout: RunLayout,
    build: CorrectionBuilder,
    lock: Callable[[], AbstractContextManager],
    cluster_version: Optional[str] = None,
) -> RunView:
    """Append the correction (or corrections) ``build(identity, track)`` returns; ``identity``/``track`` turn ids into
    anchors (NotFound for unknown ones). ``cluster_version``: the clustering the caller's ids come from
    (``Resolved.cluster_version`` as it read them); StaleClustering when the run has been re-clustered
    since, checked under the lock. Returns the view with the correction applied."""
    with lock():
        view = load_view(storage, layout)
        if cluster_version is not None and cluster_version != view.resolved.cluster_version:
            raise StaleClustering(cluster_version, view.resolved.cluster_version)
        identities = view.identity_by_id

        def identity(identity_id: str) -> IdentityAnchor:
            if identity_id not in identities:
                raise NotFound(f"Identity {identity_id} not found in {layout.ep_id}/{layout.run_id}")
            return identity_anchor(identities[identity_id], view.tracks, view.centroids)

        def track(track_id: int) -> TrackAnchor:
            if track_id not in view.tracks:
                raise NotFound(f"Track {track_id} not found in {layout.ep_id}/{layout.run_id}")
            return track_anchor(view.tracks[track_id])

        log = load_corrections(storage, layout)
        built = build(identity, track)
        for fields in built if isinstance(built, list) else [built]:  # several entries: one write, one lock
            log.corrections.append(CORRECTION.validate_python({**fields, "seq": len(log.corrections) + 1}))
        CORRECTIONS.write(storage, layout, log)
    return load_view(storage, layout)
