#!/usr/bin/env bash
# GPU check for a lent GPU machine, under 5 minutes: which execution providers really run, and
# throughput on the GPU against the CPU in the same run.
#
# The GPU machine reaches no registry. Before calling it, carry in (see the device tool's notes):
#   - wheels for this project's dependencies plus onnxruntime-gpu, in .whl/ (pip download ...);
#   - the two sample-media archives (insightface-2.1 wheel, face_recognition-1.3.0 sdist) in .media/.
# Usage on the GPU machine, from the repo root:  bash bench/gpu_check.sh [SECONDS]
set -euo pipefail
SECONDS_OF_VIDEO=${1:-120}
export RAY_USAGE_STATS_ENABLED=0 SCREENALYTICS_MEDIA_DIR=${SCREENALYTICS_MEDIA_DIR:-$PWD/.media}
OUT=${OUT:-/tmp/gpu_check}; mkdir -p "$OUT"

if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: no GPU visible"

python3 - "$SECONDS_OF_VIDEO" "$OUT" <<'PY'
import json, sys, time
from pathlib import Path
import onnxruntime as ort
print("onnxruntime", ort.__version__, "available providers:", ort.get_available_providers())
seconds, out = float(sys.argv[1]), Path(sys.argv[2])

from actors.models.yunet_sface import SFaceOrtEmbedder, YuNetOrtDetector
det, emb = YuNetOrtDetector(device="cuda"), SFaceOrtEmbedder(device="cuda")
print("detector session providers:", det._session.get_providers(), "-> device", det.device)
print("embedder session providers:", emb._session.get_providers(), "-> device", emb.device)

from pipelines.sample.episode import random_episode, render_episode
from pipelines.sample.media import load_sprites
sprites = load_sprites()
video = out / f"gpu_{int(seconds)}s_1080p.mp4"
t = time.time()
truth = render_episode(random_episode(7, seconds, sorted(sprites), 1920, 1080, sprite_counts={k: len(v) for k, v in sprites.items()}), sprites, video)
print(f"rendered {seconds:.0f}s of 1080p in {time.time() - t:.0f}s")

import faiss, ray
from pipelines.ray_env import ensure_ray
from pipelines.runner import run_pipeline
from pipelines.storage import LocalStorage
ensure_ray()
print("ray resources:", {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}, "faiss GPUs:", faiss.get_num_gpus())
results = {}
for device in ("cuda", "cpu"):
    storage = LocalStorage(out / f"data_{device}")
    t = time.time()
    run_pipeline(storage=storage, ep_id="gpu-s01e01", video=str(video), overrides={"models.device": device}, force=True)
    wall = time.time() - t
    results[device] = wall
    print(json.dumps({"device": device, "video_s": seconds, "wall_s": round(wall, 1), "realtime_x": round(seconds / wall, 1),
                      "projected_1h_1080p_min": round(3600 / (seconds / wall) / 60, 1)}))
from actors.model_actors import start_embedder_pool
from pipelines.config import ModelConfig
print("embedder actors report:", ray.get([a.info.remote() for a in start_embedder_pool(ModelConfig(device="cuda").model_dump())]))
print(json.dumps({"gpu_speedup_vs_cpu": round(results["cpu"] / results["cuda"], 2)}))
PY
