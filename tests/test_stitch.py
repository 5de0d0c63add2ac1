"""Segment stitching: tracking segments separately and stitching equals tracking the whole video."""

import numpy as np

from pipelines.stage_settings import DetectTrackConfig
from pipelines.tracking.episode import FrameDetections, track_episode
from pipelines.tracking.tracker import TrackerParams


def production_params(**changes):
    """The tracker settings a default run uses (the config's defaults at 24 fps), with ``changes``."""
    return TrackerParams.from_config(DetectTrackConfig(), 24.0, **changes)


def synthetic(frames, faces):
    """faces: list of (first_frame, last_frame, x0, vx) moving 50-px boxes."""
    out = []
    for f in frames:
        boxes = [[x0 + vx * (f - a), 100, x0 + vx * (f - a) + 50, 150] for a, b, x0, vx in faces if a <= f <= b]
        out.append(FrameDetections(f, np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32)))
    return out


def split(frames, at):
    return [[fd for fd in frames if fd.frame_idx < at], [fd for fd in frames if fd.frame_idx >= at]]


def partition(ids):
    """Which detections share a track, independent of id numbering."""
    flat = [int(i) for seg in ids for frame in seg for i in frame]
    groups = {}
    for k, tid in enumerate(flat):
        groups.setdefault(tid, []).append(k)
    return sorted(groups.values())


PARAMS = production_params(match_iou=0.2, max_gap_frames=12)


def test_face_spanning_a_boundary_stays_one_track():
    frames = synthetic(range(0, 200, 4), [(0, 196, 10, 2.0), (40, 120, 600, -1.0)])
    whole = track_episode([frames], [], PARAMS)
    segmented = track_episode(split(frames, 100), [], PARAMS)
    assert segmented.stitched_links == 2
    assert partition(segmented.ids) == partition(whole.ids)
    assert len({i for seg in segmented.ids for fr in seg for i in fr}) == 2


def test_no_stitch_across_a_cut_at_the_boundary():
    frames = synthetic(range(0, 200, 4), [(0, 196, 10, 0.0)])
    result = track_episode(split(frames, 100), [100], PARAMS)
    assert result.stitched_links == 0
    assert len({i for seg in result.ids for fr in seg for i in fr}) == 2


def test_track_ending_before_boundary_is_not_joined_to_a_new_face():
    frames = synthetic(range(0, 200, 4), [(0, 60, 10, 0.0), (100, 196, 10, 0.0)])  # gap of 40 frames > 12
    result = track_episode(split(frames, 100), [], PARAMS)
    assert result.stitched_links == 0


def test_ids_are_numbered_by_first_appearance_from_one():
    frames = synthetic(range(0, 100, 4), [(20, 96, 10, 0.0), (0, 96, 400, 0.0)])
    result = track_episode([frames], [], PARAMS)
    assert int(result.ids[0][0][0]) == 1


def test_unconfirmed_tentative_tracks_are_dropped_by_the_episode_tracker():
    frames = synthetic(range(0, 100, 4), [(0, 96, 10, 0.0)])
    frames.append(FrameDetections(100, np.array([[500, 100, 550, 150]], np.float32), np.array([0.4], np.float32)))  # one weak blip
    result = track_episode([frames], [], production_params(min_hits=3))
    assert int(result.ids[0][-1][0]) == -1
    assert len({i for fr in result.ids[0] for i in fr if i >= 0}) == 1
