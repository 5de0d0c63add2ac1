import numpy as np
import pytest

from actors.detections import iou_matrix
from pipelines.stage_settings import DetectTrackConfig
from pipelines.tracking.tracker import IouTracker, TrackerParams


def production_params(**changes):
    """The tracker settings a default run uses (the config's defaults at 24 fps), with ``changes``."""
    return TrackerParams.from_config(DetectTrackConfig(), 24.0, **changes)


def box(x, y, s=50):
    return [x, y, x + s, y + s]


def test_moving_face_keeps_one_track():
    tr = IouTracker(production_params(match_iou=0.2, max_gap_frames=10))
    ids = [tr.step(f, [box(100 + 6 * f, 100)], [0.9])[0] for f in range(0, 40, 4)]
    assert len(set(ids)) == 1 and ids[0] >= 0


def test_two_faces_two_tracks_and_no_swap():
    tr = IouTracker(production_params())
    a, b = tr.step(0, [box(0, 0), box(300, 0)], [0.9, 0.9])
    for f in range(4, 40, 4):
        ids = tr.step(f, [box(300, 0), box(0, 0)], [0.9, 0.9])  # order swapped in the input
        assert list(ids) == [b, a]


def test_cut_closes_tracks():
    tr = IouTracker(production_params())
    first = tr.step(0, [box(0, 0)], [0.9])[0]
    same_place_after_cut = tr.step(4, [box(0, 0)], [0.9], cut_before=True)[0]
    assert same_place_after_cut != first


def test_gap_longer_than_max_gap_starts_new_track():
    tr = IouTracker(production_params(max_gap_frames=8))
    a = tr.step(0, [box(0, 0)], [0.9])[0]
    assert tr.step(8, [box(0, 0)], [0.9])[0] == a  # within the gap
    assert tr.step(20, [box(0, 0)], [0.9])[0] != a  # 12 frames later


def test_weak_detection_continues_but_never_starts_a_track():
    tr = IouTracker(production_params(high_thresh=0.6))
    assert tr.step(0, [box(0, 0)], [0.4])[0] == -1
    a = tr.step(4, [box(0, 0)], [0.9])[0]
    assert tr.step(8, [box(2, 0)], [0.4])[0] == a


def test_iou_matrix_values():
    m = iou_matrix(np.array([[0, 0, 10, 10]], np.float32), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32))
    assert m[0] == pytest.approx([1.0, 1 / 3, 0.0])


def test_invalid_params_rejected():
    with pytest.raises(ValueError, match="match_iou"):
        production_params(match_iou=1.5)


def test_persistent_weak_face_becomes_a_track_with_min_hits_and_a_blip_does_not():
    tr = IouTracker(production_params(high_thresh=0.6, min_hits=3))
    weak = [tr.step(f, [box(0, 0)], [0.4])[0] for f in range(0, 20, 4)]
    assert len(set(weak)) == 1 and weak[0] in tr.confirmed
    blip = tr.step(40, [box(300, 300)], [0.4])[0]
    assert blip not in tr.confirmed


def test_without_min_hits_weak_faces_never_start_tracks():
    tr = IouTracker(production_params(high_thresh=0.6, min_hits=0))
    assert all(tr.step(f, [box(0, 0)], [0.4])[0] == -1 for f in range(0, 20, 4))


def test_fast_mover_with_little_overlap_stays_one_track():
    tr = IouTracker(production_params(match_iou=0.2, center_gate=1.0))
    ids = [tr.step(f, [box(100 + 10 * f, 100, 60)], [0.9])[0] for f in range(0, 60, 5)]  # 50 px per sample, 60 px face
    assert len(set(ids)) == 1
    far = IouTracker(production_params(match_iou=0.2, center_gate=1.0))
    first = far.step(0, [box(100, 100, 60)], [0.9])[0]
    assert far.step(5, [box(280, 100, 60)], [0.9])[0] != first  # three face sizes away: somebody else


def test_center_gate_does_not_join_a_different_size_face():
    tr = IouTracker(production_params(match_iou=0.2, center_gate=1.0))
    a = tr.step(0, [box(100, 100, 60)], [0.9])[0]
    assert tr.step(5, [box(150, 100, 150)], [0.9])[0] != a


def test_a_face_passing_in_front_never_takes_over_the_track_it_covers():
    """Obama sits still; another face sweeps across him, hiding him for one sample (the test episode's
    shot 3). By boxes alone his track takes her face; with the colour gate it waits for him."""
    still = np.array([180, 150, 220, 210], np.float32)
    red, dark = np.array([1.0, 0.0]), np.array([0.0, 1.0])

    def run(appearance_min: float) -> list[tuple[int, ...]]:
        tracker = IouTracker(production_params(appearance_min=appearance_min))
        out = []
        for k, x in enumerate([380, 280, 185, 90]):  # the passer-by, right to left
            passer = np.array([x, 145, x + 70, 220], np.float32)
            if abs(x - 185) < 30:  # he is hidden: only her face is seen, right over his box
                boxes, looks = [passer], [red]
            else:
                boxes, looks = [still, passer], [dark, red]
            out.append(tuple(tracker.step(5 * k, np.stack(boxes), np.full(len(boxes), 0.9), appearance=np.stack(looks))))
        return out

    by_box = run(0.0)
    assert by_box[2][0] == by_box[0][0]  # without the gate, his track jumps onto her face
    gated = run(0.8)
    assert gated[2][0] != gated[0][0] and gated[3][0] == gated[0][0]  # with it, his track skips the sample and resumes on him
