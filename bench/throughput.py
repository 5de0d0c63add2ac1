"""Throughput benchmark: video-seconds processed per wall-second, and peak memory, against a naive
baseline measured in the same run.

    python -m bench.throughput [--seconds 60] [--long 600]

The baseline is the plain loop a first attempt would write: decode every frame, detect on every
4th, embed every face found on every 12th. Ray start-up is excluded from the pipeline's time (it is
started before the clock runs); actor start-up is included. The pipeline is measured twice: on
cold Ray workers (first run in the process) and warm (as in a long-running cluster). Peak memory is the largest summed
resident set of this process and all its descendants (Ray workers included), sampled every 0.1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import av
import cv2

from pipelines.ray_env import ensure_ray
from pipelines.runner import run_pipeline
from pipelines.storage import LocalStorage

from .episodes import bench_dir, episode


class PeakMemory:
    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _tree_rss() -> int:
        """Summed RSS of this process and its descendants, from /proc (Linux)."""
        children: dict[int, list[int]] = {}
        rss: dict[int, int] = {}
        page = os.sysconf("SC_PAGE_SIZE")
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, ppid = int(entry), int(fields[1])
            children.setdefault(ppid, []).append(pid)
            rss[pid] = int(fields[21]) * page
        total, stack = 0, [os.getpid()]
        while stack:
            pid = stack.pop()
            total += rss.get(pid, 0)
            stack.extend(children.get(pid, []))
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            time.sleep(0.1)

    def __enter__(self) -> PeakMemory:
        self.peak = self._tree_rss()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def naive_baseline(video: str) -> float:
    from actors.models.align import align_face
    from actors.models.yunet_sface import SFaceEmbedder, YuNetDetector

    det, emb = YuNetDetector(), SFaceEmbedder()
    t0 = time.time()
    with av.open(video) as c:
        for i, frame in enumerate(c.decode(video=0)):
            image = frame.to_ndarray(format="bgr24")
            if i % 4:
                continue
            small = cv2.resize(image, (640, round(640 * image.shape[0] / image.shape[1])))
            faces = det.detect([small], 0.6)[0]
            if i % 12 == 0 and len(faces):
                s = image.shape[1] / 640
                chips = [align_face(image, f[5:15] * s) for f in faces]
                emb.embed(__import__("numpy").stack(chips))
    return time.time() - t0


def measure(video, seconds: float, label: str) -> dict:
    storage = LocalStorage(bench_dir() / "throughput")
    ep_id = f"thru-s01e{int(seconds) % 100:02d}"
    run_id = f"r{int(time.time())}"
    with PeakMemory() as mem:
        t0 = time.time()
        run_pipeline(storage=storage, ep_id=ep_id, run_id=run_id, video=str(video))
        wall = time.time() - t0
    storage.delete_prefix(f"frames/{ep_id}/runs/{run_id}")
    return {"episode_s": seconds, "wall_s": round(wall, 2), "realtime_x": round(seconds / wall, 2), "peak_rss_gb": round(mem.peak / 1e9, 2), "label": label}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--long", type=float, default=0.0, help="also run an episode this long to compare peak memory")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args(argv)
    cv2.setNumThreads(2)
    video, _ = episode(909, args.seconds)
    ensure_ray()
    # First run on a fresh Ray pays for worker processes and imports; a long-running cluster (Serve,
    # catalog batches) does not. Report both.
    results = [measure(video, args.seconds, "pipeline, cold Ray workers")]
    print(json.dumps(results[-1]), flush=True)
    results.append(measure(video, args.seconds, "pipeline, warm"))
    print(json.dumps(results[-1]), flush=True)
    if not args.skip_baseline:
        base = naive_baseline(str(video))
        results.append({"episode_s": args.seconds, "wall_s": round(base, 2), "realtime_x": round(args.seconds / base, 2), "label": "naive loop"})
        results.append({"speedup_vs_naive_cold": round(base / results[0]["wall_s"], 2), "speedup_vs_naive_warm": round(base / results[1]["wall_s"], 2)})
    if args.long:
        long_video, _ = episode(910, args.long)
        results.append(measure(long_video, args.long, "pipeline (long)"))
    for r in results[2:]:
        print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
