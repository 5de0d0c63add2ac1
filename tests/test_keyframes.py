"""Which frames the detector runs on, and what the frames between get (actors.keyframes).

The scheduler is exercised with a scripted detector that reads the faces each frame really has from a
table, so every assertion compares against the truth: edges found on detected frames, interpolated
boxes where the faces are, and no more detector calls than frames."""

from __future__ import annotations

import numpy as np
import pytest

from actors.detections import Detections
from actors.faces import SampledFrame
from actors.keyframes import KeyframeDetector, KeyframeSettings, picture_change

SETTINGS = KeyframeSettings(max_gap=4, match_iou=0.5, appearance_min=0.8, max_picture_change=12.0, confident=0.5)


def _frame(idx: int, cuts: list[int] | None = None, thumb_value: int = 50, blob: tuple[int, int] | None = None) -> SampledFrame:
    thumb = np.full((36, 64, 3), thumb_value, np.int16)
    if blob is not None:  # something bright in a corner of the picture
        y, x = blob
        thumb[y : y + 10, x : x + 10] = 200
    return SampledFrame(idx, idx / 24, np.zeros((720, 1280, 3), np.uint8), cuts or [], {}, thumb)


def _faces(idx: int, boxes: list[list[float]]) -> Detections:
    n = len(boxes)
    rows = np.zeros((n, 15), np.float32)
    for k, box in enumerate(boxes):  # [x1, y1, x2, y2] or [x1, y1, x2, y2, score]
        rows[k, :4] = box[:4]
        rows[k, 4] = box[4] if len(box) > 4 else 0.9
    chips = [b"jpeg"] * n
    appearance = np.tile(np.eye(1, 8, 0, np.float32), (n, 1))
    return Detections.from_detector(
        idx, rows, ts=np.full(n, idx / 24), blur=np.full(n, 50.0), contrast=np.full(n, 30.0), appearance=appearance, chip_jpeg=chips, detected=np.ones(n, bool)
    )


class ScriptedDetector:
    """Returns the faces a table says each frame has, and remembers which frames it was asked about."""

    def __init__(self, truth: dict[int, list[list[float]]]):
        self.truth = truth
        self.calls: list[int] = []

    def __call__(self, frames: list[SampledFrame]) -> list[Detections]:
        self.calls += [f.frame_idx for f in frames]
        return [_faces(f.frame_idx, self.truth.get(f.frame_idx, [])) for f in frames]


def _run(
    frames: list[SampledFrame], truth: dict[int, list[list[float]]], settings: KeyframeSettings = SETTINGS
) -> tuple[ScriptedDetector, dict[int, Detections]]:
    detector = ScriptedDetector(truth)
    out = dict((f.frame_idx, faces) for f, faces in KeyframeDetector(detector, settings).run(frames))
    assert sorted(out) == [f.frame_idx for f in frames], "every frame comes out once, in order"
    return detector, out


def test_a_still_face_costs_one_detection_per_gap_and_is_carried_in_between():
    frames = [_frame(5 * i) for i in range(21)]
    truth = {5 * i: [[100 + i, 100, 200 + i, 220]] for i in range(21)}  # drifts right by 1 px per sample
    detector, out = _run(frames, truth)
    assert detector.calls == [0, 20, 40, 60, 80, 100]
    carried = out[25]
    assert len(carried) == 1 and not carried.extra["detected"][0] and carried.extra["chip_jpeg"][0] == b""
    np.testing.assert_allclose(carried.boxes[0], [105, 100, 205, 220], atol=1e-4)
    assert out[20].extra["detected"][0]


def test_a_face_that_comes_and_goes_is_found_on_its_first_and_last_frames():
    frames = [_frame(i) for i in range(20)]
    truth = {i: [[300, 100, 400, 220]] for i in range(7, 14)}  # on screen for samples 7..13
    detector, out = _run(frames, truth)
    assert {7, 13} <= set(detector.calls), "the edges are detected, not interpolated"
    assert 6 in detector.calls and 14 in detector.calls, "and so are the frames either side of them"
    assert [i for i in range(20) if len(out[i])] == list(range(7, 14))
    assert len(set(detector.calls)) == len(detector.calls) <= 20, "no frame is detected twice"


def test_a_face_turning_confident_is_detected_where_it_does():
    """A face sliding in at the edge is weak first: the frame where it becomes confident (where its track
    will start) is a detected frame, not a carried copy of the weak score."""
    frames = [_frame(i) for i in range(9)]
    truth = {i: [[1180 - 10 * i, 270, 1280, 460, 0.31 if i < 3 else 0.9]] for i in range(9)}
    detector, out = _run(frames, truth)
    assert {2, 3} <= set(detector.calls)
    assert [bool(out[i].scores[0] >= 0.5) for i in range(9)] == [i >= 3 for i in range(9)]


def test_shot_cuts_are_keyframes_on_both_sides():
    frames = [_frame(i) for i in range(12)]
    frames[6] = _frame(6, cuts=[6])
    truth = {i: [[100, 100, 200, 220]] for i in range(6)} | {i: [[700, 100, 800, 220]] for i in range(6, 12)}
    detector, out = _run(frames, truth)
    assert {0, 5, 6, 11} <= set(detector.calls)
    assert all(out[i].boxes[0, 0] == 100 for i in range(6)) and all(out[i].boxes[0, 0] == 700 for i in range(6, 12))


def test_a_cut_between_samples_closes_the_shot_on_the_sample_before_it():
    frames = [_frame(5 * i) for i in range(8)]
    frames[2] = _frame(10, cuts=[12])  # the cut falls on frame 12, between samples 10 and 15
    detector, _ = _run(frames, {})
    assert {0, 10, 15} <= set(detector.calls)


def test_faces_that_move_too_far_are_bisected_to_every_frame():
    frames = [_frame(i) for i in range(9)]
    truth = {i: [[100 + 80 * i, 100, 180 + 80 * i, 200]] for i in range(9)}  # 80 px per frame: no overlap between samples
    detector, out = _run(frames, truth)
    assert sorted(detector.calls) == list(range(9))
    assert all(out[i].extra["detected"].all() for i in range(9))


def test_a_change_in_the_picture_away_from_the_faces_forces_a_detection():
    frames = [_frame(i) for i in range(5)]
    frames[2] = _frame(2, blob=(20, 50))  # someone passes through the corner between the keyframes
    detector, _ = _run(frames, {})
    assert 2 in detector.calls
    quiet, _ = _run([_frame(i) for i in range(5)], {})
    assert quiet.calls == [0, 4]


def test_picture_change_ignores_the_faces_own_region():
    a, b = _frame(0), _frame(4)
    moving = _frame(2, blob=(2, 2))  # the face's own region (the face sits in the top-left corner)
    faces = _faces(0, [[0, 0, 200, 200]])
    from actors.keyframes import _Known

    assert picture_change(_Known(a, faces), moving, _Known(b, faces)) == 0.0
    assert picture_change(_Known(a, faces), _frame(2, blob=(20, 50)), _Known(b, faces)) > 50


def test_max_gap_one_detects_every_frame():
    frames = [_frame(i) for i in range(6)]
    detector, _ = _run(frames, {i: [[100, 100, 200, 220]] for i in range(6)}, KeyframeSettings(1, 0.5, 0.8, 12.0, 0.5))
    assert detector.calls == list(range(6))


def test_a_gap_below_one_is_refused():
    with pytest.raises(ValueError, match="max_gap"):
        KeyframeDetector(ScriptedDetector({}), KeyframeSettings(0, 0.5, 0.8, 12.0, 0.5))


@pytest.mark.slow
def test_keyframes_give_the_screen_time_of_detecting_every_frame(pipeline_run):
    """On the real-face test episode: the default run (keyframes) detects a fraction of the samples, and
    every person's seconds, purity and recall match a run of the same episode detecting every sample."""
    from pipelines.config import parse_overrides
    from pipelines.layout import RunLayout
    from pipelines.registry import DETECTIONS, TRACK_METRICS
    from pipelines.runner import run_pipeline
    from pipelines.sample.evaluate import evaluate_run

    storage, layout, _, truth, video = pipeline_run
    every = run_pipeline(
        storage=storage, ep_id=layout.ep_id, run_id="every-frame", video=str(video), overrides=parse_overrides(["detect_track.keyframe_max_gap=1"])
    )
    every_layout = RunLayout(layout.ep_id, every.run_id)
    keyed_metrics, every_metrics = TRACK_METRICS.read(storage, layout), TRACK_METRICS.read(storage, every_layout)
    assert every_metrics.frames_detected == every_metrics.frames_sampled
    assert keyed_metrics.frames_detected is not None and keyed_metrics.frames_detected < 0.8 * keyed_metrics.frames_sampled
    assert keyed_metrics.interpolated and any(d.interpolated for d in DETECTIONS.read(storage, layout))
    keyed, full = evaluate_run(storage, layout, truth), evaluate_run(storage, every_layout, truth)
    assert keyed.measured_s.keys() == full.measured_s.keys()
    for person, seconds in full.measured_s.items():
        assert keyed.measured_s[person] == pytest.approx(seconds, abs=0.05), person
    assert keyed.purity >= full.purity and keyed.recall >= full.recall - 0.005
