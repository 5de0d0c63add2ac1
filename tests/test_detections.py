"""The one detections type: rows selected, stacked and grouped by frame alike in every column."""

import numpy as np
import pytest

from actors.detections import Detections


def _frame(frame_idx, n, **extra):
    rows = np.zeros((n, 15), np.float32)
    rows[:, :4] = [[10 * k, 0, 10 * k + 8, 8] for k in range(n)] if n else np.zeros((0, 4))
    rows[:, 4] = np.linspace(0.5, 0.9, n) if n else []
    return Detections.from_detector(frame_idx, rows, **extra)


def test_rows_are_selected_stacked_and_grouped_in_every_column():
    a = _frame(4, 2, chip_jpeg=[b"a0", b"a1"], blur=np.array([1.0, 2.0]))
    b = _frame(8, 3, chip_jpeg=[b"b0", b"b1", b"b2"], blur=np.array([3.0, 4.0, 5.0]))
    empty = _frame(6, 0, chip_jpeg=[], blur=np.zeros(0))
    both = Detections.concat([b, empty, a])
    assert len(both) == 5 and both.det_idx.tolist() == [0, 1, 2, 0, 1]
    assert both.extra["chip_jpeg"].tolist() == [b"b0", b"b1", b"b2", b"a0", b"a1"]
    picked = both[both.scores > 0.6]
    assert picked.frame_idx.tolist() == [8, 8, 4] and picked.extra["blur"].tolist() == [4.0, 5.0, 2.0]
    grouped = {f: rows.tolist() for f, rows in both.by_frame([4, 6, 8])}
    assert grouped == {4: [3, 4], 6: [], 8: [0, 1, 2]}
    tracked = both.with_columns(track_id=np.arange(5))
    assert tracked.track_id.tolist() == [0, 1, 2, 3, 4] and both.track_id.tolist() == [-1] * 5


def test_columns_of_other_lengths_and_mismatched_extras_are_refused():
    with pytest.raises(ValueError, match="rows"):
        Detections.from_detector(1, np.zeros((2, 15)), blur=np.zeros(3))
    with pytest.raises(ValueError, match="extra columns differ"):
        Detections.concat([_frame(1, 1, blur=np.zeros(1)), _frame(2, 1)])
