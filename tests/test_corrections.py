"""Corrections re-attach to changed artifacts by track, then by embedding similarity; the rest is reported."""

from pipelines.corrections import (
    Correction,
    CorrectionsLog,
    identity_anchor,
    resolve,
    track_anchor,
)
from pipelines.schemas import (
    ClusterCentroid,
    ClusterCentroidsFile,
    IdentitiesFile,
    Identity,
    TrackRow,
)


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
    return CorrectionsLog(ep_id="show-s01e01", run_id="main", corrections=[Correction(seq=i + 1, **c) for i, c in enumerate(corrections)])


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
