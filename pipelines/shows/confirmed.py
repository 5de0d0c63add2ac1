"""What a reviewer confirms in a run flows into the show's facebank.

After every correction, the run's entries in the bank are made to match its current human decisions:
an identity named as a cast member adds its best faces to that member; one marked guest or
not-a-face adds them to the show's not-cast bank; undoing, renaming, merging or splitting replaces
them. Each entry keeps its provenance (episode, run, identity, face). Automatic names never feed the
bank: only human decisions do, so one wrong automatic name cannot teach the bank its own mistake.
"""

from __future__ import annotations

from collections import defaultdict

from ..ids import parse_ep_id
from ..layout import RunLayout
from ..registry import FACE_EMBEDDINGS, FACES
from ..review.view import RunView
from ..schemas import FacebankEntry, FaceRow
from ..storage import Storage
from . import facebank


def _best_faces(faces: list[FaceRow], track_ids: list[int], k: int) -> list[FaceRow]:
    """The ``k`` best embedded faces, taken from the identity's tracks in turn (variety of looks)."""
    by_track: dict[int, list[FaceRow]] = defaultdict(list)
    wanted = set(track_ids)
    for f in faces:
        if f.track_id in wanted and f.embedding_row is not None and not f.skip:
            by_track[f.track_id].append(f)
    queues = [sorted(v, key=lambda f: -f.quality) for _, v in sorted(by_track.items(), key=lambda kv: -max(f.quality for f in kv[1]))]
    out: list[FaceRow] = []
    while len(out) < k and any(queues):
        for q in queues:
            if q and len(out) < k:
                out.append(q.pop(0))
    return out


def sync_run(storage: Storage, view: RunView, faces_per_identity: int) -> dict[str, int]:
    """Make the run's facebank entries match its human decisions; returns counts added and removed."""
    layout: RunLayout = view.layout
    show = parse_ep_id(layout.ep_id).show
    a = view.resolved.assignments
    model = view.resolved.identities.embedding_model
    decided: list[tuple[str, list[int], str, str]] = []  # identity, tracks, kind, who
    for ident in view.resolved.identities.identities:
        if ident.identity_id in a.manual_assignments:
            decided.append((ident.identity_id, ident.track_ids, "cast", a.manual_assignments[ident.identity_id]))
        elif ident.identity_id in a.marks:
            label = a.guest_labels.get(ident.identity_id) or f"{layout.ep_id}:{ident.identity_id}"
            decided.append((ident.identity_id, ident.track_ids, a.marks[ident.identity_id], label))
    prefix = facebank.run_entry_prefix(layout.ep_id, layout.run_id)
    existing = {i for i in facebank.entry_ids(storage, show) if i.startswith(prefix)}
    if not decided and not existing:
        return {"added": 0, "removed": 0}
    faces = FACES.read(storage, layout)
    vectors = FACE_EMBEDDINGS.read(storage, layout) if decided else None
    excluded = set(a.face_exclusions)
    usable = [f for f in faces if f.face_id not in excluded]
    desired: dict[str, tuple[FacebankEntry, FaceRow]] = {}
    for ident_id, track_ids, kind, who in decided:
        for face in _best_faces(usable, track_ids, faces_per_identity):
            entry_id = facebank.cluster_entry_id(layout.ep_id, layout.run_id, face.face_id, kind, who, model)
            assert vectors is not None and face.embedding_row is not None
            desired[entry_id] = (
                FacebankEntry(
                    entry_id=entry_id,
                    kind=kind,  # type: ignore[arg-type]
                    cast_id=who if kind == "cast" else None,
                    label=None if kind == "cast" else who,
                    source="cluster",
                    ep_id=layout.ep_id,
                    run_id=layout.run_id,
                    identity_id=ident_id,
                    face_id=face.face_id,
                    embedding_model=model,
                    embedding=[round(float(v), 6) for v in vectors[face.embedding_row]],
                ),
                face,
            )
    removed = facebank.remove_entries(storage, show, existing - set(desired))
    added = 0
    for entry_id in set(desired) - existing:
        entry, face = desired[entry_id]
        chip = storage.read_bytes(face.crop_path) if face.crop_path and storage.exists(face.crop_path) else None
        facebank.write_entry(storage, show, entry, chip)
        added += 1
    return {"added": added, "removed": removed}
