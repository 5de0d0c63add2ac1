"""Corrections re-attach to changed artifacts by track, then by embedding similarity; the rest is reported."""

from pipelines.anchors import identity_anchor, track_anchor
from pipelines.corrections import resolve
from pipelines.schemas import (
    ClusterCentroid,
    ClusterCentroidsFile,
    IdentitiesFile,
    Identity,
    TrackRow,
)
from pipelines.schemas.corrections import CORRECTION, CorrectionsLog, Undo


def track(tid, first, last, x=100.0):
    return TrackRow(
        track_id=tid,
        shot_idx=0,
        first_ts=first / 24,
        last_ts=last / 24,
        first_frame_idx=first,
        last_frame_idx=last,
        frame_count=(last - first) // 4 + 1,
        start_s=first / 24,
        end_s=(last + 1) / 24,
        mean_conf=0.9,
        max_face_px=80,
        bboxes_sampled=[[x, 100, x + 80, 180, first], [x, 100, x + 80, 180, last]],
    )


def identities(groups):
    return IdentitiesFile(
        ep_id="show-s01e01",
        run_id="main",
        embedding_model="m",
        similarity_threshold=0.45,
        identities=[Identity(identity_id=k, track_ids=v, size=len(v), cohesion=1.0, rep_face_id=None, first_ts=0) for k, v in groups.items()],
        unclustered_track_ids=[],
    )


def centroids(items):
    return ClusterCentroidsFile(ep_id="show-s01e01", run_id="main", centroids=[ClusterCentroid(identity_id=k, centroid=v) for k, v in items.items()])


TRACKS = [track(1, 0, 96), track(2, 120, 200, x=400), track(3, 240, 300)]
BEFORE = identities({"id_0001": [1, 3], "id_0002": [2]})
CENTROIDS = centroids({"id_0001": [1.0, 0.0], "id_0002": [0.0, 1.0]})


def log(*corrections):
    return CorrectionsLog(ep_id="show-s01e01", run_id="main", corrections=[CORRECTION.validate_python({**c, "seq": i + 1}) for i, c in enumerate(corrections)])


def anchor(ident_id, groups=BEFORE):
    ident = next(i for i in groups.identities if i.identity_id == ident_id)
    return identity_anchor(ident, {t.track_id: t for t in TRACKS}, {c.identity_id: c.centroid for c in CENTROIDS.centroids})


def test_cluster_assignment_follows_its_tracks_when_cluster_ids_change():
    corrections = log({"op": "assign_cluster", "identity": anchor("id_0001"), "cast_id": "kyle"})
    after = identities({"id_0001": [2], "id_0002": [1, 3]})  # re-clustered: ids swapped
    resolved = resolve(corrections, after, TRACKS, CENTROIDS)
    assert resolved.assignments.manual_assignments == {"id_0002": "kyle"}
    assert resolved.unattached == []


def test_assignments_survive_retracking_with_new_track_ids():
    corrections = log(
        {"op": "assign_cluster", "identity": anchor("id_0002"), "cast_id": "lisa"}, {"op": "assign_track", "track": track_anchor(TRACKS[2]), "cast_id": "kyle"}
    )
    new_tracks = [track(7, 0, 100), track(8, 116, 200, x=404), track(9, 236, 300)]  # same faces, renumbered, shifted
    after = identities({"id_0001": [7, 9], "id_0002": [8]})
    resolved = resolve(corrections, after, new_tracks, CENTROIDS)
    assert resolved.assignments.manual_assignments == {"id_0002": "lisa"}
    assert resolved.assignments.track_overrides == {"9": "kyle"}


def test_embedding_similarity_is_the_fallback_and_the_rest_is_reported():
    corrections = log(
        {"op": "assign_cluster", "identity": anchor("id_0002"), "cast_id": "lisa"}, {"op": "assign_track", "track": track_anchor(TRACKS[1]), "cast_id": "lisa"}
    )
    new_tracks = [track(5, 500, 600, x=900)]  # nothing overlaps the old tracks
    after = identities({"id_0009": [5]})
    resolved = resolve(corrections, after, new_tracks, centroids({"id_0009": [0.1, 0.99]}))
    assert resolved.assignments.manual_assignments == {"id_0009": "lisa"}
    assert [u.seq for u in resolved.unattached] == [2]
    far = resolve(corrections, after, new_tracks, centroids({"id_0009": [1.0, 0.0]}))
    assert far.assignments.manual_assignments == {} and [u.seq for u in far.unattached] == [1, 2]


def test_merge_move_split_and_later_entries_win():
    corrections = log(
        {"op": "assign_cluster", "identity": anchor("id_0001"), "cast_id": "kyle"},
        {"op": "merge", "identity": anchor("id_0001"), "other": anchor("id_0002")},
        {"op": "split", "tracks": [track_anchor(TRACKS[2])]},
        {"op": "assign_cluster", "identity": anchor("id_0001"), "cast_id": "lisa"},
    )
    resolved = resolve(corrections, BEFORE, TRACKS, CENTROIDS)
    groups = {i.identity_id: i.track_ids for i in resolved.identities.identities}
    assert groups == {"id_0001": [1, 2], "split_0003": [3]}
    assert resolved.assignments.manual_assignments == {"id_0001": "lisa"}
    moved = resolve(log({"op": "move_track", "track": track_anchor(TRACKS[0]), "identity": anchor("id_0002")}), BEFORE, TRACKS, CENTROIDS)
    assert {i.identity_id: i.track_ids for i in moved.identities.identities} == {"id_0001": [3], "id_0002": [1, 2]}


MERGED = identities({"id_0001": [1, 2, 3]})  # a loose re-cluster put both people together


def test_a_label_merged_with_a_guest_mark_keeps_its_tracks_and_is_reported():
    for order in ((0, 1), (1, 0)):  # named first, then the other marked guest; and the other way round
        entries = [
            {"op": "assign_cluster", "identity": anchor("id_0001"), "cast_id": "kyle"},
            {"op": "mark", "identity": anchor("id_0002"), "kind": "guest"},
        ]
        resolved = resolve(log(*(entries[i] for i in order)), MERGED, TRACKS, centroids({"id_0001": [0.7, 0.7]}))
        a = resolved.assignments
        assert a.marks == {"id_0001": "guest"}, order
        assert a.manual_assignments == {}, order  # the guest's track is not counted as kyle
        assert a.track_overrides == {"1": "kyle", "3": "kyle"}, order  # kyle keeps his seconds
        [conflict] = resolved.conflicts
        assert (conflict.kind, conflict.cast_ids, conflict.mark, conflict.seqs) == ("merged", ["kyle"], "guest", [1, 2]), order


def test_a_not_face_mark_merged_with_a_label_keeps_the_label_on_its_tracks():
    corrections = log(
        {"op": "mark", "identity": anchor("id_0002"), "kind": "not_face"},
        {"op": "assign_cluster", "identity": anchor("id_0001"), "cast_id": "kyle"},
    )
    resolved = resolve(corrections, MERGED, TRACKS, CENTROIDS)
    assert resolved.assignments.marks == {"id_0001": "not_face"}
    assert resolved.assignments.track_overrides == {"1": "kyle", "3": "kyle"}
    assert [c.mark for c in resolved.conflicts] == ["not_face"]


def test_a_mark_on_the_same_tracks_is_a_change_of_mind_not_a_conflict():
    named_then_guest = log(
        {"op": "assign_cluster", "identity": anchor("id_0001"), "cast_id": "kyle"},
        {"op": "mark", "identity": anchor("id_0001"), "kind": "guest"},
    )
    resolved = resolve(named_then_guest, BEFORE, TRACKS, CENTROIDS)
    assert resolved.assignments.marks == {"id_0001": "guest"}
    assert resolved.assignments.manual_assignments == {} and resolved.assignments.track_overrides == {} and resolved.conflicts == []
    guest_then_named = log(
        {"op": "mark", "identity": anchor("id_0001"), "kind": "guest"},
        {"op": "assign_cluster", "identity": anchor("id_0001"), "cast_id": "kyle"},
    )
    resolved = resolve(guest_then_named, BEFORE, TRACKS, CENTROIDS)
    assert resolved.assignments.marks == {} and resolved.assignments.manual_assignments == {"id_0001": "kyle"} and resolved.conflicts == []


def test_an_anchor_split_evenly_goes_to_the_part_that_looks_like_it():
    corrections = log({"op": "assign_cluster", "identity": anchor("id_0001"), "cast_id": "kyle"})  # tracks 1 and 3, centroid [1, 0]
    for near in ("id_0007", "id_0008"):  # id_0007 gets the first vote (track 1), id_0008 the second
        after = centroids({near: [0.98, 0.2], ({"id_0007", "id_0008"} - {near}).pop(): [0.2, 0.98]})
        resolved = resolve(corrections, identities({"id_0007": [1], "id_0008": [3, 2]}), TRACKS, after)
        assert resolved.assignments.manual_assignments == {near: "kyle"}


def test_one_undo_takes_back_a_whole_bulk_step():
    from pipelines.corrections import undo_targets

    corrections = log(
        {"op": "mark", "identity": anchor("id_0001"), "kind": "guest"},
        {"op": "mark", "identity": anchor("id_0001"), "kind": "guest", "group": "bulk-1"},
        {"op": "mark", "identity": anchor("id_0002"), "kind": "guest", "group": "bulk-1"},
    )
    assert undo_targets(corrections) == [2, 3]
    corrections.corrections.append(Undo(seq=4, target_seq=3))
    assert undo_targets(corrections) == [2]  # what is left of the step
    assert undo_targets(corrections, 1) == [1]
    assert undo_targets(corrections, 3) == []  # already undone


def test_each_operation_is_its_own_model_and_old_logs_still_read():
    """One model per operation (``op`` tells them apart): a field another operation uses is no part of it,
    and a log written when every entry carried every field reads the same."""
    import pytest
    from pydantic import ValidationError

    from pipelines.schemas.corrections import Merge

    with pytest.raises(ValidationError):
        CORRECTION.validate_python({"op": "merge", "seq": 1, "identity": anchor("id_0001")})  # no `other`
    with pytest.raises(ValidationError):
        CORRECTION.validate_python({"op": "rename", "seq": 1})
    old = {  # an entry as the log stored it before
        "seq": 1, "op": "merge", "cast_id": None, "identity": anchor("id_0001").model_dump(), "other": anchor("id_0002").model_dump(),
        "track": None, "tracks": [], "frame_idx": None, "exclude": True, "kind": None, "label": None, "active": True,
        "target_seq": None, "spans": [], "group": None, "created_at": "2026-12-01T00:00:00Z",
    }  # fmt: skip
    entry = CorrectionsLog.model_validate({"ep_id": "show-s01e01", "run_id": "main", "corrections": [old]}).corrections[0]
    assert isinstance(entry, Merge) and "cast_id" not in entry.model_dump()
    merged = resolve(CorrectionsLog(ep_id="show-s01e01", run_id="main", corrections=[entry]), BEFORE, TRACKS, CENTROIDS)
    assert [sorted(i.track_ids) for i in merged.identities.identities] == [[1, 2, 3]]


def test_an_identity_whose_representative_track_moved_away_does_not_keep_its_face():
    """The review page shows an identity by its representative face: after its track was moved to another
    identity, that face is no longer the identity's (the page then uses its longest remaining track's)."""
    from pipelines.ids import face_id

    before = BEFORE.model_copy(deep=True)
    before.identities[0].rep_face_id = face_id(1, 48)  # track 1's face represents id_0001
    kept = resolve(log(), before, TRACKS, CENTROIDS)
    assert kept.identities.identities[0].rep_face_id == face_id(1, 48)
    moved = resolve(log({"op": "move_track", "track": track_anchor(TRACKS[0]), "identity": anchor("id_0002")}), before, TRACKS, CENTROIDS)
    rep_of = {i.identity_id: i.rep_face_id for i in moved.identities.identities}
    assert rep_of["id_0001"] is None and 1 in next(i.track_ids for i in moved.identities.identities if i.identity_id == "id_0002")
