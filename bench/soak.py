"""Soak: mixed reads, writes, uploads, job starts and cancels from many clients against one API server,
with a job actor killed (SIGKILL, as the OOM killer would) every minute.

    python -m bench.soak [--minutes 10] [--clients 20]

Reports: requests by status (0 5xx wanted), jobs stuck in flight after the end (0 wanted), corrections
acknowledged with 200 but missing from the log (0 wanted), and the API replica's memory over time
(private USS, flat wanted; RSS also counts object-store pages Serve maps while passing bodies along).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil

from pipelines.sample.episode import render_episode, test_episode_spec
from pipelines.sample.media import load_sprites

from .episodes import bench_dir

EP, EP2 = "soak-s01e01", "soak-s01e02"
FINAL = {"succeeded", "failed", "canceled"}


def _replica() -> psutil.Process:
    for proc in psutil.process_iter(["cmdline"]):
        if " ".join(proc.info["cmdline"] or []).startswith("ray::ServeReplica:screenalytics:"):
            return proc
    raise RuntimeError("no API replica process")


def _wait(client: httpx.Client, job_id: str, timeout: float = 300) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in FINAL:
            return job
        time.sleep(0.5)
    raise RuntimeError(f"job {job_id} did not finish")


class Soak:
    def __init__(self, base: str, video: Path, junk: Path, minutes: float, clients: int):
        self.base, self.video, self.junk = base, video, junk
        self.until = time.time() + minutes * 60
        self.clients = clients
        self.statuses: Counter = Counter()
        self.errors: list[str] = []
        self.acked_corrections = 0
        self.kills = 0
        self.killed: list[str] = []
        self.memory: list[dict] = []
        self.lock = threading.Lock()
        self.tracks: list[int] = []

    def record(self, op: str, r: httpx.Response) -> None:
        with self.lock:
            self.statuses[r.status_code] += 1
            if r.status_code >= 500:
                self.errors.append(f"{op} -> {r.status_code}: {r.text[:200]}")

    def client_loop(self, k: int) -> None:
        rng = random.Random(k)
        with httpx.Client(base_url=self.base, timeout=120) as c:
            while time.time() < self.until:
                roll = rng.random()
                try:
                    if roll < 0.5:
                        path = rng.choice(
                            [
                                "/episodes",
                                "/jobs?limit=20",
                                f"/episodes/{EP}/runs/main/screentime",
                                f"/episodes/{EP}/faces_review_bundle",
                                f"/episodes/{EP}/assignments",
                                f"/episodes/{EP}/status",
                                f"/episodes/{EP}/timeline_export",
                                "/shows/soak/cast",
                            ]
                        )
                        self.record(path, c.get(path))
                    elif roll < 0.78:
                        track = rng.choice(self.tracks)
                        r = c.post(f"/episodes/{EP}/assignments/track", json={"track_id": track, "cast_id": rng.choice(["ana", "bea", "cy"])})
                        self.record("assign", r)
                        if r.status_code == 200:
                            with self.lock:
                                self.acked_corrections += 1
                    elif roll < 0.82:
                        with open(self.video if rng.random() < 0.5 else self.junk, "rb") as fh:
                            self.record("upload", c.post(f"/episodes/{EP2}/video", files={"file": ("v.mp4", fh, "video/mp4")}))
                    elif roll < 0.95:
                        stage = rng.choice(["cluster", "screentime", "detect_track"])
                        self.record(
                            "start", c.post(f"/episodes/{EP2 if stage == 'detect_track' else EP}/runs/r{rng.randrange(3)}/jobs/{stage}", json={"force": True})
                        )
                    else:
                        jobs = c.get("/jobs", params={"limit": 5}).json()["jobs"]
                        live = [j for j in jobs if j["state"] not in FINAL]
                        if live:
                            self.record("cancel", c.post(f"/jobs/{live[0]['job_id']}/cancel"))
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.errors.append(f"transport: {exc!r}"[:200])

    def killer(self) -> None:
        """Every minute, SIGKILL one running job's actor; with none running, start one to kill."""
        import ray

        with httpx.Client(base_url=self.base, timeout=60) as c:
            while time.time() < self.until - 30:
                time.sleep(60)
                running = [j for j in c.get("/jobs", params={"limit": 50}).json()["jobs"] if j["state"] == "running"]
                if not running:
                    r = c.post(f"/episodes/{EP2}/runs/victim/jobs/detect_track", json={"force": True})
                    if r.status_code != 202:
                        continue
                    deadline = time.time() + 30
                    while c.get(f"/jobs/{r.json()['job_id']}").json()["state"] == "queued" and time.time() < deadline:
                        time.sleep(0.2)
                    running = [c.get(f"/jobs/{r.json()['job_id']}").json()]
                try:
                    actor = ray.get_actor(running[0]["actor_name"], namespace="screenalytics")
                    os.kill(ray.get(actor.pid.remote(), timeout=10), signal.SIGKILL)
                    self.kills += 1
                    self.killed.append(running[0]["job_id"])
                except Exception:  # noqa: BLE001 - the job may have ended meanwhile
                    pass

    def sample_memory(self) -> None:
        replica = _replica()
        t0 = time.time()
        while time.time() < self.until + 5:
            info = replica.memory_full_info()
            self.memory.append({"t": round(time.time() - t0), "uss_mb": round(info.uss / 2**20), "rss_mb": round(info.rss / 2**20)})
            time.sleep(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--out", default="bench/results/soak_2core.json")
    args = parser.parse_args()

    from ray import serve

    from pipelines.ray_env import ensure_ray
    from serve_app.app import deployment

    video = bench_dir() / "soak_14s.mp4"
    if not video.is_file():
        render_episode(test_episode_spec(), load_sprites(), video)
    junk = bench_dir() / "soak_junk.mp4"
    junk.write_bytes(os.urandom(20 << 20))
    data = bench_dir() / "soak-data"
    ensure_ray(num_cpus=2)
    port = 8123
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(deployment(str(data.resolve())), name="screenalytics", route_prefix="/")
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=300) as c:
        c.post("/shows", json={"show_id": "soak", "name": "Soak"})
        for cast in ("ana", "bea", "cy"):
            c.post("/shows/soak/cast", json={"cast_id": cast, "name": cast.title()})
        for e in (1, 2):
            c.post("/episodes", json={"show_slug_or_id": "soak", "season_number": 1, "episode_number": e})
            c.post(f"/episodes/soak-s01e0{e}/video", files={"file": ("v.mp4", video.read_bytes(), "video/mp4")})
        for run in ("main", "r0", "r1", "r2"):
            for stage in ("detect_track", "faces_embed", "cluster", "screentime"):
                job = c.post(f"/episodes/{EP}/runs/{run}/jobs/{stage}", json={}).json()
                _wait(c, job["job_id"])
        soak = Soak(base, video, junk, args.minutes, args.clients)
        soak.tracks = [t["track_id"] for cl in c.get(f"/episodes/{EP}/cluster_tracks").json()["clusters"] for t in cl["tracks"]]
        before = c.get(f"/episodes/{EP}/assignments").json()["corrections"]
        threads = [threading.Thread(target=soak.client_loop, args=(k,)) for k in range(args.clients)]
        threads += [threading.Thread(target=soak.killer), threading.Thread(target=soak.sample_memory)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(40)  # the watchdog ends any job whose actor died in the last moments
        jobs = c.get("/jobs", params={"limit": 1000}).json()["jobs"]
        stuck = [j["job_id"] for j in jobs if j["state"] not in FINAL and not _alive(j["actor_name"])]
        after = c.get(f"/episodes/{EP}/assignments").json()["corrections"]
    result = {
        "minutes": args.minutes,
        "clients": args.clients,
        "requests": sum(soak.statuses.values()),
        "statuses": dict(sorted(soak.statuses.items())),
        "server_errors": sum(v for k, v in soak.statuses.items() if k >= 500),
        "errors": soak.errors[:20],
        "job_actors_killed": soak.kills,
        "killed_jobs_final_states": dict(Counter(next((j["state"] for j in jobs if j["job_id"] == k), "?") for k in soak.killed)),
        "jobs": dict(Counter(j["state"] for j in jobs)),
        "stuck_jobs": stuck,
        "corrections_acknowledged": soak.acked_corrections,
        "corrections_logged": after - before,
        "lost_corrections": soak.acked_corrections - (after - before),
        "replica_memory": soak.memory,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    mem = soak.memory
    print(json.dumps({k: v for k, v in result.items() if k != "replica_memory"}, indent=1))
    print(
        f"replica USS MB first/max/last: {mem[0]['uss_mb']}/{max(m['uss_mb'] for m in mem)}/{mem[-1]['uss_mb']}; "
        f"RSS: {mem[0]['rss_mb']}/{max(m['rss_mb'] for m in mem)}/{mem[-1]['rss_mb']}"
    )
    serve.shutdown()


def _alive(name: str) -> bool:
    import ray

    try:
        ray.get_actor(name, namespace="screenalytics")
        return True
    except ValueError:
        return False


if __name__ == "__main__":
    main()
