"""Decoding only what is needed: skipping frames that nothing references must not change a sampled
frame, and moves a cut by at most the run of skipped frames; the stage records where its time went."""

from __future__ import annotations

import av
import numpy as np
import pytest

from pipelines.registry import SHOTS, TRACK_METRICS
from pipelines.schemas import Segment
from pipelines.segment_decode import decode_segment
from pipelines.stages.faces_embed import _best_per_run
from pipelines.video import DecodeOptions, SegmentDecodeResult, probe_video, segment_on_nvdec

FPS = 24
CUTS = [37, 81, 130, 171]  # none on a multiple of 5, none where x264 would put a key frame (scenecut off)


@pytest.fixture(scope="module")
def cut_video(tmp_path_factory):
    """8 s of moving gradients with hard cuts at CUTS, x264 default B-frames, key frames only every 96
    frames, so most cuts fall inside a picture group and some on non-reference B-frames."""
    path = tmp_path_factory.mktemp("decode") / "cuts.mp4"
    colours = np.array([[20, 20, 20], [180, 180, 180], [20, 20, 120], [180, 120, 180], [20, 60, 20]])  # BGR: dark and bright by turns
    ramp = np.linspace(0, 60, 320, dtype=np.float32)[None, :, None]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"g": "96", "sc_threshold": "0", "bframes": "3", "crf": "23"}
        for i in range(8 * FPS):
            shot = sum(i >= c for c in CUTS)
            image = np.clip(colours[shot][None, None, :] + np.roll(ramp, i * 2, axis=1), 0, 255).astype(np.uint8)
            image = np.broadcast_to(image, (240, 320, 3)).copy()
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _decode(path, all_frames: bool, segment: Segment, stride: int = 5, hw_decode: bool = False):
    meta = probe_video(path)
    result = SegmentDecodeResult()
    options = DecodeOptions(stride=stride, cut_threshold=27.0, min_shot_frames=6, all_frames=all_frames, hw_decode=hw_decode)
    frames = list(decode_segment(str(path), segment, meta.fps, options, is_last=segment.end_frame >= meta.frame_count, result=result))
    return frames, result


def test_skipping_changes_no_sampled_frame_and_decodes_less(test_episode):
    video, _ = test_episode
    meta = probe_video(video)
    segment = Segment(index=1, start_frame=60, end_frame=min(meta.frame_count, 300))
    every, every_result = _decode(video, True, segment)
    needed, needed_result = _decode(video, False, segment)
    assert [f.frame_idx for f in needed] == [f.frame_idx for f in every] == list(range(60, segment.end_frame, 5))
    for a, b in zip(every, needed):
        assert np.array_equal(a.image, b.image)
    assert needed_result.cut_frames == every_result.cut_frames
    assert needed_result.frames_decoded < 0.8 * every_result.frames_decoded
    assert {"decode", "cuts", "convert"} <= set(needed[0].work_s)


def test_a_cut_on_a_skipped_frame_lands_at_most_its_gap_late(cut_video):
    meta = probe_video(cut_video)
    whole = Segment(index=0, start_frame=0, end_frame=meta.frame_count)
    _, exact = _decode(cut_video, True, whole)
    _, skipped = _decode(cut_video, False, whole)
    assert exact.cut_frames == CUTS
    assert len(skipped.cut_frames) == len(CUTS)
    late = [found - true for found, true in zip(skipped.cut_frames, CUTS)]
    assert all(0 <= d <= 2 for d in late), late  # x264's default B-frame runs: at most 2 skipped frames in a row
    assert skipped.frames_decoded < exact.frames_decoded


def test_segments_decoded_apart_find_the_same_cuts(cut_video):
    """A segment seeks to the key frame before it: cut detection at its first frame still works."""
    meta = probe_video(cut_video)
    parts = [Segment(index=i, start_frame=a, end_frame=min(meta.frame_count, a + 40)) for i, a in enumerate(range(0, meta.frame_count, 40))]
    for all_frames in (True, False):
        found = [c for seg in parts for c in _decode(cut_video, all_frames, seg)[1].cut_frames]
        whole = _decode(cut_video, all_frames, Segment(index=0, start_frame=0, end_frame=meta.frame_count))[1].cut_frames
        assert found == whole


def test_detect_track_records_where_its_time_went(pipeline_run):
    storage, layout, _, _, _ = pipeline_run
    metrics = TRACK_METRICS.read(storage, layout)
    for kind in ("decode", "cuts", "convert", "detect", "chips", "track_wall"):
        assert metrics.work_s[kind] > 0, kind
    assert "resize" in metrics.work_s  # 0 here: the test episode is smaller than det_long_side
    assert metrics.work_s["detect"] > metrics.work_s["chips"]


def test_faces_embedded_are_the_best_of_each_stretch():
    scores = [0.1, 0.9, 0.2, 0.3, 0.8, 0.1, 0.5, 0.4, 0.6]
    assert _best_per_run(scores, 3) == [1, 4, 8]
    assert _best_per_run(scores[:2], 3) == [0, 1]
    assert _best_per_run(scores, 1) == [1]


def test_a_detector_actor_that_dies_costs_only_its_segment(ray_cluster, test_episode, tmp_path, monkeypatch):
    """A detector actor exits mid-run (as a SIGKILL or an out-of-memory kill would): the stage runs again
    over the segments not yet written and finishes with the same detections as an undisturbed run."""
    from actors.detector_actor import CRASH_ONCE_ENV
    from pipelines.layout import RunLayout
    from pipelines.runner import run_pipeline
    from pipelines.schemas import StageName
    from pipelines.storage import LocalStorage

    video, _ = test_episode
    settings = {"detect_track.segment_s": 2.0}
    calm = LocalStorage(tmp_path / "calm")
    run_pipeline(storage=calm, ep_id="calm-s01e01", video=str(video), stages=[StageName.detect_track], overrides=settings)
    marker = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_ONCE_ENV, str(marker))
    storage = LocalStorage(tmp_path / "crash")
    run_pipeline(storage=storage, ep_id="crash-s01e01", video=str(video), stages=[StageName.detect_track], overrides=settings)
    assert marker.exists()  # an actor did die
    metrics = TRACK_METRICS.read(storage, RunLayout("crash-s01e01", "main"))
    calm_metrics = TRACK_METRICS.read(calm, RunLayout("calm-s01e01", "main"))
    assert metrics.work_s["retries"] == 1  # the stage ran again, once, over what was left
    assert (metrics.detections, metrics.tracks, metrics.segments) == (calm_metrics.detections, calm_metrics.tracks, calm_metrics.segments)


def test_nvdec_asked_for_gives_the_cpu_decoders_frames_and_says_which_decoder_ran(test_episode):
    """Where NVDEC cannot run (no GPU or driver, as on CI) the segment is decoded on the CPU, pixel for
    pixel, and says so; where it runs, the same frames and cuts come back from it."""
    video, _ = test_episode
    meta = probe_video(video)
    segment = Segment(index=1, start_frame=60, end_frame=min(meta.frame_count, 200))
    cpu, cpu_result = _decode(video, False, segment)
    asked, asked_result = _decode(video, False, segment, hw_decode=True)
    assert cpu_result.decoder == "cpu"
    assert [f.frame_idx for f in asked] == [f.frame_idx for f in cpu]
    assert asked_result.cut_frames == cpu_result.cut_frames
    for a, b in zip(cpu, asked):
        if asked_result.decoder == "cpu":
            assert np.array_equal(a.image, b.image)
            assert "decode_nvdec" not in b.work_s
        else:
            assert np.abs(a.image.astype(np.int16) - b.image).max() <= 2


def test_nvdec_share_spreads_segments_evenly():
    def pattern(share: float, hw: bool = True) -> str:
        options = DecodeOptions(stride=5, cut_threshold=27.0, min_shot_frames=6, hw_decode=hw, nvdec_share=share)
        return "".join("N" if segment_on_nvdec(i, options) else "c" for i in range(8))

    assert pattern(1.0) == "NNNNNNNN"
    assert pattern(0.5) == "cNcNcNcN"
    assert pattern(0.25) == "cccNcccN"
    assert pattern(0.0) == pattern(1.0, hw=False) == "cccccccc"


def test_decode_device_cuda_fails_the_stage_where_nvdec_cannot_decode(ray_cluster, test_episode, tmp_path):
    """``cuda`` is a demand, not a wish: segments decoded on the CPU fail the stage with the reason."""
    from pipelines.runner import run_pipeline
    from pipelines.schemas import StageName
    from pipelines.storage import LocalStorage

    video, _ = test_episode
    meta = probe_video(video)
    if _decode(video, False, Segment(index=0, start_frame=0, end_frame=min(meta.frame_count, 30)), hw_decode=True)[1].decoder == "nvdec":
        pytest.skip("NVDEC decodes on this machine")
    with pytest.raises(Exception, match="decode_device is cuda, but segment"):
        run_pipeline(
            storage=LocalStorage(tmp_path / "data"),
            ep_id="nvdec-s01e01",
            video=str(video),
            stages=[StageName.detect_track],
            overrides={"detect_track.decode_device": "cuda"},
        )


def test_segments_written_before_stored_appearance_give_the_same_colour_descriptors(pipeline_run):
    """Detector actors store each chip's colour descriptor; a segment file from before (no such column)
    is read as None and gets the very same descriptors from its chips, so tracking does not move."""
    import io

    import pyarrow.parquet as pq

    from pipelines.segment_store import read_segment
    from pipelines.stages.detect_track import segment_appearance

    storage, layout, _, _, _ = pipeline_run
    index = next(i for i in range(50) if storage.exists(layout.segment(i)) and len(read_segment(storage, layout.segment(i)).faces))
    key = layout.segment(index)
    stored = read_segment(storage, key)
    assert stored.faces.extra["appearance"].shape == (len(stored.faces), 64)
    table = pq.read_table(io.BytesIO(storage.read_bytes(key)))
    detected = np.asarray(table.column("detected").to_pylist(), bool)  # files that old had no interpolated faces either
    old = table.filter(table.column("detected")).drop_columns(["appearance", "detected"]).replace_schema_metadata(table.schema.metadata)
    buf = io.BytesIO()
    pq.write_table(old, buf)
    storage.write_bytes("old/segment.parquet", buf.getvalue())
    legacy = read_segment(storage, "old/segment.parquet")
    assert "appearance" not in legacy.faces.extra
    assert legacy.faces.extra["detected"].all()
    assert np.array_equal(segment_appearance(storage, "old/segment.parquet", legacy), stored.faces.extra["appearance"][detected])
    assert SHOTS.read(storage, layout).shots  # the run these came from finished
