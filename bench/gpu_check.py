"""GPU check for a lent GPU machine: which execution providers really run, whether the GPU gives the
same answers as the CPU, whether NVDEC decodes (and gives the CPU decoder's pictures), and the
1-hour 1080p episode end to end, inside a fixed time budget.

    python -m bench.gpu_check [--budget-s 420] [--out DIR]

Steps (a long run is skipped, and said so, when the budget left cannot hold it):

1. environment: GPU, onnxruntime and its providers, NVDEC's libraries;
2. models: YuNet and SFace sessions on ``cuda`` must list ``CUDAExecutionProvider`` first (the check
   fails otherwise: no silent CPU fallback), give the CPU's detections (IoU > 0.98) and embeddings
   (cosine > 0.999) on real faces, and their per-frame / per-chip time is measured on both;
3. NVDEC against the CPU decoder on a 60 s 1080p episode rendered here from the packaged faces: the
   same sampled pictures and cuts, and decoding speed in one process and in 16 at once;
4. the whole ``screenalytics run`` command (its own Ray start-up included) on that episode looped by
   stream copy to one hour: with ``detect_track.decode_device=auto`` (NVDEC when it works), then with
   the default CPU decoding, then with half the segments on each;
5. in one Ray session: the 60 s episode scored against its ground truth for each decoder, and
   10 minutes on the GPU and CPU-only on the same machine, for the ratio.

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

    from actors.detections import iou_matrix
    from actors.models.align import align_face
    from actors.models.yunet_sface import SFaceOrtEmbedder, YuNetOrtDetector

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


def _decode_whole(path: str, frames: int, fps: float, hw: bool) -> dict:
    """Decode ``[0, frames)`` as the pipeline does (skipping, thumbnails, sampled frames to BGR)."""
    from pipelines.schemas import Segment
    from pipelines.segment_decode import decode_segment
    from pipelines.video import DecodeOptions, SegmentDecodeResult

    result = SegmentDecodeResult()
    t = time.perf_counter()
    sampled = sum(
        1 for _ in decode_segment(path, Segment(index=0, start_frame=0, end_frame=frames), fps, DecodeOptions(5, 27.0, 6, hw_decode=hw), True, result)
    )
    return {"seconds": time.perf_counter() - t, "frames": frames, "decoded": result.frames_decoded, "sampled": sampled, "decoder": result.decoder}


def check_nvdec(video: Path, processes: int) -> bool:
    """NVDEC through PyAV: does it run, does it give the CPU decoder's pictures, and how fast is it in
    one process and in 16 at once (one per detector actor)? Returns whether NVDEC decoded."""
    import ctypes
    import multiprocessing

    from pipelines.schemas import Segment
    from pipelines.segment_decode import decode_segment
    from pipelines.video import DecodeOptions, SegmentDecodeResult, probe_video

    libs = {}
    for name in ("libcuda.so.1", "libnvcuvid.so.1"):
        try:
            ctypes.CDLL(name)
            libs[name] = "loads"
        except OSError as exc:
            libs[name] = str(exc)
    emit("nvdec_libraries", libs)
    meta = probe_video(video)
    segment = Segment(index=1, start_frame=meta.frame_count // 20 * 5, end_frame=meta.frame_count // 20 * 10)  # a quarter in, 5-aligned
    decoded = {}
    for hw in (False, True):
        result = SegmentDecodeResult()
        t = time.perf_counter()
        frames = list(decode_segment(str(video), segment, meta.fps, DecodeOptions(5, 27.0, 6, hw_decode=hw), False, result))
        decoded[hw] = (frames, result, time.perf_counter() - t)
    (cpu, cpu_r, cpu_s), (gpu, gpu_r, gpu_s) = decoded[False], decoded[True]
    same_frames = [f.frame_idx for f in cpu] == [f.frame_idx for f in gpu]
    diffs = [np.abs(a.image.astype(np.int16) - b.image).max() for a, b in zip(cpu, gpu)] if same_frames else []
    emit(
        "nvdec_vs_cpu_one_segment",
        {
            "decoder": gpu_r.decoder,
            "sampled_frames_same": same_frames,
            "cuts_same": cpu_r.cut_frames == gpu_r.cut_frames,
            "pixels_identical_frames": int(sum(d == 0 for d in diffs)),
            "pixel_max_abs_diff": int(max(diffs)) if diffs else None,
            "frames": len(cpu),
            "cpu_s": round(cpu_s, 3),
            "nvdec_s": round(gpu_s, 3),
        },
    )
    ctx = multiprocessing.get_context("spawn")
    total = int(meta.frame_count)
    for hw in (False, True) if gpu_r.decoder == "nvdec" else (False,):
        with ctx.Pool(processes) as pool:
            pool.starmap(_decode_whole, [(str(video), 24, meta.fps, hw)] * processes)  # warm the workers (imports, CUDA)
            t = time.perf_counter()
            rows = pool.starmap(_decode_whole, [(str(video), total, meta.fps, hw)] * processes)
            wall = time.perf_counter() - t
        emit(
            f"decode_{processes}_processes_{'nvdec' if hw else 'cpu'}",
            {
                "wall_s": round(wall, 2),
                "frames_per_s": round(processes * total / wall),
                "decoded_per_s": round(sum(r["decoded"] for r in rows) / wall),
                "decoders": sorted({r["decoder"] for r in rows}),
            },
        )
    return gpu_r.decoder == "nvdec"


def cli_run(name: str, video: Path, seconds: float, out: Path, settings: dict[str, str]) -> dict:
    """The whole ``screenalytics run`` command (its own Ray start and stop included), as a user runs it."""
    import os
    import sys

    from bench.speed import cli_profile

    data = out / f"data_{name}"
    cmd = [sys.executable, "-m", "serve_app.cli", "run", str(video), "--ep-id", "gpu-s01e01", "--data-dir", str(data), "--no-progress"]
    for key, value in settings.items():
        cmd += ["--set", f"{key}={value}"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    with GpuSampler() as sampler:
        t = time.time()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.time() - t
    if proc.returncode:
        emit(name, {"failed": proc.returncode, "stderr": proc.stderr[-3000:]})
        return {}
    run_dir = data / "manifests" / "gpu-s01e01" / "runs" / "main"
    metrics = json.loads((run_dir / "track_metrics.json").read_text())
    row = {
        "settings": settings,
        "video_s": seconds,
        "wall_s": round(wall, 1),
        "realtime_x": round(seconds / wall, 1),
        "profile": cli_profile(run_dir, round(wall, 2)),
        "decoders": metrics.get("decoders"),
        "stderr_lines": proc.stderr.strip().splitlines()[-5:],
        **sampler.summary(),
    }
    emit(name, row)
    return row


def run_episode(name: str, video: Path, seconds: float, out: Path, device: str, truth=None, decode: str = "cpu") -> dict:
    from pipelines.layout import RunLayout
    from pipelines.runner import run_pipeline
    from pipelines.storage import LocalStorage

    storage = LocalStorage(out / f"data_{name}")
    with GpuSampler() as sampler:
        t = time.time()
        result = run_pipeline(
            storage=storage, ep_id="gpu-s01e01", video=str(video), overrides={"models.device": device, "detect_track.decode_device": decode}, force=True
        )
        wall = time.time() - t
    metrics = json.loads((storage.root / "manifests" / "gpu-s01e01" / "runs" / result.run_id / "track_metrics.json").read_text())
    row = {
        "device": device,
        "decode": decode,
        "decoders": metrics.get("decoders"),
        "work_s": metrics.get("work_s"),
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
    parser.add_argument("--budget-s", type=float, default=420.0, help="wall seconds this check may take in all")
    parser.add_argument("--out", type=Path, default=Path("/tmp/gpu_check"))
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the rendered episode")
    parser.add_argument("--hour-s", type=float, default=3600.0, help="length of the long episode (an hour; less for a dry run)")
    parser.add_argument("--ratio-s", type=float, default=600.0, help="length of the GPU vs CPU-only episode")
    parser.add_argument("--processes", type=int, default=16, help="concurrent decoders in the decoding check")
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
    try:
        nvdec = check_nvdec(video, args.processes)
    except Exception as exc:  # noqa: BLE001 - report it and go on to the pipeline runs
        emit("nvdec_error", repr(exc))
        nvdec = False

    # the headline first, as a user runs it: the CLI on an hour of 1080p, starting its own Ray
    summary: dict = {"nvdec": nvdec}
    hour = loop_video(video, args.out / "gpu_60min_1080p.mp4", round(args.hour_s / args.seconds))
    nvdec_on = {"detect_track.decode_device": "auto"}
    runs: tuple[tuple[str, dict[str, str]], ...] = (
        ("cli_60min_nvdec", nvdec_on),
        ("cli_60min", {}),  # the default: decoding on the CPU
        ("cli_60min_nvdec_half", {**nvdec_on, "detect_track.nvdec_share": "0.5"}),
    )
    for name, settings in runs:
        if name != "cli_60min" and not nvdec:
            continue
        if deadline - time.time() < (150 if name != "cli_60min_nvdec_half" else 260):
            emit(name, {"skipped": f"{deadline - time.time():.0f}s of the budget left"})
            continue
        row = cli_run(name, hour, args.hour_s, args.out, settings)
        summary[f"{name}_wall_s"] = row.get("wall_s")
        summary[f"{name}_gpu_util_mean_pct"] = row.get("gpu_util_mean_pct")
    hour.unlink()

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
    for decode in ("auto", "cpu") if nvdec else ("cpu",):
        row = run_episode(f"gpu_{args.seconds:g}s_decode_{decode}", video, args.seconds, args.out, DEVICE, truth, decode)
        summary[f"accuracy_decode_{decode}"] = row.get("accuracy")
    ten = loop_video(video, args.out / "gpu_10min_1080p.mp4", round(args.ratio_s / args.seconds))
    for name, device in (("gpu_10min", DEVICE), ("cpu_only_10min", "cpu")):
        if deadline - time.time() < 60:
            emit(name, {"skipped": f"{deadline - time.time():.0f}s of the budget left"})
            continue
        summary[f"{name}_wall_s"] = run_episode(name, ten, args.ratio_s, args.out, device)["wall_s"]
    emit("summary", summary)


if __name__ == "__main__":
    main()
