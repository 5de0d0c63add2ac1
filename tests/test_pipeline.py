"""The whole pipeline through the real models on a local Ray, on a short real-face episode."""

import json
import os
from pathlib import Path

import pytest

from pipelines.artifacts import read_marker
from pipelines.registry import FACE_EMBEDDINGS, FACES, IDENTITIES, SCREENTIME, SCREENTIME_CSV, SHOTS, TRACKS
from pipelines.runner import run_pipeline
from pipelines.sample.evaluate import evaluate_run
from pipelines.schemas import (
    StageName,
    StageState,
)
from pipelines.stages.base import MissingInputs

from .conftest import TEST_EP

pytestmark = pytest.mark.slow  # the real pipeline on Ray

THRESHOLDS = json.loads((Path(__file__).parent / "quality_thresholds.json").read_text())


def test_screen_time_matches_ground_truth(pipeline_run):
    storage, layout, result, truth, _ = pipeline_run
    ev = evaluate_run(storage, layout, truth)
    for person, true_s in truth.seconds.items():
        tolerance = max(THRESHOLDS["screentime_rel_tolerance"] * true_s, THRESHOLDS["screentime_abs_tolerance_s"])
        assert abs(ev.measured_s.get(person, 0.0) - true_s) <= tolerance, (person, ev.measured_s, truth.seconds)
    assert ev.purity >= THRESHOLDS["min_purity"]
    assert ev.extra_clusters_per_person <= THRESHOLDS["max_extra_clusters_per_person"]
    assert ev.recall >= THRESHOLDS["min_detection_recall"]


def test_one_cluster_per_person_even_across_different_photos(pipeline_run):
    storage, layout, _, truth, _ = pipeline_run
    identities = IDENTITIES.read(storage, layout)
    ev = evaluate_run(storage, layout, truth)
    assert len(identities.identities) == len(truth.seconds) == 3
    assert sorted(label for label in ev.identity_labels.values()) == sorted(truth.seconds)


def test_shot_cuts_found_exactly(pipeline_run):
    storage, layout, _, truth, _ = pipeline_run
    shots = SHOTS.read(storage, layout).shots
    assert [s.start_frame for s in shots] == truth.shot_starts


def test_artifacts_follow_the_documented_layout(pipeline_run):
    storage, layout, result, _, _ = pipeline_run
    for name in [
        "detections.jsonl",
        "tracks.jsonl",
        "track_metrics.json",
        "faces.jsonl",
        "track_reps.jsonl",
        "identities.json",
        "cluster_centroids.json",
        "analytics/screentime.json",
        "analytics/screentime.csv",
    ]:
        assert storage.exists(f"{layout.manifests}/{name}"), name  # the seed's layout, spelled out
    assert storage.exists(layout.marker(StageName.detect_track))
    assert FACE_EMBEDDINGS.exists(storage, layout)
    faces = FACES.read(storage, layout)
    embedded = [f for f in faces if f.embedding_row is not None]
    assert embedded and all(storage.exists(f.crop_path) for f in embedded)
    report = SCREENTIME.read(storage, layout)
    assert report.identities and all(i.cast_id is None for i in report.identities)
    assert report.identities == sorted(report.identities, key=lambda i: -i.visual_s)
    csv_head = storage.read_text(SCREENTIME_CSV.key(layout)).splitlines()[0]
    assert csv_head == "name,cast_id,person_id,face_visible_seconds,visual_s,speaking_s,both_s,confidence,tracks_count,faces_count,named_by,voice_only_s"
    assert not list(Path(storage.uri).rglob("*.tmp"))


def test_rerun_reuses_every_stage(pipeline_run):
    storage, layout, _, _, video = pipeline_run
    again = run_pipeline(storage=storage, ep_id=TEST_EP, video=str(video))
    assert [o.action for o in again.outcomes] == ["reused"] * 6


def test_changed_setting_recomputes_that_stage_and_after_only(pipeline_run, ray_cluster):
    storage, layout, _, truth, video = pipeline_run
    run_id = "gap-change"
    run_pipeline(storage=storage, ep_id=TEST_EP, run_id=run_id, video=str(video))
    seg_key = f"frames/{TEST_EP}/runs/{run_id}/segments/seg_00000.parquet"
    seg_mtime = os.path.getmtime(Path(storage.uri) / seg_key)
    changed = run_pipeline(storage=storage, ep_id=TEST_EP, run_id=run_id, video=str(video), overrides={"screentime.gap_tolerance_s": 0.1})
    assert [o.action for o in changed.outcomes] == ["reused", "reused", "reused", "reused", "reused", "computed"]
    retracked = run_pipeline(storage=storage, ep_id=TEST_EP, run_id=run_id, video=str(video), overrides={"detect_track.track_max_gap_s": 0.4})
    assert [o.action for o in retracked.outcomes] == ["computed", "computed", "computed", "computed", "reused", "computed"]  # audio: independent of tracking
    assert os.path.getmtime(Path(storage.uri) / seg_key) == seg_mtime  # detections reused: only tracking reran


def test_stage_alone_and_missing_inputs(pipeline_run):
    storage, layout, _, _, _ = pipeline_run
    alone = run_pipeline(storage=storage, ep_id=TEST_EP, stages=[StageName.screentime], overrides={"screentime.preset": "strict"})
    assert [o.stage for o in alone.outcomes] == [StageName.screentime]
    with pytest.raises(MissingInputs, match="finished faces_embed"):
        run_pipeline(storage=storage, ep_id=TEST_EP, run_id="never-ran", stages=[StageName.cluster])
    with pytest.raises(MissingInputs, match="video"):
        run_pipeline(storage=storage, ep_id=TEST_EP, run_id="never-ran", stages=[StageName.detect_track])


def test_recomputing_a_stage_invalidates_later_markers(pipeline_run, ray_cluster):
    storage, layout, _, _, video = pipeline_run
    run_id = "invalidate"
    run_pipeline(storage=storage, ep_id=TEST_EP, run_id=run_id, video=str(video))
    run_pipeline(storage=storage, ep_id=TEST_EP, run_id=run_id, stages=[StageName.cluster], overrides={"cluster.similarity_threshold": 0.6})
    from pipelines.layout import RunLayout

    lay = RunLayout(TEST_EP, run_id)
    assert read_marker(storage, lay, StageName.cluster).state is StageState.succeeded
    assert read_marker(storage, lay, StageName.screentime) is None


def test_tracks_carry_spans_inside_their_shots(pipeline_run):
    storage, layout, _, _, _ = pipeline_run
    shots = SHOTS.read(storage, layout).shots
    for t in TRACKS.read(storage, layout):
        shot = shots[t.shot_idx]
        assert shot.start_s <= t.start_s <= t.first_ts <= t.last_ts < t.end_s <= shot.end_s + 1e-6


def test_video_and_artifacts_on_s3(ray_cluster, test_episode, s3_server):
    import boto3

    from pipelines.storage import S3Storage

    video, truth = test_episode
    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket="media")
    client.upload_file(str(video), "media", "raw/videos/test/s01/e01/episode.mp4")
    storage = S3Storage("media", "screenalytics", client=client)
    result = run_pipeline(storage=storage, ep_id=TEST_EP, video="s3://media/raw/videos/test/s01/e01/episode.mp4")
    assert result.report is not None and len(result.report.identities) == 3
    keys = storage.list(f"manifests/{TEST_EP}")
    assert f"manifests/{TEST_EP}/runs/main/analytics/screentime.json" in keys
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_pipeline(storage=storage, ep_id=TEST_EP, run_id="missing", video="s3://media/raw/videos/none/episode.mp4")
