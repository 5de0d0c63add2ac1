"""Segment stitching: tracking segments separately and stitching equals tracking the whole video."""

import numpy as np

from actors.detections import Detections
from pipelines.stage_settings import DetectTrackConfig
from pipelines.tracking.episode import SegmentToTrack, track_episode
from pipelines.tracking.tracker import TrackerParams


def production_params(**changes):
    """The tracker settings a default run uses (the config's defaults at 24 fps), with ``changes``."""
    return TrackerParams.from_config(DetectTrackConfig(), 24.0, **changes)


def synthetic(frames, faces):
    """faces: list of (first_frame, last_frame, x0, vx) moving 50-px boxes. Per sampled frame: (frame, [(box, score)])."""
    return [(f, [([x0 + vx * (f - a), 100, x0 + vx * (f - a) + 50, 150], 0.9) for a, b, x0, vx in faces if a <= f <= b]) for f in frames]


def to_track(frames):
    rows = [(f, box, score, k) for f, found in frames for k, (box, score) in enumerate(found)]
    n = len(rows)
    faces = Detections(
        frame_idx=np.array([r[0] for r in rows], np.int64),
        boxes=np.array([r[1] for r in rows], np.float32).reshape(n, 4),
        scores=np.array([r[2] for r in rows], np.float32),
        landmarks=np.zeros((n, 10), np.float32),
        det_idx=np.array([r[3] for r in rows], np.int32),
        track_id=np.full(n, -1, np.int64),
    )
    return SegmentToTrack([f for f, _ in frames], faces)


def split(frames, at):
    return [to_track([fr for fr in frames if fr[0] < at]), to_track([fr for fr in frames if fr[0] >= at])]


def partition(result):
    """Which detections share a track, independent of id numbering."""
    groups = {}
    for k, tid in enumerate(int(i) for faces in result.faces for i in faces.track_id):
        groups.setdefault(tid, []).append(k)
    return sorted(groups.values())


def track_ids(result):
    return {int(i) for faces in result.faces for i in faces.track_id}


PARAMS = production_params(match_iou=0.2, max_gap_frames=12)


def test_face_spanning_a_boundary_stays_one_track():
    frames = synthetic(range(0, 200, 4), [(0, 196, 10, 2.0), (40, 120, 600, -1.0)])
    whole = track_episode([to_track(frames)], [], PARAMS)
    segmented = track_episode(split(frames, 100), [], PARAMS)
    assert segmented.stitched_links == 2
    assert partition(segmented) == partition(whole)
    assert len(track_ids(segmented)) == 2


def test_no_stitch_across_a_cut_at_the_boundary():
    frames = synthetic(range(0, 200, 4), [(0, 196, 10, 0.0)])
    result = track_episode(split(frames, 100), [100], PARAMS)
    assert result.stitched_links == 0
    assert len(track_ids(result)) == 2


def test_track_ending_before_boundary_is_not_joined_to_a_new_face():
    frames = synthetic(range(0, 200, 4), [(0, 60, 10, 0.0), (100, 196, 10, 0.0)])  # gap of 40 frames > 12
    result = track_episode(split(frames, 100), [], PARAMS)
    assert result.stitched_links == 0


def test_ids_are_numbered_by_first_appearance_from_one():
    frames = synthetic(range(0, 100, 4), [(20, 96, 10, 0.0), (0, 96, 400, 0.0)])
    result = track_episode([to_track(frames)], [], PARAMS)
    assert int(result.faces[0].track_id[0]) == 1


def test_unconfirmed_tentative_tracks_are_dropped_by_the_episode_tracker():
    frames = synthetic(range(0, 100, 4), [(0, 96, 10, 0.0)])
    frames.append((100, [([500, 100, 550, 150], 0.4)]))  # one weak blip
    result = track_episode([to_track(frames)], [], production_params(min_hits=3))
    assert int(result.faces[0].track_id[-1]) == -1
    assert len(track_ids(result) - {-1}) == 1
