"""The detector actors' source of sampled frames: each decodes the segments it is given (see
:func:`pipelines.segment_decode.decode_segment`) and streams batches of full-resolution frames."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from actors.faces import FrameBatch, batches_with_total

from .schemas import Segment
from .segment_decode import decode_segment
from .storage import fetch_to_cache
from .video import DecodeOptions, SegmentDecodeResult


def decode_segments(
    batch: dict[str, np.ndarray],
    *,
    path: str,
    fps: float,
    options: DecodeOptions,
    last_segment: int,
    frames_per_batch: int,
) -> Iterator[FrameBatch]:
    """The detector actor's frame source: segment descriptors (a Ray Data batch) in, batches of at most
    ``frames_per_batch`` sampled frames out (each with the decoding work it cost).

    ``path`` may be an ``s3://`` URI: each node then downloads the video once into its own cache, so
    detector actors on any node of a cluster can read it.

    The last batch of a segment carries ``sampled_total`` (see :class:`~actors.faces.FrameBatch`).
    """
    local = str(fetch_to_cache(path))
    for i in range(len(batch["index"])):
        segment = Segment(index=int(batch["index"][i]), start_frame=int(batch["start_frame"][i]), end_frame=int(batch["end_frame"][i]))
        result = SegmentDecodeResult()
        frames = decode_segment(local, segment, fps, options, segment.index == last_segment, result)
        for held, total in batches_with_total(frames, frames_per_batch):  # a segment starts on a sampled frame: never empty
            yield FrameBatch(segment.index, held, total)
