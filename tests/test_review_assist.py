"""What the review page offers to decide faster: readable thumbnails in dark scenes (display only) and
the suggestion floor."""

from __future__ import annotations

import cv2
import numpy as np

from pipelines.review.assist import HANDOFF_MAX_SHIFT, hand_off_shift, readable_thumbnail, suggestion_floor
from pipelines.schemas import TrackRow


def _jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()


def _luma(jpeg: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY).astype(np.float32)


def test_a_dark_crop_is_made_readable_and_a_readable_one_is_left_alone(sprites):
    face = cv2.resize(sprites["obama"][0].image, (112, 112))
    readable = _jpeg(face)
    assert readable_thumbnail(readable) == readable  # already readable: the same bytes
    theatre = _jpeg((face.astype(np.float32) * 0.18).astype(np.uint8))  # an audience in a dark theatre
    shown = readable_thumbnail(theatre)
    before, after = _luma(theatre), _luma(shown)
    assert after.mean() > 2.5 * before.mean() and np.percentile(after, 98) - np.percentile(after, 2) > 3 * (
        np.percentile(before, 98) - np.percentile(before, 2)
    )
    # the structure is the face's, not noise: the brightened crop correlates with the original
    assert np.corrcoef(after.ravel(), _luma(readable).ravel())[0, 1] > 0.8
    assert readable_thumbnail(b"not a jpeg") == b"not a jpeg"


def test_the_suggestion_floor_follows_the_naming_threshold():
    assert suggestion_floor(0.5, 0.15) == 0.35
    assert suggestion_floor(0.62, 0.15) == 0.47  # a calibrated, stricter show offers fewer keys
    assert suggestion_floor(None, 0.15) is None


def _track(track_id: int, boxes: list[tuple[int, float]], shot: int = 1, fps: float = 24.0, height: float = 160.0) -> TrackRow:
    """A track of faces ``height`` px tall, centred at (x, 300) on the given frames."""
    first, last = boxes[0][0], boxes[-1][0]
    return TrackRow(
        track_id=track_id,
        shot_idx=shot,
        first_ts=first / fps,
        last_ts=last / fps,
        first_frame_idx=first,
        last_frame_idx=last,
        frame_count=len(boxes),
        start_s=first / fps,
        end_s=last / fps,
        mean_conf=0.9,
        max_face_px=height,
        bboxes_sampled=[[x - 60, 300 - height / 2, x + 60, 300 + height / 2, frame] for frame, x in boxes],
    )


def test_a_track_broken_by_a_fast_pan_hands_off_and_a_person_leaving_that_spot_does_not():
    # The review-effort benchmark's case: a face panning left ~95 px per sample broke into one-sample
    # tracks; someone else had left that spot to the right 10 frames earlier.
    fragment = [_track(4, [(105, 1210.0)])]
    panning = [_track(5, [(110, 1127.0)]), _track(7, [(115, 1030.0)]), _track(9, [(120, 932.0)])]
    leaving = [_track(2, [(60, 1020.0), (75, 1110.0), (95, 1237.0)])]
    assert hand_off_shift(fragment, panning) < 0.1
    assert hand_off_shift(leaving, fragment) > HANDOFF_MAX_SHIFT
    assert hand_off_shift(panning, fragment) == float("inf")  # the fragment came first
    # Another shot, or a gap of 2 s, is never a hand-off.
    assert hand_off_shift(fragment, [_track(5, [(110, 1210.0)], shot=2)]) == float("inf")
    assert hand_off_shift(fragment, [_track(5, [(105 + 48, 1210.0)])]) == float("inf")
