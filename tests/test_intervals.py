import pytest

from pipelines import intervals as iv


def test_union_merges_overlapping_and_touching_spans():
    assert iv.union([(3, 4), (0, 1), (0.5, 2), (2, 2.5)]) == [(0.0, 2.5), (3.0, 4.0)]
    assert iv.total([(0, 1), (0.5, 2)]) == pytest.approx(2.0)


def test_union_drops_empty_spans():
    assert iv.union([(1, 1), (2, 1.5)]) == []


def test_bridge_gaps_closes_short_gaps_only():
    assert iv.bridge_gaps([(0, 1), (1.4, 2), (3, 4)], 0.5) == [(0.0, 2.0), (3.0, 4.0)]


def test_bridge_gaps_never_crosses_a_shot_cut():
    # 0.3 s gap, tolerance 0.5 s, but a cut at 1.1 s: the person really left at the cut.
    assert iv.bridge_gaps([(0, 1), (1.3, 2)], 0.5, barriers=[1.1]) == [(0.0, 1.0), (1.3, 2.0)]
    # a cut exactly at the end of the first span also blocks
    assert iv.bridge_gaps([(0, 1), (1.3, 2)], 0.5, barriers=[1.0]) == [(0.0, 1.0), (1.3, 2.0)]
    # spans that touch at a cut are one union, no gap to bridge
    assert iv.bridge_gaps([(0, 1), (1, 2)], 0.0, barriers=[1.0]) == [(0.0, 2.0)]


def test_pad_clips_to_bounds():
    assert iv.pad([(0.1, 1)], 0.2, 0.0, 1.1) == [(0.0, 1.1)]


def test_seconds_per_bin():
    assert iv.seconds_per_bin([(0.5, 2.25)], 3.0) == pytest.approx([0.5, 1.0, 0.25])
