"""Catalog throughput with one worker process versus two, measured in the same run.

    python -m bench.catalog_scaling [--episodes 4] [--seconds 30]

Each configuration runs ``python -m pipelines.batch`` in a fresh local Ray limited to N CPUs with N
episode workers (one detector actor each), on the same catalog, into a fresh data dir. Reports the
ratio with Ray start-up included (the same in both) and without it.

Ray's CPU limit is logical: unpinned, the one-worker run's driver, Ray daemons and helper threads
still use the second core, so its baseline is more than one core's work and the ratio understates
how the work scales. ``--pin`` (the default where ``taskset`` exists) also runs each configuration
with its whole process tree pinned to N cores (one worker on one core, two on two), and reports
both ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

from .episodes import bench_dir, episode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2)
    args = parser.parse_args(argv)
    folder = bench_dir() / "scaling"
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["ep_id,video"]
    for k in range(args.episodes):
        video, _ = episode(500 + k, args.seconds)
        rows.append(f"scale-s01e{k + 1:02d},{video.resolve()}")
    catalog = folder / "catalog.csv"
    catalog.write_text("\n".join(rows) + "\n")
    modes = [False, True] if args.pin else [False]
    for pinned in modes:
        results = {}
        for workers in (1, 2):
            data = folder / f"data_{workers}"
            shutil.rmtree(data, ignore_errors=True)
            cmd = [
                sys.executable,
                "-m",
                "pipelines.batch",
                "--catalog",
                str(catalog),
                "--data-dir",
                str(data),
                "--workers",
                str(workers),
                "--num-cpus",
                str(workers),
            ]
            if pinned:
                cmd = ["taskset", "-c", ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:workers]), *cmd]
            t0 = time.time()
            proc = subprocess.run(cmd, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}, capture_output=True, text=True)
            wall = time.time() - t0
            if proc.returncode != 0:
                print(proc.stdout[-2000:], proc.stderr[-2000:])
                return 1
            catalog_s = float(re.search(r"succeeded in ([0-9.]+)s", proc.stdout).group(1))
            results[workers] = (wall, catalog_s)
            video_s = args.episodes * args.seconds
            print(
                json.dumps(
                    {
                        "workers": workers,
                        "pinned_to_cores": workers if pinned else None,
                        "episodes": args.episodes,
                        "wall_s": round(wall, 1),
                        "catalog_s_without_ray_start": catalog_s,
                        "video_s_per_wall_s": round(video_s / wall, 2),
                    }
                ),
                flush=True,
            )
        print(
            json.dumps(
                {
                    "pinned": pinned,
                    "throughput_ratio_2_vs_1": round(results[1][0] / results[2][0], 2),
                    "throughput_ratio_2_vs_1_without_ray_start": round(results[1][1] / results[2][1], 2),
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
