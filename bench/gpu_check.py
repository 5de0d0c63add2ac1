"""GPU check for a lent GPU machine: which execution providers really run, whether the GPU gives the
same answers as the CPU, and end-to-end throughput on 1080p, inside a fixed time budget.

    python -m bench.gpu_check [--budget-s 330] [--out DIR]

Steps (the long runs of step 5 are skipped, and said so, when the budget left cannot hold them):

1. environment: GPU, onnxruntime and its providers, Ray's resources, FAISS GPUs;
2. models: YuNet and SFace sessions on ``cuda`` must list ``CUDAExecutionProvider`` first (the check
   fails otherwise: no silent CPU fallback), give the CPU's detections (IoU > 0.98) and embeddings
   (cosine > 0.999) on real faces, and their per-frame / per-chip time is measured on both;
3. one detector actor on one 15 s segment in this process, profiled by phase (decode, cut
   thumbnails, detector): the per-actor ceiling the pool multiplies;
4. a 60 s 1080p episode (rendered here from the packaged faces) through the whole pipeline on the
   GPU (cold actors), scored against its ground truth;
5. the episode looped by stream copy to 10 minutes (on the GPU, then CPU-only on the same machine,
   for the ratio) and to 1 hour, each when the rate so far says it fits the budget left: the
   "1-hour 1080p in <= 2 minutes" target is measured, not projected, whenever it can be.

Prints one JSON line per result and a summary last; writes ``gpu_check.json`` under ``--out``.
GPU memory and utilisation are sampled from ``nvidia-smi`` during each pipeline run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

RESULTS: dict = {}
DEVICE = "cuda"  # "cpu" only for a dry run of this script on a machine without a GPU
STARTED = time.time()


def emit(key: str, value) -> None:
    RESULTS[key] = value
    print(json.dumps({key: value, "at_s": round(time.time() - STARTED, 1)}), flush=True)


class GpuSampler:
    """Peak memory and mean utilisation of GPU 0 while a block runs (``nvidia-smi`` every 0.5 s)."""

    def __init__(self) -> None:
        self.mem: list[float] = []
        self.util: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=memory.used,utilization.gpu", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                ).stdout.split("\n")[0]
                mem, util = (float(x) for x in out.split(","))
            except (OSError, ValueError, subprocess.TimeoutExpired):
                continue
            self.mem.append(mem)
            self.util.append(util)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        if not self.mem:
            return {}
        return {"gpu_mem_peak_mib": max(self.mem), "gpu_util_mean_pct": round(statistics.mean(self.util), 1)}


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up: CUDA kernels load lazily, the arena grows
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def check_environment() -> None:
    import onnxruntime as ort

    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"], capture_output=True, text=True)
        emit("gpu", gpu.stdout.strip() or gpu.stderr.strip())
    except OSError as exc:
        emit("gpu", f"nvidia-smi: {exc}")
    emit("onnxruntime", {"version": ort.__version__, "available_providers": ort.get_available_providers()})
    if DEVICE == "cuda":  # name a missing CUDA library up front rather than as a CPU fallback later
        import ctypes
        import os

        capi = Path(ort.__file__).parent / "capi"
        try:
            ctypes.CDLL(str(capi / "libonnxruntime_providers_shared.so"), mode=ctypes.RTLD_GLOBAL)
            ctypes.CDLL(str(capi / "libonnxruntime_providers_cuda.so"))
            emit("cuda_provider_library", "loads")
        except OSError as exc:
            emit("cuda_provider_library", f"{exc}; LD_LIBRARY_PATH={os.environ.get('LD_LIBRARY_PATH')}")
    import cv2

    emit("libraries", {"opencv": cv2.__version__, "numpy": np.__version__})


def check_models(sprites) -> None:
    import cv2

    from actors.models.align import align_face
    from actors.models.yunet_sface import SFaceOrtEmbedder, YuNetOrtDetector
    from pipelines.tracking.tracker import iou_matrix

    gpu_det, cpu_det = YuNetOrtDetector(device=DEVICE), YuNetOrtDetector(device="cpu")
    gpu_emb, cpu_emb = SFaceOrtEmbedder(device=DEVICE), SFaceOrtEmbedder(device="cpu")
    emit(
        "sessions",
        {
            "detector": {"providers": gpu_det._session.get_providers(), "device": gpu_det.device},
            "embedder": {"providers": gpu_emb._session.get_providers(), "device": gpu_emb.device},
        },
    )
    if DEVICE == "cuda" and (gpu_det.device != "cuda" or gpu_emb.device != "cuda"):
        raise SystemExit("the CUDA provider did not load: the models would run on the CPU")

    images = [sprites[name][0].image for name in ("obama", "biden", "t1_a", "hanks")]
    worst_iou, worst_score, chips = 1.0, 0.0, []
    for image in images:
        a, b = cpu_det.detect([image], 0.5)[0], gpu_det.detect([image], 0.5)[0]
        if len(a) != len(b) or not len(a):
            raise SystemExit(f"GPU found {len(b)} faces where the CPU found {len(a)}")
        worst_iou = min(worst_iou, float(iou_matrix(a[:, :4], b[:, :4]).max(axis=1).min()))
        worst_score = max(worst_score, float(np.abs(np.sort(a[:, 4]) - np.sort(b[:, 4])).max()))
        chips.append(align_face(image, a[np.argmax(a[:, 4])][5:15]))
    cosine = float((cpu_emb.embed(np.stack(chips)) * gpu_emb.embed(np.stack(chips))).sum(axis=1).min())
    emit(
        "gpu_matches_cpu",
        {
            "detection_iou_min": round(worst_iou, 4),
            "score_diff_max": round(worst_score, 4),
            "embedding_cosine_min": round(cosine, 5),
            "ok": worst_iou > 0.98 and worst_score < 0.01 and cosine > 0.999,
        },
    )

    frame = cv2.resize(images[2], (960, 544))
    frames = [frame] * 8
    chip_batch = np.stack([chips[i % len(chips)] for i in range(256)])
    emit(
        "model_speed",
        {
            "detector_ms_per_960x544_frame": {
                "cuda_batch8": round(_median_ms(lambda: gpu_det.detect(frames, 0.3), 20) / 8, 2),
                "cpu_1thread": round(_median_ms(lambda: cpu_det.detect(frames[:1], 0.3), 5), 2),
            },
            "embedder_ms_per_chip": {
                "cuda_batch256": round(_median_ms(lambda: gpu_emb.embed(chip_batch), 10) / 256, 3),
                "cpu_1thread": round(_median_ms(lambda: cpu_emb.embed(chip_batch[:8]), 3) / 8, 2),
            },
        },
    )


def profile_one_actor(video: Path) -> None:
    """One detector actor's time on one 15 s segment, by phase, in this process: the ceiling the
    pool multiplies (decode and the cut-detection thumbnails are CPU work; detection is the GPU's)."""
    import cProfile
    import pstats
    from functools import partial

    from actors.detector_actor import DetectorSettings, FaceDetectorWorker
    from actors.models.config import ModelConfig
    from pipelines.frame_source import decode_segments
    from pipelines.video import DecodeOptions, probe_video

    meta = probe_video(video)
    stride = max(1, round(meta.fps / 5))
    options = DecodeOptions(stride=stride, cut_threshold=27.0, min_shot_frames=6)
    source = partial(decode_segments, path=str(video), fps=meta.fps, options=options, last_segment=99, frames_per_batch=8)
    worker = FaceDetectorWorker(ModelConfig(device=DEVICE).model_dump(), DetectorSettings(), source)
    segment = {"index": np.array([1]), "start_frame": np.array([int(15 * meta.fps)]), "end_frame": np.array([int(30 * meta.fps)])}
    list(worker(segment))  # warm-up
    profiler = cProfile.Profile()
    t = time.time()
    profiler.enable()
    list(worker(segment))
    profiler.disable()
    wall = time.time() - t
    stats = pstats.Stats(profiler).stats

    def seconds(match, cumulative: bool = False) -> float:
        return round(sum(v[3] if cumulative else v[2] for k, v in stats.items() if match(k[2])), 3)

    row = {
        "segment_frames": int(15 * meta.fps),
        "wall_s": round(wall, 3),
        "frames_per_s": round(15 * meta.fps / wall, 1),
        "decode_incl_thumbs_s": seconds(lambda n: n == "decode_segment", cumulative=True),
        "cut_thumbnails_s": seconds(lambda n: "'reformat'" in n),
        "detector_run_s": seconds(lambda n: "pybind11_state.run" in n),
        "resize_s": seconds(lambda n: "resize" in n),
    }
    emit("one_actor_segment", row)


def run_episode(name: str, video: Path, seconds: float, out: Path, device: str, truth=None) -> dict:
    from pipelines.layout import RunLayout
    from pipelines.runner import run_pipeline
    from pipelines.storage import LocalStorage

    storage = LocalStorage(out / f"data_{name}")
    with GpuSampler() as sampler:
        t = time.time()
        result = run_pipeline(storage=storage, ep_id="gpu-s01e01", video=str(video), overrides={"models.device": device}, force=True)
        wall = time.time() - t
    row = {
        "device": device,
        "video_s": seconds,
        "wall_s": round(wall, 1),
        "realtime_x": round(seconds / wall, 1),
        "stages_s": {o.stage.value: round(o.seconds, 1) for o in result.outcomes},
        **sampler.summary(),
    }
    if truth is not None:
        from pipelines.sample.evaluate import evaluate_run

        ev = evaluate_run(storage, RunLayout("gpu-s01e01", result.run_id), truth)
        row["accuracy"] = {
            "median_error": round(ev.median_error, 4),
            "max_error": round(ev.max_error, 4),
            "purity": round(ev.purity, 3),
            "recall": round(ev.recall, 3),
            "spurious_identities": ev.spurious_identities,
        }
    emit(name, row)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=330.0, help="wall seconds this check may take in all")
    parser.add_argument("--out", type=Path, default=Path("/tmp/gpu_check"))
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the rendered episode")
    parser.add_argument("--long", default="10,60", help="minutes of looped video to run after the 60 s runs, while the budget allows")
    parser.add_argument("--compare-at", type=float, default=10, help="minutes of looped video also run on the CPU, for the GPU/CPU ratio")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: dry-run this script where there is no GPU")
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = args.device
    deadline = time.time() + args.budget_s
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        _checks(args, deadline)
    finally:
        (args.out / "gpu_check.json").write_text(json.dumps(RESULTS, indent=2))
        print("SUMMARY", json.dumps(RESULTS.get("summary", {})), flush=True)


def _checks(args, deadline: float) -> None:
    from bench.episodes import loop_video
    from pipelines.sample.episode import random_episode, render_episode
    from pipelines.sample.media import load_sprites

    check_environment()
    sprites = load_sprites()
    check_models(sprites)

    t = time.time()
    video = args.out / f"gpu_{int(args.seconds)}s_1080p.mp4"
    spec = random_episode(7, args.seconds, sorted(sprites), 1920, 1080, sprite_counts={k: len(v) for k, v in sprites.items()})
    truth = render_episode(spec, sprites, video)
    emit("render", {"video_s": args.seconds, "seconds": round(time.time() - t, 1)})

    import faiss
    import ray

    from pipelines.ray_env import ensure_ray

    t = time.time()
    ensure_ray()
    emit(
        "ray",
        {
            "resources": {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")},
            "start_s": round(time.time() - t, 1),
            "faiss_gpus": faiss.get_num_gpus(),
        },
    )

    summary: dict = {}
    profile_one_actor(video)
    gpu = run_episode(f"{'gpu' if DEVICE == 'cuda' else 'cpu'}_{args.seconds:g}s_cold", video, args.seconds, args.out, DEVICE, truth)
    summary["accuracy_on_gpu"] = gpu.get("accuracy")
    from actors.model_actors import start_embedder_pool
    from actors.models.config import ModelConfig

    emit("embedder_actors", ray.get([a.info.remote() for a in start_embedder_pool(ModelConfig(device=DEVICE).model_dump())]))
    rate = gpu["realtime_x"]
    for minutes in [float(m) for m in args.long.split(",") if m]:
        long_video = loop_video(video, args.out / f"gpu_{minutes:g}min_1080p.mp4", round(minutes * 60 / args.seconds))
        devices = [DEVICE, "cpu"] if minutes == args.compare_at and DEVICE != "cpu" else [DEVICE]
        for device in devices:
            # the rate so far comes from a shorter run, which start-up slows down: longer runs go faster
            needed = 1.1 * minutes * 60 / rate
            left = deadline - time.time()
            name = f"{'gpu' if device == 'cuda' else 'cpu'}_{minutes:g}min"
            if needed > left:
                emit(name, {"skipped": f"needs ~{needed:.0f}s at {rate}x realtime, {left:.0f}s of the budget left"})
                continue
            row = run_episode(name, long_video, minutes * 60, args.out, device)
            if device == DEVICE:
                rate = row["realtime_x"]
                summary[f"{minutes:g}min_1080p_wall_s"] = row["wall_s"]
            else:
                summary[f"gpu_vs_cpu_{minutes:g}min_same_machine"] = round(row["wall_s"] / summary[f"{minutes:g}min_1080p_wall_s"], 2)
        long_video.unlink()
    summary["realtime_x_longest"] = rate
    summary["projected_1h_1080p_min"] = round(60 / rate, 2)
    emit("summary", summary)


if __name__ == "__main__":
    main()
