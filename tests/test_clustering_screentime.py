"""Unit tests of clustering constraints and screen-time semantics."""

import numpy as np
import pytest

from pipelines.clustering import cluster_prototypes
from pipelines.schemas import (
    Assignments,
    FaceRow,
    IdentitiesFile,
    Identity,
    Shot,
    TrackRow,
)
from pipelines.screentime import ScreentimeInputs, compute_screentime
from pipelines.stage_settings import ClusterConfig, ScreentimeConfig

CLUSTER_SEARCH = {"knn": ClusterConfig().knn, "max_link_gap": ClusterConfig().max_link_gap}
"""The cluster stage's default neighbour search and link-gap guard."""


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def test_similar_tracks_merge_and_different_ones_do_not():
    rng = np.random.default_rng(0)
    a, b = unit(rng.normal(size=16)), unit(rng.normal(size=16))
    x = np.stack([unit(a + 0.1 * rng.normal(size=16)) for _ in range(3)] + [unit(b + 0.1 * rng.normal(size=16)) for _ in range(2)])
    res = cluster_prototypes(x, set(), threshold=0.5, outlier_similarity=0.2, **CLUSTER_SEARCH)
    assert len(set(res.labels[:3])) == 1 and len(set(res.labels[3:])) == 1 and res.labels[0] != res.labels[3]


def test_tracks_in_the_same_frame_are_never_merged():
    x = np.stack([unit([1, 0, 0]), unit([1, 0.01, 0])])
    assert cluster_prototypes(x, {(0, 1)}, 0.5, 0.2, **CLUSTER_SEARCH).labels.tolist() == [0, 1]


def test_average_linkage_blocks_chaining():
    # a~b and b~c are similar, a and c are not: average linkage must not chain all three.
    x = np.stack([unit([1, 0]), unit([1, 1]), unit([0, 1])])
    labels = cluster_prototypes(x, set(), threshold=0.65, outlier_similarity=0.0, **CLUSTER_SEARCH).labels
    assert len(set(labels.tolist())) == 2


def track(tid, start, end, shot=0, conf=0.9):
    return TrackRow(
        track_id=tid,
        shot_idx=shot,
        first_ts=start,
        last_ts=end,
        first_frame_idx=int(start * 24),
        last_frame_idx=int(end * 24),
        frame_count=10,
        start_s=start,
        end_s=end,
        mean_conf=conf,
        max_face_px=80,
        bboxes_sampled=[],
    )


def inputs(tracks, identities, assignments=None, faces=()):
    return ScreentimeInputs(
        ep_id="show-s01e01",
        run_id="r",
        fps=24.0,
        stride=4,
        duration_s=20.0,
        shots=[Shot(index=0, start_frame=0, end_frame=240, start_s=0, end_s=10), Shot(index=1, start_frame=240, end_frame=480, start_s=10, end_s=20)],
        tracks=tracks,
        identities=IdentitiesFile(
            ep_id="show-s01e01",
            run_id="r",
            embedding_model="m",
            similarity_threshold=0.5,
            identities=[Identity(identity_id=k, track_ids=v, size=len(v), cohesion=1, rep_face_id=None, first_ts=0) for k, v in identities.items()],
            unclustered_track_ids=[],
        ),
        assignments=assignments or Assignments(ep_id="show-s01e01", run_id="r"),
        faces=list(faces),
    )


def test_identity_seconds_are_a_union_with_gaps_bridged_inside_shots_only():
    tr = [track(1, 0, 4), track(2, 4.3, 9.9), track(3, 10.2, 12, shot=1)]
    rep = compute_screentime(inputs(tr, {"id_0001": [1, 2, 3]}), ScreentimeConfig(gap_tolerance_s=0.5))
    ident = rep.identities[0]
    assert ident.intervals == [[0.0, 9.9], [10.2, 12.0]]  # 0.3 s gap bridged; the cut at 10 s is not
    assert ident.visual_s == pytest.approx(11.7)
    assert ident.cast_id is None
    assert rep.timeline[-1].name == "Unassigned"


def test_overlapping_tracks_of_one_person_count_once():
    rep = compute_screentime(
        inputs(
            [track(1, 0, 5), track(2, 2, 6)],
            {"id_0001": [1], "id_0002": [2]},
            Assignments(ep_id="show-s01e01", run_id="r", manual_assignments={"id_0001": "kyle", "id_0002": "kyle"}),
        ),
        ScreentimeConfig(),
    )
    assert rep.metrics[0].cast_id == "kyle" and rep.metrics[0].visual_s == pytest.approx(6.0)


def test_resolution_order_face_exclusion_then_track_override_then_cluster():
    faces = [
        FaceRow(
            face_id="face_0002_000120",
            track_id=2,
            frame_idx=120,
            ts=5,
            bbox_xyxy=[0, 0, 1, 1],
            conf=0.9,
            quality=1,
            blur=100,
            contrast=10,
            embedding_model="m",
            embedding_row=0,
            crop_path=None,
            skip=None,
        )
    ]
    a = Assignments(
        ep_id="show-s01e01", run_id="r", manual_assignments={"id_0001": "kyle"}, track_overrides={"3": "lisa"}, face_exclusions=["face_0002_000120"]
    )
    rep = compute_screentime(inputs([track(1, 0, 2), track(2, 3, 5), track(3, 6, 7)], {"id_0001": [1, 2, 3]}, a, faces), ScreentimeConfig())
    seconds = {m.cast_id: m.visual_s for m in rep.metrics}
    assert seconds == {"kyle": pytest.approx(2.0), "lisa": pytest.approx(1.0)}
    assert rep.math.cast_sum_time_s == pytest.approx(3.0)


def test_long_tracks_are_not_dropped_and_low_quality_tracks_are():
    rep = compute_screentime(inputs([track(1, 0, 9.5, conf=0.9), track(2, 0, 3, conf=0.3)], {"id_0001": [1], "id_0002": [2]}), ScreentimeConfig())
    assert [i.identity_id for i in rep.identities] == ["id_0001"]
    assert rep.identities[0].visual_s == pytest.approx(9.5)
    assert rep.diagnostics["tracks_below_quality_min"] == 1


def test_multi_cast_overlap_math():
    a = Assignments(ep_id="show-s01e01", run_id="r", manual_assignments={"id_0001": "kyle", "id_0002": "lisa"})
    rep = compute_screentime(inputs([track(1, 0, 5), track(2, 3, 8)], {"id_0001": [1], "id_0002": [2]}, a), ScreentimeConfig())
    assert rep.math.cast_union_coverage_s == pytest.approx(8.0)
    assert rep.math.cast_sum_time_s == pytest.approx(10.0)
    assert rep.math.multi_cast_overlap_s == pytest.approx(2.0)
