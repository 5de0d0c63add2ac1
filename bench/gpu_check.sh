#!/usr/bin/env bash
# GPU check for a lent GPU machine (see bench/gpu_check.py for what it measures), in about 7 minutes.
#
# The lent machine reaches no registry and takes at most 64 MiB per call, so what it lacks travels
# in parts: `bash bench/gpu_payload.sh` (here, with a registry) builds .gpu/part-00, -01, ... (Ray and
# the other wheels, onnxruntime-gpu with only Hopper's GPU code, the sample-media archives).
# Each call but the last carries one part and parks it:   mkdir -p /tmp/gpu_parts && cp .gpu/part-* /tmp/gpu_parts/
# The last call carries the last part and runs:            bash bench/gpu_check.sh [BUDGET_SECONDS]
set -euo pipefail
BUDGET_S=${1:-420}
OUT_DIR=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT_DIR" /tmp/gpu_parts
cp .gpu/part-* /tmp/gpu_parts/ 2>/dev/null || true
if [ ! -d /tmp/gpu_payload ]; then
  t0=$(date +%s)
  cat /tmp/gpu_parts/part-* | python3 -c "import sys, tarfile; tarfile.open(fileobj=sys.stdin.buffer, mode='r|xz').extractall('/tmp/gpu_payload', filter='tar')"
  echo "payload installed in $(( $(date +%s) - t0 ))s"
fi
export PYTHONPATH=/tmp/gpu_payload/site:$PWD RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1
export SCREENALYTICS_MEDIA_DIR=/tmp/gpu_payload/media SCREENALYTICS_CACHE_DIR=/tmp/screenalytics_cache
# CUDA 13 and cuDNN from the image's pip packages, for onnxruntime's CUDA provider in every Ray worker
NV_LIBS=$(python3 -c "import glob, site; print(':'.join(sorted({p.rsplit('/', 1)[0] for d in site.getsitepackages() for p in glob.glob(d + '/nvidia/**/lib*.so*', recursive=True)})))")
export LD_LIBRARY_PATH=${NV_LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
python3 -m bench.gpu_check --budget-s "$BUDGET_S" --out /tmp/gpu_check "${@:2}" 2>&1 | tee "$OUT_DIR/gpu_check.log"
cp /tmp/gpu_check/gpu_check.json "$OUT_DIR/" 2>/dev/null || true
