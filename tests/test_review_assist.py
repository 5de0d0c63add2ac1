"""What the review page offers to decide faster: readable thumbnails in dark scenes (display only) and
the suggestion floor."""

from __future__ import annotations

import cv2
import numpy as np

from pipelines.review.assist import readable_thumbnail, suggestion_floor


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
