"""Catalog batches: concurrency, failures recorded, summary files, resume without recomputation."""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from pipelines.batch import CatalogError, load_catalog, run_catalog

from .conftest import repo_root


@pytest.fixture(scope="module")
def catalog(tmp_path_factory, test_episode):
    video, truth = test_episode
    folder = tmp_path_factory.mktemp("catalog")
    broken = folder / "broken.mp4"
    broken.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    path = folder / "catalog.csv"
    path.write_text(f"ep_id,video\ncat-s01e01,{video}\ncat-s01e02,{video}\ncat-s01e03,broken.mp4\ncat-s01e04,/nonexistent/episode.mp4\nBad Id,{video}\n")
    return path, truth


def test_catalog_runs_records_failures_and_writes_a_summary(ray_cluster, catalog, tmp_path):
    path, truth = catalog
    entries = load_catalog(str(path))
    results, where = run_catalog(entries, str(tmp_path), workers=2, profile=None, overrides={}, name="catalog")
    status = {r["ep_id"]: r["status"] for r in results}
    assert status == {"cat-s01e01": "succeeded", "cat-s01e02": "succeeded", "cat-s01e03": "failed", "cat-s01e04": "failed", "Bad Id": "failed"}
    errors = {r["ep_id"]: r["error"] for r in results}
    assert "truncated" in errors["cat-s01e03"] and "not found" in errors["cat-s01e04"] and "invalid ep_id" in errors["Bad Id"]
    folder = tmp_path / "catalogs" / "catalog"
    table = pq.read_table(folder / "episodes.parquet").to_pylist()
    assert {row["ep_id"] for row in table} == set(status)
    ok = next(row for row in table if row["ep_id"] == "cat-s01e01")
    assert ok["detect_track_s"] > 0 and ok["screentime_action"] == "computed"
    # The analyst's table: one row per episode and person, the same columns in CSV and Parquet.
    from pipelines.exports import EXPORT_COLUMNS

    tidy = pq.read_table(folder / "summary.parquet")
    assert tuple(tidy.column_names) == EXPORT_COLUMNS and set(tidy.column("ep_id").to_pylist()) == {"cat-s01e01", "cat-s01e02"}
    assert tidy.num_rows == 2 * len(truth.seconds)  # nobody named: one unknown identity per person, in each episode
    assert (folder / "summary.csv").read_text().splitlines()[0] == ",".join(EXPORT_COLUMNS)
    assert pq.read_table(folder / "season_cat.parquet").num_rows == tidy.num_rows

    again, _ = run_catalog(entries, str(tmp_path), workers=2, profile=None, overrides={}, name="catalog")
    for r in again:
        if r["status"] == "succeeded":
            assert set(r["actions"].values()) == {"reused"}, r


def test_catalog_errors(tmp_path):
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(str(tmp_path / "none.csv"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ep_id": "x-s01e01"}\n')
    with pytest.raises(CatalogError, match="needs ep_id and video"):
        load_catalog(str(bad))


def test_catalog_from_an_s3_prefix(s3_server):
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.create_bucket(Bucket="catalog")
    for key in ("raw/videos/show/s01/e02/episode.mp4", "raw/videos/show-s01e03/episode.mp4", "raw/videos/readme.txt"):
        s3.put_object(Bucket="catalog", Key=key, Body=b"x")
    entries = load_catalog("s3://catalog/raw/videos/")
    assert [(e.ep_id, e.video) for e in entries] == [
        ("show-s01e02", "s3://catalog/raw/videos/show/s01/e02/episode.mp4"),
        ("show-s01e03", "s3://catalog/raw/videos/show-s01e03/episode.mp4"),
    ]


@pytest.mark.slow
def test_killed_catalog_resumes_without_recomputing(ray_cluster, catalog, tmp_path):
    """Kill the batch process mid-catalog, submit again: finished episodes are reused, nothing is corrupt."""
    path, _ = catalog
    good = tmp_path / "good.csv"
    good.write_text("\n".join(path.read_text().splitlines()[:3]) + "\n")  # the two good episodes
    data = tmp_path / "data"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.batch", "--catalog", str(good), "--data-dir", str(data), "--workers", "1", "--num-cpus", "2", "--address", "local"],
        cwd=repo_root(),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    marker = data / "manifests" / "cat-s01e01" / "runs" / "main" / "screentime.json"  # says running while the stage writes

    def first_done() -> bool:
        return marker.exists() and json.loads(marker.read_text())["state"] == "succeeded"

    deadline = time.time() + 240
    while not first_done() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert first_done(), proc.stdout.read() if proc.poll() is not None else "timed out"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    assert not list(data.rglob("*.tmp"))
    for seg in data.rglob("*.parquet"):
        pq.read_table(io.BytesIO(seg.read_bytes()))  # every segment file that exists is whole

    results, _ = run_catalog(load_catalog(str(good)), str(data), workers=1, profile=None, overrides={}, name="resume")
    by_ep = {r["ep_id"]: r for r in results}
    assert set(by_ep["cat-s01e01"]["actions"].values()) == {"reused"}
    assert by_ep["cat-s01e02"]["status"] == "succeeded"


def _pid_with_title(title: str) -> int | None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if fh.read().split(b"\0")[0].decode(errors="replace").startswith(title):
                        return int(entry)
            except OSError:
                continue
    return None


@pytest.mark.slow
def test_killed_worker_is_retried_and_redoes_no_finished_segment(ray_cluster, catalog, tmp_path):
    """SIGKILL the Ray worker running an episode mid-detection: Ray retries the task, the retry keeps
    every segment finished before the kill (same file, untouched) and the episode succeeds."""
    import threading

    path, truth = catalog
    one = tmp_path / "one.csv"
    one.write_text("\n".join(path.read_text().splitlines()[:2]) + "\n")
    data = tmp_path / "data"
    segments = data / "frames" / "cat-s01e01" / "runs" / "main" / "segments"
    box: dict = {}

    def submit() -> None:
        box["results"] = run_catalog(load_catalog(str(one)), str(data), workers=1, profile=None, overrides={"detect_track.segment_s": 2.0}, name="kill")[0]

    thread = threading.Thread(target=submit)
    thread.start()
    deadline = time.time() + 240
    while time.time() < deadline and len(list(segments.glob("seg_*.parquet"))) < 2:
        time.sleep(0.02)
    pid = _pid_with_title("ray::episode:cat-s01e01")
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in segments.glob("seg_*.parquet")}
    assert pid and before, "the episode finished or never started before the kill"
    os.kill(pid, signal.SIGKILL)
    thread.join(300)

    (result,) = box["results"]
    assert result["status"] == "succeeded", result
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in segments.glob("seg_*.parquet")}
    assert len(after) == 7 and all(after[name] == stamp for name, stamp in before.items())
    measured = {s["name"]: s["seconds"] for s in result["screentime"]}
    assert sorted(measured.values()) == pytest.approx(sorted(truth.seconds.values()), abs=0.5)


def test_an_episode_lost_to_the_cluster_is_resumed_not_failed():
    import ray

    from pipelines.batch import lost_to_the_cluster

    try:
        try:
            raise ray.exceptions.NodeDiedError("the node running a detector actor is gone")
        except ray.exceptions.NodeDiedError as inner:
            raise RuntimeError("detect_track failed") from inner
    except RuntimeError as exc:
        assert lost_to_the_cluster(exc)
    assert not lost_to_the_cluster(ValueError("a truncated video"))
