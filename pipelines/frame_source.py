"""The Ray Data source of sampled frames: one task per time segment decodes it (see
:func:`pipelines.segment_decode.decode_segment`) and streams batches of full-resolution frames."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np

from .schemas import Segment
from .segment_decode import decode_segment
from .storage import fetch_to_cache
from .video import DecodeOptions, SampledFrame, SegmentDecodeResult

DECODE_WORK = ("decode", "decode_nvdec", "cuts", "convert")
"""Kinds of decoding work each batch reports per frame, as ``work_{kind}_s`` columns."""


def _batch(segment: Segment, frames: list[SampledFrame], sampled_total: int) -> dict[str, np.ndarray]:
    return {
        "segment": np.full(len(frames), segment.index, np.int32),
        "frame_idx": np.array([f.frame_idx for f in frames], np.int64),
        "ts": np.array([f.ts for f in frames], np.float64),
        "cuts": np.array([json.dumps(f.cuts) for f in frames], dtype=object),
        "segment_sampled_total": np.full(len(frames), sampled_total, np.int64),
        "image": np.stack([f.image for f in frames]),
        **{f"work_{kind}_s": np.array([f.work_s.get(kind, 0.0) for f in frames], np.float64) for kind in DECODE_WORK},
    }


def decode_segments(
    batch: dict[str, np.ndarray],
    *,
    path: str,
    fps: float,
    options: DecodeOptions,
    last_segment: int,
    frames_per_batch: int,
) -> Iterator[dict[str, np.ndarray]]:
    """Ray Data ``map_batches`` UDF: segment descriptors in, batches of sampled frames out (each with
    the decoding work it cost, as ``work_{kind}_s`` columns).

    ``path`` may be an ``s3://`` URI: each node then downloads the video once into its own cache, so
    detector actors on any node of a cluster can read it.

    The last batch of a segment carries ``segment_sampled_total`` (-1 elsewhere) so the consumer knows
    when every frame of the segment has come through, whatever order the detector pool returns them in.
    """
    local = str(fetch_to_cache(path))
    for i in range(len(batch["index"])):
        segment = Segment(index=int(batch["index"][i]), start_frame=int(batch["start_frame"][i]), end_frame=int(batch["end_frame"][i]))
        result = SegmentDecodeResult()
        frames = decode_segment(local, segment, fps, options, segment.index == last_segment, result)
        held: list[SampledFrame] = []
        count = 0
        for frame in frames:
            count += 1
            held.append(frame)
            if len(held) > frames_per_batch:  # keep one back: the final batch must carry the total
                yield _batch(segment, held[:frames_per_batch], -1)
                held = held[frames_per_batch:]
        if held:  # a segment starts on a sampled frame, so it always has one unless decoding raised
            yield _batch(segment, held, count)
