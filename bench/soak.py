"""Soak: mixed reads, writes, uploads, job starts and cancels from many clients against one API server,
with a job actor killed (SIGKILL, as the OOM killer would) every minute; decompression-bomb photos and
malformed multipart bodies among the uploads; and one run re-clustered every minute (its ids change)
while reviewers post corrections from pages they loaded before it.

    python -m bench.soak [--minutes 10] [--clients 20] [--reviewers 3]

Reports: requests by status (0 5xx wanted), jobs stuck in flight after the end (0 wanted), corrections
acknowledged with 200 but missing from the log (0 wanted), corrections that landed on other tracks than
the page showed for their identity (0 wanted; a stale page gets 409), labels neither applied nor listed
as a conflict (0 wanted), and the API replica's memory over time (private USS, flat wanted; RSS also
counts object-store pages Serve maps while passing bodies along).
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

from pipelines.corrections import load_corrections, undone_seqs
from pipelines.layout import RunLayout
from pipelines.sample.episode import render_episode, test_episode_spec
from pipelines.sample.media import load_sprites
from pipelines.schemas.corrections import AssignCluster, CorrectionsLog, Mark
from pipelines.storage import LocalStorage

from .episodes import bench_dir

EP, EP2 = "soak-s01e01", "soak-s01e02"
REVIEWED = "rv"  # the run re-clustered every minute under the reviewers
FINAL = {"succeeded", "failed", "canceled"}
RECLUSTER_THRESHOLDS = (0.9, 0.15, None)  # split, merge, back to the default: the ids change every time
MALFORMED = (  # (boundary in the header, body)
    ("BOUND", b'--OTHER\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nxx\r\n--OTHER--\r\n'),
    ("BOUND", b"--BOUND\r\nX-Padding: " + b"a" * 20000 + b'\r\nContent-Disposition: form-data; name="file"\r\n\r\nxx\r\n--BOUND--\r\n'),
    ("BOUND", b'--BOUND\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\ncut off'),
)


def bomb_png(side: int = 30000) -> bytes:
    """A PNG whose header claims side x side one-bit pixels, a few hundred KB on the wire."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = zlib.compress(b"\x00" * ((side // 8 + 1) * side), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


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
        self.bomb = bomb_png()
        self.reclusters = 0
        self.stale_refused = 0
        self.reviews_acked = 0
        self.shown: set[tuple[str, frozenset[int]]] = set()  # (identity, its tracks) as pages showed them when acked

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
                    elif roll < 0.80:
                        with open(self.video if rng.random() < 0.5 else self.junk, "rb") as fh:
                            self.record("upload", c.post(f"/episodes/{EP2}/video", files={"file": ("v.mp4", fh, "video/mp4")}))
                    elif roll < 0.82:
                        if rng.random() < 0.5:
                            self.record("bomb photo", c.post("/shows/soak/cast/ana/faces", files=[("files", ("bomb.png", self.bomb, "image/png"))]))
                        else:
                            boundary, body = rng.choice(MALFORMED)
                            headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
                            self.record("malformed upload", c.post(f"/episodes/{EP2}/video", content=body, headers=headers))
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

    def reviewer_loop(self, k: int) -> None:
        """A reviewer: loads the review page's data, looks at it for a while (a re-cluster may land
        meanwhile), then names or marks one identity with the version the page was loaded at."""
        rng = random.Random(1000 + k)
        with httpx.Client(base_url=self.base, timeout=120) as c:
            while time.time() < self.until:
                try:
                    page = c.get(f"/episodes/{EP}/faces_review_bundle", params={"run_id": REVIEWED})
                    self.record("review page", page)
                    if page.status_code != 200 or not page.json()["identities"]:
                        time.sleep(1)
                        continue
                    bundle = page.json()
                    time.sleep(rng.uniform(0, 15))
                    ident = rng.choice(bundle["identities"])
                    body = {"run_id": REVIEWED, "cluster_version": bundle["cluster_version"]}
                    if rng.random() < 0.6:
                        r = c.post(
                            f"/episodes/{EP}/assignments/cluster",
                            json={**body, "cluster_id": ident["identity_id"], "cast_id": rng.choice(["ana", "bea", "cy"])},
                        )
                    else:
                        r = c.post(f"/episodes/{EP}/identities/{ident['identity_id']}/mark", json={**body, "kind": rng.choice(["guest", "not_face"])})
                    self.record("review correction", r)
                    with self.lock:
                        if r.status_code == 200:
                            self.reviews_acked += 1
                            self.shown.add((ident["identity_id"], frozenset(t["track_id"] for t in ident["tracks"])))
                        elif r.status_code == 409:
                            self.stale_refused += 1
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.errors.append(f"transport: {exc!r}"[:200])

    def reclusterer(self) -> None:
        """Every minute, re-cluster the reviewed run with another threshold, so its identity ids change."""
        with httpx.Client(base_url=self.base, timeout=60) as c:
            k = 0
            while time.time() < self.until - 20:
                time.sleep(60)
                threshold = RECLUSTER_THRESHOLDS[k % len(RECLUSTER_THRESHOLDS)]
                k += 1
                overrides = {"cluster.similarity_threshold": threshold} if threshold is not None else {}
                r = c.post(f"/episodes/{EP}/runs/{REVIEWED}/jobs/cluster", json={"force": True, "overrides": overrides})
                self.record("recluster", r)
                if r.status_code == 202 and _wait(c, r.json()["job_id"])["state"] == "succeeded":
                    self.reclusters += 1

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
    parser.add_argument("--reviewers", type=int, default=3, help="clients correcting the run that is re-clustered every minute")
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
        for run in ("main", "r0", "r1", "r2", REVIEWED):
            for stage in ("detect_track", "faces_embed", "cluster", "screentime"):
                job = c.post(f"/episodes/{EP}/runs/{run}/jobs/{stage}", json={}).json()
                _wait(c, job["job_id"])
        soak = Soak(base, video, junk, args.minutes, args.clients)
        soak.tracks = [t["track_id"] for cl in c.get(f"/episodes/{EP}/cluster_tracks").json()["clusters"] for t in cl["tracks"]]
        before = c.get(f"/episodes/{EP}/assignments").json()["corrections"]
        threads = [threading.Thread(target=soak.client_loop, args=(k,)) for k in range(args.clients)]
        threads += [threading.Thread(target=soak.reviewer_loop, args=(k,)) for k in range(args.reviewers)]
        threads += [threading.Thread(target=soak.killer), threading.Thread(target=soak.sample_memory), threading.Thread(target=soak.reclusterer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(40)  # the watchdog ends any job whose actor died in the last moments
        jobs = c.get("/jobs", params={"limit": 1000}).json()["jobs"]
        stuck = [j["job_id"] for j in jobs if j["state"] not in FINAL and not _alive(j["actor_name"])]
        after = c.get(f"/episodes/{EP}/assignments").json()["corrections"]
        reviewed = c.get(f"/episodes/{EP}/assignments", params={"run_id": REVIEWED}).json()
    log = load_corrections(LocalStorage(data), RunLayout(EP, REVIEWED))
    wrong = [e.seq for e in log.corrections if e.identity and (e.identity.identity_id, frozenset(a.track_id for a in e.identity.tracks)) not in soak.shown]
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
        "reclusters": soak.reclusters,
        "review_corrections_acknowledged": soak.reviews_acked,
        "review_corrections_logged": len(log.corrections),
        "stale_corrections_refused_409": soak.stale_refused,
        "corrections_on_wrong_tracks": len(wrong),
        "silent_label_losses": len(silent_label_losses(log, reviewed)),
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


def silent_label_losses(log: CorrectionsLog, assignments: dict) -> list[int]:
    """Seqs of cast labels that the final assignments neither apply (on any of their tracks) nor list as a
    conflict or unattached entry, and that no later label or mark on the same tracks replaced."""
    identity_of = {t: i["identity_id"] for i in assignments["identities"] for t in i["track_ids"]}
    flagged = {s for c in assignments["conflicts"] for s in c["seqs"]} | {u["seq"] for u in assignments["unattached"]}
    undone = undone_seqs(log)
    entries = [e for e in sorted(log.corrections, key=lambda e: e.seq) if e.seq not in undone and isinstance(e, (AssignCluster, Mark))]
    lost = []
    for k, e in enumerate(entries):
        if not isinstance(e, AssignCluster) or not e.cast_id:
            continue
        tracks = {a.track_id for a in e.identity.tracks}
        if any(tracks & {a.track_id for a in later.identity.tracks} for later in entries[k + 1 :]):
            continue  # a later decision about the same tracks replaced it
        applied = {assignments["track_overrides"].get(str(t)) or assignments["manual_assignments"].get(identity_of.get(t, "")) for t in tracks}
        if e.cast_id not in applied and e.seq not in flagged:
            lost.append(e.seq)
    return lost


def _alive(name: str) -> bool:
    import ray

    try:
        ray.get_actor(name, namespace="screenalytics")
        return True
    except ValueError:
        return False


if __name__ == "__main__":
    main()
