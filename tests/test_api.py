"""The HTTP API over real HTTP through Ray Serve on the session's local Ray."""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest

from .conftest import _free_port

pytestmark = pytest.mark.slow  # the real pipeline on Ray

EP = "api-s01e01"


@pytest.fixture(scope="module")
def api(ray_cluster, tmp_path_factory):
    from ray import serve

    from serve_app.app import deployment

    data = tmp_path_factory.mktemp("api-data")
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(deployment(str(data)), name="screenalytics", route_prefix="/")
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    yield client, data
    client.close()
    serve.shutdown()


def wait_job(client: httpx.Client, job_id: str, timeout: float = 240, prefix: str = "") -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"{prefix}/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


def test_openapi_docs_and_health(api):
    client, _ = api
    assert client.get("/health").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    for path, method in [
        ("/episodes", "post"),
        ("/jobs/detect_track_async", "post"),
        ("/jobs/{job_id}/cancel", "post"),
        ("/episodes/{ep_id}/runs/{run_id}/jobs/{stage}", "post"),
        ("/jobs/screen_time/analyze", "post"),
        ("/episodes/{ep_id}/events", "get"),
        ("/audio/prerequisites", "get"),
    ]:
        assert method in spec["paths"][path], path
    assert "swagger" in client.get("/docs").text.lower()


def test_errors_are_4xx_with_detail(api):
    client, _ = api
    r = client.get("/episodes/nope-s01e01")
    assert r.status_code == 404 and r.json()["detail"] == "Episode nope-s01e01 not found"
    assert client.get("/episodes/..%2F..%2Fetc").status_code in (404, 422)
    assert client.get("/episodes/BAD").status_code == 422
    assert client.post("/episodes", json={"show_slug_or_id": "../x", "season_number": 1, "episode_number": 1}).status_code == 422
    assert client.get("/jobs/job-000000000000").status_code == 404
    assert client.get("/jobs/../../x").status_code == 404
    assert client.post("/jobs/detect_track_async", json={"ep_id": "nope-s01e01"}).status_code == 404
    assert client.post("/jobs/detect_track_async", json={"ep_id": "Bad Id"}).status_code == 422
    assert client.get("/audio/prerequisites").json() == {"available": True, "missing": [], "detail": client.get("/audio/prerequisites").json()["detail"]}


@pytest.fixture(scope="module")
def finished_episode(api, test_episode):
    """The test episode created, uploaded and run through every stage via the API, with the show and its
    cast: what each step answered, for the tests that check them. Tests that change the episode's
    corrections add their own and assert on differences, so their order does not matter."""
    client, data = api
    video, truth = test_episode
    steps: dict = {}
    steps["create"] = client.post("/episodes", json={"show_slug_or_id": "api", "season_number": 1, "episode_number": 1, "title": "Pilot"})
    steps["create_again"] = client.post("/episodes", json={"show_slug_or_id": "api", "season_number": 1, "episode_number": 1})
    steps["detect_without_video"] = client.post("/jobs/detect_track_async", json={"ep_id": EP})
    steps["upload_bad"] = client.post(f"/episodes/{EP}/video", files={"file": ("notes.mp4", b"not a video" * 100, "video/mp4")})
    steps["upload"] = client.post(f"/episodes/{EP}/video", files={"file": ("episode.mp4", video.read_bytes(), "video/mp4")})
    steps["embed_too_early"] = client.post("/jobs/faces_embed_async", json={"ep_id": EP})
    with client.stream("POST", "/jobs/detect_track", json={"ep_id": EP}) as stream:
        steps["detect_status"] = stream.status_code
        steps["detect_events"] = sse_events(stream)
    for path in ("/jobs/faces_embed_async", "/jobs/cluster_async"):
        r = client.post(path, json={"ep_id": EP})
        assert r.status_code == 202, r.text
        steps[path] = wait_job(client, r.json()["job_id"])
    r = client.post("/jobs/screen_time/analyze", json={"ep_id": EP, "preset": "default"})
    steps["analyze"] = wait_job(client, r.json()["job_id"])
    client.post("/shows", json={"show_id": "api", "name": "API Show"})
    for cast_id, name in (("obama", "Barack Obama"), ("ana", "Ana A."), ("bea", "Bea B.")):
        client.post("/shows/api/cast", json={"cast_id": cast_id, "name": name})
    return EP, truth, steps


def test_whole_flow(api, finished_episode):
    client, data = api
    ep, truth, steps = finished_episode
    assert steps["create"].status_code == 201 and steps["create"].json() == {"ep_id": EP, "created": True}
    assert steps["create_again"].json()["created"] is False
    assert client.patch(f"/episodes/{EP}", json={"title": "Pilot (edited)"}).json()["title"] == "Pilot (edited)"
    assert EP in [e["ep_id"] for e in client.get("/episodes").json()["episodes"]]
    assert steps["detect_without_video"].status_code == 409 and "video" in steps["detect_without_video"].json()["detail"]
    assert steps["upload_bad"].status_code == 422
    assert steps["upload"].status_code == 200 and steps["upload"].json()["local"]["exists"] is True
    assert steps["embed_too_early"].status_code == 409 and "detect_track" in steps["embed_too_early"].json()["detail"]
    events = steps["detect_events"]
    assert steps["detect_status"] == 200
    assert events[-1][0] == "done" and events[-1][1]["state"] == "succeeded", events[-1]
    assert any(e[1]["progress"] and e[1]["progress"]["phase"] == "detect_track" for e in events)
    assert steps["/jobs/faces_embed_async"]["state"] == steps["/jobs/cluster_async"]["state"] == "succeeded"
    assert steps["analyze"]["state"] == "succeeded" and steps["analyze"]["job_type"] == "screen_time_analyze"

    status = client.get(f"/episodes/{EP}/status").json()
    assert [s["state"] for s in status["stages"]] == ["succeeded"] * 6
    assert "main" in [r["run_id"] for r in client.get(f"/episodes/{EP}/runs").json()["runs"]]
    report = client.get(f"/episodes/{EP}/runs/main/screentime").json()
    assert len(report["identities"]) == len(truth.seconds) == 3
    seconds = sorted(i["visual_s"] for i in report["identities"])
    assert seconds == pytest.approx(sorted(truth.seconds.values()), abs=0.2)
    csv = client.get(f"/episodes/{EP}/runs/main/screentime.csv")
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.startswith("name,cast_id,person_id")
    clusters = client.get(f"/episodes/{EP}/cluster_tracks").json()["clusters"]
    assert sorted(i["identity_id"] for i in report["identities"]) == sorted(c["identity_id"] for c in clusters)
    assert client.get(f"/episodes/{EP}/runs/nope/state").status_code == 404

    listing = client.get("/jobs", params={"ep_id": EP}).json()
    jobs = listing["jobs"]
    assert {j["job_type"] for j in jobs} >= {"detect_track", "faces_embed", "cluster", "screen_time_analyze"}
    assert all(j["actor_name"].startswith("job:") for j in jobs)
    assert listing["total"] >= 4
    page = client.get("/jobs", params={"ep_id": EP, "limit": 2}).json()
    assert len(page["jobs"]) == 2 and page["next_offset"] == 2 and page["total"] == listing["total"]
    assert client.get(f"/episodes/{EP}/progress").json()["state"] in ("succeeded", "failed", "canceled")
    with client.stream("GET", f"/episodes/{EP}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = sse_events(stream)
    assert events[-1][0] == "done"


def test_cancel_stops_the_job(api, finished_episode):
    import ray

    client, _ = api
    r = client.post(f"/episodes/{EP}/runs/cancel-me/jobs/detect_track", json={"force": True})
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    deadline = time.time() + 60
    while time.time() < deadline:  # cancel mid-stage: the job runs and its detect_track marker says so
        status = client.get(f"/episodes/{EP}/status", params={"run_id": "cancel-me"}).json()
        if status["stages"][0]["state"] == "running":
            break
        time.sleep(0.1)
    t0 = time.time()
    job = client.post(f"/jobs/{job_id}/cancel").json()
    assert job["state"] == "canceled"
    assert time.time() - t0 < 10
    time.sleep(1)
    with pytest.raises(ValueError):
        ray.get_actor(job["actor_name"], namespace="screenalytics")
    status = client.get(f"/episodes/{EP}/status", params={"run_id": "cancel-me"}).json()
    assert status["stages"][0]["state"] == "canceled"  # the marker agrees with the job


def test_job_survives_an_api_restart(api, finished_episode, tmp_path):
    from ray import serve

    from serve_app.app import deployment

    client, data = api
    r = client.post(f"/episodes/{EP}/runs/restart/jobs/detect_track", json={"force": True})
    job_id = r.json()["job_id"]
    serve.delete("screenalytics")
    serve.run(deployment(str(data)), name="screenalytics", route_prefix="/")
    job = wait_job(client, job_id)
    assert job["state"] == "succeeded", job
    assert job_id in [j["job_id"] for j in client.get("/jobs", params={"ep_id": EP}).json()["jobs"]]


def test_a_job_whose_start_was_lost_still_runs(api, finished_episode):
    """The replica that creates a job actor also sends its ``run`` call; if the replica dies in between
    (an API restart under load), the call dies with it and the job used to stay queued forever. The
    watchdog starts it again: here the actor is created and its first ``run`` never sent."""
    from serve_app import jobs as job_service
    from serve_app.state import StateStore

    client, data = api
    store = StateStore(f"{data.resolve()}/state.sqlite3")
    job_id = job_service.new_job_id()
    name = job_service.actor_name("cluster", EP, job_id)
    job, busy = store.create_job_if_idle(job_id, EP, "main", "cluster", {"ep_id": EP}, name)
    assert job is not None, busy
    spec = {"job_id": job_id, "ep_id": EP, "run_id": "main", "video": None, "profile": None, "overrides": {}, "force": False, "stages": ["cluster", "naming"]}
    job_service.JobActor.options(**job_service.job_actor_options(name)).remote(str(data.resolve()) + "/state.sqlite3", str(data.resolve()), spec)
    done = wait_job(client, job_id, timeout=120)
    assert done["state"] == "succeeded", done
    assert done["started_at"] is not None


def test_corrections_survive_reclustering_and_drive_screen_time(api, finished_episode):
    client, data = api
    run = clone_run(data, EP, "main", "relabel")
    assert client.get("/shows").json()["shows"][0]["show_id"] == "api"
    assert client.patch("/shows/api/cast/ana", json={"name": "Ana Alvarez"}).json()["name"] == "Ana Alvarez"
    assert client.get("/shows/api/cast/nobody").status_code == 404

    before = client.get(f"/episodes/{EP}/runs/{run}/screentime").json()
    top = before["identities"][0]  # obama: most seconds
    r = client.post(f"/episodes/{EP}/assignments/cluster", json={"run_id": run, "cluster_id": top["identity_id"], "cast_id": "obama"})
    assert r.status_code == 200 and r.json()["manual_assignments"] == {top["identity_id"]: "obama"}
    assert client.put(f"/episodes/{EP}/assignments/cluster", json={"run_id": run, "cluster_id": "id_9999", "cast_id": "obama"}).status_code == 404
    assert client.post(f"/episodes/{EP}/assignments/track", json={"run_id": run, "track_id": 99999, "cast_id": "obama"}).status_code == 404
    assert client.post(f"/episodes/{EP}/assignments/cluster", json={"cluster_id": "../x", "cast_id": "obama"}).status_code == 422

    st = client.get(f"/episodes/{EP}/runs/{run}/screentime").json()
    assert st["metrics"][0]["name"] == "Barack Obama" and st["metrics"][0]["visual_s"] == top["visual_s"]

    # Re-cluster with a different threshold: new cluster output, the assignment re-attaches by track.
    r = client.post(f"/episodes/{EP}/runs/{run}/jobs/cluster", json={"overrides": {"cluster.similarity_threshold": 0.5}})
    assert wait_job(client, r.json()["job_id"])["state"] == "succeeded"
    after = client.get(f"/episodes/{EP}/assignments", params={"run_id": run}).json()
    assert after["unattached"] == [] and list(after["manual_assignments"].values()) == ["obama"]
    st = client.get(f"/episodes/{EP}/runs/{run}/screentime").json()
    assert [m["cast_id"] for m in st["metrics"]] == ["obama"] and st["metrics"][0]["visual_s"] == top["visual_s"]
    csv = client.get(f"/episodes/{EP}/runs/{run}/screentime.csv").text.splitlines()
    assert csv[1].startswith("Barack Obama,obama,")

    # merge, move and split, as a reviewer would
    ids = [i["identity_id"] for i in after["identities"]]
    others = [i for i in ids if i not in after["manual_assignments"]]
    merged = client.post(f"/episodes/{EP}/identities/merge", json={"run_id": run, "target_identity_id": others[0], "source_identity_id": others[1]}).json()
    assert len(merged["identities"]) == len(ids) - 1
    moved_track = next(i for i in merged["identities"] if i["identity_id"] == others[0])["track_ids"][0]
    moved = client.post(f"/episodes/{EP}/tracks/{moved_track}/move", json={"run_id": run, "to_identity_id": list(after["manual_assignments"])[0]}).json()
    assert moved_track in next(i for i in moved["identities"] if i["cast_id"] == "obama")["track_ids"]
    split = client.post(f"/episodes/{EP}/identities/split", json={"run_id": run, "track_ids": [moved_track]}).json()
    assert any(i["identity_id"].startswith("split_") and i["track_ids"] == [moved_track] for i in split["identities"])


def test_concurrent_assignment_writes_lose_nothing(api, finished_episode):
    from concurrent.futures import ThreadPoolExecutor

    client, _ = api
    for k in range(20):
        client.post("/shows/api/cast", json={"cast_id": f"cast{k:02d}", "name": f"Cast {k}"})
    base = client.get(f"/episodes/{EP}/assignments").json()["corrections"]
    tracks = [t["track_id"] for c in client.get(f"/episodes/{EP}/cluster_tracks").json()["clusters"] for t in c["tracks"]]
    url = str(client.base_url)

    def write(k):
        with httpx.Client(base_url=url, timeout=60) as c:
            t0 = time.perf_counter()
            r = c.post(f"/episodes/{EP}/assignments/track", json={"track_id": tracks[k % len(tracks)], "cast_id": f"cast{k:02d}"})
            return r.status_code, time.perf_counter() - t0

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(write, range(20)))
    assert all(code == 200 for code, _ in results)
    state = client.get(f"/episodes/{EP}/assignments").json()
    assert state["corrections"] == base + 20
    latencies = []
    for _ in range(10):
        t0 = time.perf_counter()
        client.post(f"/episodes/{EP}/assignments/track", json={"track_id": tracks[0], "cast_id": "ana"})
        latencies.append(time.perf_counter() - t0)
    print(
        f"\nreview action latency: median {1000 * sorted(latencies)[5]:.1f} ms sequential; "
        f"{1000 * sorted(t for _, t in results)[10]:.1f} ms median under 20 concurrent writers"
    )


def test_review_endpoints(api, finished_episode):
    import av
    import cv2
    import numpy as np

    client, _ = api
    integrity = client.get(f"/episodes/{EP}/runs/main/integrity").json()
    assert integrity["ok"] is True and integrity["issues"] == []

    bundle = client.get(f"/episodes/{EP}/faces_review_bundle").json()
    assert bundle["identities"] and bundle["validator"]["ok"]
    first = bundle["identities"][0]
    crop = client.get(first["rep_crop_url"])
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(crop.content, np.uint8), cv2.IMREAD_COLOR).shape == (112, 112, 3)

    track_id = first["tracks"][0]["track_id"]
    crops = client.get(f"/episodes/{EP}/tracks/{track_id}/crops").json()
    assert crops["total"] >= 1 and all(c["track_id"] == track_id for c in crops["crops"])
    assert client.get(f"/episodes/{EP}/tracks/{track_id}/integrity").json()["ok"] is True
    assert client.get(f"/episodes/{EP}/tracks/99999/crops").status_code == 404

    preview = client.get(f"/episodes/{EP}/timestamp/1.0/preview")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(preview.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (360, 640, 3)

    clip = client.post(f"/episodes/{EP}/video_clip", json={"start_s": 1.0, "end_s": 3.0})
    assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4"
    import io

    with av.open(io.BytesIO(clip.content)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 48
    assert client.post(f"/episodes/{EP}/video_clip", json={"start_s": 0, "end_s": 120}).status_code == 422
    assert client.post(f"/episodes/{EP}/video_clip", json={"start_s": 3, "end_s": 2}).status_code == 422

    timeline = client.get(f"/episodes/{EP}/timeline_export").json()
    assert len(timeline["seconds"]) == 14 and timeline["people"]
    assert sum(sum(s["on_screen"].values()) for s in timeline["seconds"]) > 10
    assert client.get(f"/episodes/{EP}/timeline_export", params={"format": "csv"}).text.startswith("second,")


def test_source_video_found_in_s3_v2_then_v1(api, s3_server, test_episode, tmp_path):
    import os

    import boto3
    from ray import serve

    from serve_app.app import deployment

    client, _ = api
    video, truth = test_episode
    s3 = boto3.client("s3", endpoint_url=s3_server)
    s3.create_bucket(Bucket="episodes")
    s3.upload_file(str(video), "episodes", "raw/videos/apis3/s01/e01/episode.mp4")
    s3.upload_file(str(video), "episodes", "raw/videos/apis3-s01e02/episode.mp4")
    with pytest.raises(ValueError, match="AWS_SECRET_ACCESS_KEY"):
        deployment(str(tmp_path / "s3data"), {"AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"]})
    env = {"S3_ENDPOINT_URL": s3_server, "SCREENALYTICS_S3_BUCKET": "episodes"}
    serve.run(deployment(str(tmp_path / "s3data"), env), name="s3api", route_prefix="/s3api")
    for e in (1, 2):
        assert client.post("/s3api/episodes", json={"show_slug_or_id": "apis3", "season_number": 1, "episode_number": e}).status_code == 201
    v2 = client.get("/s3api/episodes/apis3-s01e01").json()["s3"]
    assert v2["v2_key"] == "raw/videos/apis3/s01/e01/episode.mp4" and v2["v2_exists"] and not v2["v1_exists"]
    v1 = client.get("/s3api/episodes/apis3-s01e02").json()["s3"]
    assert not v1["v2_exists"] and v1["v1_exists"] and v1["v1_key"] == "raw/videos/apis3-s01e02/episode.mp4"
    r = client.post("/s3api/jobs/detect_track_async", json={"ep_id": "apis3-s01e02"})
    assert r.status_code == 202
    assert wait_job(client, r.json()["job_id"], prefix="/s3api")["state"] == "succeeded"
    serve.delete("s3api")


def test_fuzz_openapi_no_server_errors(api, tmp_path):
    """Property-based requests for every operation in the OpenAPI schema: no 5xx, ever."""
    from collections import Counter

    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from ray import serve

    from serve_app.app import deployment

    client, _ = api
    serve.run(deployment(str(tmp_path / "fuzz")), name="fuzz", route_prefix="/fuzz")
    base = str(client.base_url).rstrip("/") + "/fuzz"
    schema = schemathesis.openapi.from_dict(client.get("/fuzz/openapi.json").json())
    failures: list[str] = []
    statuses: Counter = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(max_examples=12, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call(base_url=base, timeout=30)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")

        check()
    serve.delete("fuzz")
    assert operations >= 50
    assert not failures, "\n".join(failures[:20])
    assert statuses[200] + statuses[201] > 20, statuses  # the requests reach the routes, not only 404s
    print(f"\nfuzz: {sum(statuses.values())} requests over {operations} operations, statuses {dict(sorted(statuses.items()))}")


def test_every_endpoint_of_the_api_reference_exists(api):
    import re

    from .conftest import repo_root

    reference = repo_root().parent / "shared" / "seed" / "API_REFERENCE.md"
    if not reference.is_file():
        pytest.skip("../shared/seed/API_REFERENCE.md is not beside this checkout")
    client, _ = api
    spec = client.get("/openapi.json").json()
    have = set()
    for path, ops in spec["paths"].items():
        stages = ["detect_track", "faces_embed", "cluster", "naming", "audio", "screentime"] if "{stage}" in path else [None]
        for stage in stages:
            concrete = path.replace("{stage}", stage) if stage else path
            have |= {(m.upper(), re.sub(r"\{[^}]+\}", "{}", concrete)) for m in ops}
    want = set()
    for m in re.finditer(r"`((?:GET|POST|PUT|PATCH|DELETE)(?:/(?:GET|POST|PUT|PATCH|DELETE))*) (/[^`?\s]*)", reference.read_text()):
        for method in m.group(1).split("/"):
            want.add((method, re.sub(r"\{[^}]+\}", "{}", m.group(2))))
    builtin = {("GET", "/docs"), ("GET", "/openapi.json")}
    assert len(want) > 40
    hidden = sorted(want - have - builtin)  # compat routes served but kept out of the schema
    assert all(path.startswith("/celery_jobs/") for _, path in hidden), hidden
    for method, path in hidden:
        r = client.request(method, path, json={})
        assert r.status_code not in (404, 405), (method, path, r.status_code)  # served: the empty body is refused, the route exists
    assert client.get("/docs").status_code == 200


def clone_run(data, ep_id: str, source: str, target: str) -> str:
    """A copy of a finished run under another run id, without its corrections: a run of its own for a
    test, without recomputing it."""
    import shutil

    for area in ("manifests", "embeds", "frames"):
        src = data / area / ep_id / "runs" / source
        if src.is_dir():
            shutil.copytree(src, data / area / ep_id / "runs" / target, ignore=shutil.ignore_patterns("corrections.json"), dirs_exist_ok=True)
    return target


def _identities(client, run: str) -> list[dict]:
    return client.get(f"/episodes/{EP}/faces_review_bundle", params={"run_id": run}).json()["identities"]


def test_a_killed_job_actor_fails_its_job_and_markers_within_30s(api, finished_episode):
    import os
    import signal

    import ray

    client, _ = api
    r = client.post(f"/episodes/{EP}/runs/killed/jobs/detect_track", json={"force": True})
    assert r.status_code == 202
    job = r.json()
    deadline = time.time() + 60

    def detect_marker() -> str | None:
        return client.get(f"/episodes/{EP}/status", params={"run_id": "killed"}).json()["stages"][0]["state"]

    while detect_marker() != "running" and time.time() < deadline:  # killed mid-stage, its marker says running
        time.sleep(0.1)
    actor = ray.get_actor(job["actor_name"], namespace="screenalytics")
    os.kill(ray.get(actor.pid.remote()), signal.SIGKILL)  # as the OOM killer would
    killed = time.time()
    with client.stream("GET", f"/episodes/{EP}/events") as stream:
        events = sse_events(stream)  # the stream ends by itself
    final = wait_job(client, job["job_id"], timeout=40)
    assert final["state"] == "failed" and "lost" in final["error"], final
    assert time.time() - killed < 30
    assert events[-1][0] == "done" and events[-1][1]["state"] == "failed"
    status = client.get(f"/episodes/{EP}/status", params={"run_id": "killed"}).json()
    assert "running" not in [s["state"] for s in status["stages"]] and status["active_job"] is None
    assert client.get(f"/episodes/{EP}/status", params={"run_id": "killed"}).json()["stages"][0]["state"] == "failed"


def test_concurrent_starts_on_one_run_admit_exactly_one(api, finished_episode):
    from concurrent.futures import ThreadPoolExecutor

    client, data = api
    run = clone_run(data, EP, "main", "race")
    url = str(client.base_url)

    def start(_):
        with httpx.Client(base_url=url, timeout=60) as c:
            return c.post("/jobs/faces_embed_async", json={"ep_id": EP, "run_id": run, "force": True})

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(start, range(6)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202, 409, 409, 409, 409, 409], [a.text for a in answers]
    accepted = next(a for a in answers if a.status_code == 202).json()
    assert wait_job(client, accepted["job_id"])["state"] == "succeeded"
    jobs = client.get("/jobs", params={"ep_id": EP, "job_type": "faces_embed"}).json()["jobs"]
    assert [j["job_id"] for j in jobs if j["run_id"] == run] == [accepted["job_id"]]


def test_labels_survive_a_recluster_that_merges_or_splits_them(api, finished_episode):
    client, data = api
    run = clone_run(data, EP, "main", "labels")
    people = sorted(_identities(client, run), key=lambda i: -i["visual_s"])
    assert len(people) == 3
    for ident, cast in zip(people, ("obama", "ana", "bea")):
        r = client.post(f"/episodes/{EP}/assignments/cluster", json={"run_id": run, "cluster_id": ident["identity_id"], "cast_id": cast})
        assert r.status_code == 200
    before = {m["cast_id"]: m["visual_s"] for m in client.get(f"/episodes/{EP}/runs/{run}/screentime").json()["metrics"]}
    assert set(before) == {"obama", "ana", "bea"}

    # A loose threshold merges two labelled people into one identity: both labels are kept, on their
    # own tracks, and the conflict is reported.
    r = client.post(f"/episodes/{EP}/runs/{run}/jobs/cluster", json={"overrides": {"cluster.similarity_threshold": 0.15}})
    assert wait_job(client, r.json()["job_id"])["state"] == "succeeded"
    merged = client.get(f"/episodes/{EP}/assignments", params={"run_id": run}).json()
    assert len(merged["identities"]) < 3
    assert [c["kind"] for c in merged["conflicts"]] == ["merged"] and len(merged["conflicts"][0]["cast_ids"]) == 2, json.dumps(merged)
    after = {m["cast_id"]: m["visual_s"] for m in client.get(f"/episodes/{EP}/runs/{run}/screentime").json()["metrics"]}
    assert after == pytest.approx(before, abs=0.01)

    # A strict threshold splits a labelled identity: the label stays with one part, the others are reported.
    r = client.post(f"/episodes/{EP}/runs/{run}/jobs/cluster", json={"overrides": {"cluster.similarity_threshold": 0.9}})
    assert wait_job(client, r.json()["job_id"])["state"] == "succeeded"
    split = client.get(f"/episodes/{EP}/assignments", params={"run_id": run}).json()
    assert len(split["identities"]) > 3
    reported = [c for c in split["conflicts"] if c["kind"] == "split"]
    assert reported and all(c["identities"] for c in reported)
    assert {c["cast_ids"][0] for c in reported} <= {"obama", "ana", "bea"}


def test_cast_ids_must_exist_in_the_episodes_show(api, finished_episode):
    client, data = api
    run = clone_run(data, EP, "main", "ghosts")
    ident = _identities(client, run)[0]["identity_id"]
    r = client.post(f"/episodes/{EP}/assignments/cluster", json={"run_id": run, "cluster_id": ident, "cast_id": "ghost"})
    assert r.status_code == 404
    client.post("/shows", json={"show_id": "other", "name": "Other"})
    client.post("/shows/other/cast", json={"cast_id": "stranger", "name": "Stranger"})
    r = client.post(f"/episodes/{EP}/assignments/cluster", json={"run_id": run, "cluster_id": ident, "cast_id": "stranger"})
    assert r.status_code == 409 and "other" in r.json()["detail"]
    client.post("/shows/api/cast", json={"cast_id": "temp", "name": "Temp"})
    assert client.post(f"/episodes/{EP}/assignments/cluster", json={"run_id": run, "cluster_id": ident, "cast_id": "temp"}).status_code == 200
    r = client.delete("/shows/api/cast/temp")
    assert r.status_code == 409 and f"{EP}/{run}" in r.json()["detail"]
    assert client.post(f"/episodes/{EP}/assignments/cluster", json={"run_id": run, "cluster_id": ident, "cast_id": None}).status_code == 200
    assert client.delete("/shows/api/cast/temp").json()["deleted"] is True


def test_frames_past_the_end_are_422(api, finished_episode):
    client, _ = api
    assert client.get(f"/episodes/{EP}/timestamp/14.5/preview").status_code == 422
    assert client.post(f"/episodes/{EP}/video_clip", json={"start_s": 14.5, "end_s": 20}).status_code == 422


def _replica_private_mb(app_name: str) -> float:
    """The replica's private memory (USS). RSS also counts the object store's shared pages that Serve
    maps while it passes request bodies along: those belong to the node's store, not to the replica."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if cmd.startswith(f"ray::ServeReplica:{app_name}:"):
            return proc.memory_full_info().uss / 2**20
    raise AssertionError(f"no Serve replica process for {app_name}")


def test_uploads_stream_to_disk_with_flat_replica_memory(api, finished_episode, tmp_path):
    client, _ = api
    blob = tmp_path / "junk.mp4"
    with open(blob, "wb") as fh:
        for _ in range(300):
            fh.write(os.urandom(1 << 20))
    baseline = _replica_private_mb("screenalytics")
    peaks = []
    for _ in range(2):
        with open(blob, "rb") as fh:
            r = client.post(f"/episodes/{EP}/video", files={"file": ("junk.mp4", fh, "video/mp4")})
        assert r.status_code == 422  # streamed in whole, then refused as not a video
        peaks.append(_replica_private_mb("screenalytics"))
    print(f"\nreplica private memory: {baseline:.0f} MB before, {[round(p) for p in peaks]} MB after each of 2 x 300 MB uploads")
    assert max(peaks) - baseline < 100
    assert client.get(f"/episodes/{EP}").json()["local"]["exists"] is True  # the episode's video is untouched


def test_a_bomb_photo_and_malformed_uploads_never_stall_the_api(api, finished_episode):
    """While a decompression-bomb photo and malformed multipart bodies are refused, /health still answers
    within a second (the photo route used to decode on the event loop: 17 s for every request)."""
    import threading

    from .test_api_handlers import MALFORMED_MULTIPART, bomb_png

    client, data = api
    base = str(client.base_url)
    video_before = (data / "videos" / EP).stat().st_mtime if (data / "videos" / EP).exists() else None
    statuses: list[tuple[str, int]] = []

    def refuse() -> None:
        with httpx.Client(base_url=base, timeout=120) as other:
            for _ in range(3):
                r = other.post("/shows/api/cast/bomb_target/faces", files=[("files", ("bomb.png", bomb_png(), "image/png"))])
                statuses.append(("bomb", r.status_code))
                for name, (boundary, body) in MALFORMED_MULTIPART.items():
                    r = other.post(f"/episodes/{EP}/video", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"})
                    statuses.append((name, r.status_code))

    worker = threading.Thread(target=refuse)
    worker.start()
    waits = []
    while worker.is_alive():
        started = time.perf_counter()
        assert client.get("/health").status_code == 200
        waits.append(time.perf_counter() - started)
        time.sleep(0.05)
    worker.join()
    print(f"\n/health during the refusals: {len(waits)} requests, slowest {max(waits) * 1000:.0f} ms")
    assert max(waits) < 1.0
    assert {status for kind, status in statuses if kind == "bomb"} == {422}
    assert {status for kind, status in statuses if kind != "bomb"} == {400}, statuses
    assert client.get("/shows/api/cast/bomb_target").status_code == 404  # nothing written
    if video_before is not None:
        assert (data / "videos" / EP).stat().st_mtime == video_before


def test_a_correction_made_before_a_recluster_is_409_and_lands_nowhere(api, finished_episode):
    client, data = api
    run = clone_run(data, EP, "main", "stale")
    bundle = client.get(f"/episodes/{EP}/faces_review_bundle", params={"run_id": run}).json()
    old_version, ident = bundle["cluster_version"], bundle["identities"][0]["identity_id"]
    ok = client.post(f"/episodes/{EP}/identities/{ident}/reject", json={"run_id": run, "cast_id": "obama", "cluster_version": old_version})
    assert ok.status_code == 200 and ok.json()["cluster_version"] == old_version  # corrections do not change it
    r = client.post(f"/episodes/{EP}/runs/{run}/jobs/cluster", json={"overrides": {"cluster.similarity_threshold": 0.9}})
    assert wait_job(client, r.json()["job_id"])["state"] == "succeeded"
    logged = len(client.get(f"/episodes/{EP}/corrections", params={"run_id": run}).json()["corrections"])

    stale = client.post(f"/episodes/{EP}/identities/{ident}/mark", json={"run_id": run, "kind": "not_face", "cluster_version": old_version})
    assert stale.status_code == 409, stale.text
    new_version = stale.json()["cluster_version"]
    assert new_version != old_version and stale.headers["etag"] == f'"{new_version}"' and "re-clustered" in stale.json()["detail"]
    as_header = client.post(f"/episodes/{EP}/identities/{ident}/mark", json={"run_id": run, "kind": "not_face"}, headers={"If-Match": f'"{old_version}"'})
    assert as_header.status_code == 409
    merge = client.post(
        f"/episodes/{EP}/identities/merge",
        json={"run_id": run, "target_identity_id": ident, "source_identity_id": ident[:-1] + "9", "cluster_version": old_version},
    )
    assert merge.status_code == 409
    assert len(client.get(f"/episodes/{EP}/corrections", params={"run_id": run}).json()["corrections"]) == logged  # nothing landed
    fresh = client.post(f"/episodes/{EP}/identities/{ident}/mark", json={"run_id": run, "kind": "not_face", "cluster_version": new_version})
    assert fresh.status_code == 200 and fresh.json()["marks"].get(ident) == "not_face"


def test_a_label_merged_with_a_guest_mark_keeps_its_seconds_and_is_reported(api, finished_episode):
    client, data = api

    def recluster(run: str) -> dict:
        r = client.post(f"/episodes/{EP}/runs/{run}/jobs/cluster", json={"overrides": {"cluster.similarity_threshold": 0.15}})
        assert wait_job(client, r.json()["job_id"])["state"] == "succeeded"
        return client.get(f"/episodes/{EP}/assignments", params={"run_id": run}).json()

    # Which two people a loose threshold puts together, found on a scratch copy of the run.
    people = _identities(client, clone_run(data, EP, "main", "labelmark-probe"))
    assert len(people) == 3
    owner = {t["track_id"]: p["identity_id"] for p in people for t in p["tracks"]}
    together = next(
        sorted({owner[t] for t in i["track_ids"]}) for i in recluster("labelmark-probe")["identities"] if len({owner[t] for t in i["track_ids"]}) > 1
    )
    named, guest = together[:2]

    run = clone_run(data, EP, "main", "labelmark")
    # A cast member of its own: the show's facebank knows the other tests' cast, and the re-cluster's
    # naming could give one of them to the third person too.
    client.post("/shows/api/cast", json={"cast_id": "host", "name": "Host"})
    assert client.post(f"/episodes/{EP}/assignments/cluster", json={"run_id": run, "cluster_id": named, "cast_id": "host"}).status_code == 200
    assert client.post(f"/episodes/{EP}/identities/{guest}/mark", json={"run_id": run, "kind": "guest"}).status_code == 200
    before = {m["cast_id"]: m["visual_s"] for m in client.get(f"/episodes/{EP}/runs/{run}/screentime").json()["metrics"]}
    assert before["host"] > 0

    merged = recluster(run)
    [conflict] = [c for c in merged["conflicts"] if c["mark"] == "guest"]
    assert conflict["kind"] == "merged" and conflict["cast_ids"] == ["host"], json.dumps(merged)
    assert merged["marks"].get(conflict["identity_id"]) == "guest"
    after = {m["cast_id"]: m["visual_s"] for m in client.get(f"/episodes/{EP}/runs/{run}/screentime").json()["metrics"]}
    assert after["host"] == pytest.approx(before["host"], abs=0.01)  # the label kept its seconds on its own tracks


def test_jobs_and_corrections_are_metrics(api, finished_episode):
    from .test_operations import exported

    client, data = api
    run = clone_run(data, EP, "main", "metrics")
    ident = _identities(client, run)[0]["identity_id"]
    assert client.post(f"/episodes/{EP}/identities/{ident}/mark", json={"run_id": run, "kind": "guest"}).status_code == 200

    def marks(samples) -> float:
        return sum(v for labels, v in samples["ray_screenalytics_corrections_written_total"] if labels.get("op") == "mark")

    samples = exported(["ray_screenalytics_corrections_written_total", "ray_screenalytics_jobs"], until=lambda s: marks(s) >= 1)
    assert marks(samples) >= 1
    jobs = {labels["state"]: v for labels, v in samples["ray_screenalytics_jobs"]}
    assert jobs.get("succeeded", 0) >= 4 and set(jobs) >= {"queued", "running", "failed"}  # the episode's stages ran as jobs
