"""Blank the GPU code for other architectures inside a CUDA shared library, to ship it smaller.

    python -m bench.fatbin_prune LIB.so --keep 90 [--out PRUNED.so]

A CUDA library's ``.nv_fatbin`` section holds one cubin per GPU architecture (sm_75 ... sm_120 for
onnxruntime-gpu's CUDA provider, 218 MB of its 284 MB). A lent GPU machine takes at most 64 MiB per
call, so ``bench/gpu_payload.sh`` ships only the cubins for the GPU it will run on. The payloads of
the other architectures are overwritten with zeros in place: every offset, header and size stays
as it was, the CUDA runtime still parses the container and picks the cubin matching the device,
and the zeros compress to nothing. The pruned library must only be run on a GPU of a kept
architecture (the runtime would otherwise pick a blanked cubin and fail to load it). This is a
shipping tool for the GPU check, never used by the product.
"""

from __future__ import annotations

import argparse
import struct
import subprocess
from collections import Counter
from pathlib import Path

FATBIN_MAGIC = 0xBA55ED50
CONTAINER = struct.Struct("<IHHQ")  # magic, version, header size, payload size
ENTRY = struct.Struct("<HHIIIIIIIIIQ")  # kind, version, header size, padded payload size, ..., sm arch at field 9


def _section(path: Path, name: str) -> tuple[int, int]:
    out = subprocess.check_output(["readelf", "-S", "-W", str(path)], text=True)
    for line in out.splitlines():
        parts = line.replace("[ ", "[").split()
        if name in parts:
            i = parts.index(name)
            return int(parts[i + 3], 16), int(parts[i + 4], 16)
    raise SystemExit(f"{path}: no {name} section")


def prune(data: bytearray, offset: int, size: int, keep: set[int]) -> Counter:
    """Zero every cubin whose architecture is not in ``keep``; return bytes kept/blanked per arch."""
    tally: Counter = Counter()
    pos, end = offset, offset + size
    while pos + CONTAINER.size <= end:
        magic, _version, header_size, payload_size = CONTAINER.unpack_from(data, pos)
        if magic != FATBIN_MAGIC:
            pos += 8  # containers are 8-byte aligned, padding between them
            continue
        entry, container_end = pos + header_size, pos + header_size + payload_size
        while entry < container_end:
            fields = ENTRY.unpack_from(data, entry)
            entry_header, padded, arch = fields[2], fields[3], fields[8]
            body = entry + entry_header
            if arch in keep:
                tally[f"sm_{arch} kept"] += padded
            else:
                data[body : body + padded] = bytes(padded)
                tally[f"sm_{arch} blanked"] += padded
            entry = body + padded
        pos = container_end
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", type=Path)
    parser.add_argument("--keep", type=int, nargs="+", required=True, help="architectures to keep, e.g. 90 for H100/H200")
    parser.add_argument("--out", type=Path, help="default: rewrite the library in place")
    args = parser.parse_args()
    data = bytearray(args.library.read_bytes())
    offset, size = _section(args.library, ".nv_fatbin")
    tally = prune(data, offset, size, set(args.keep))
    if not any(k.endswith("kept") for k in tally):
        raise SystemExit(f"no cubin for sm_{args.keep} in {args.library}; nothing written")
    (args.out or args.library).write_bytes(bytes(data))
    for key, value in sorted(tally.items()):
        print(f"{key}: {value / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
