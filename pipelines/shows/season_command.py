"""``screenalytics season``: a show's season as the analyst's tidy table (:mod:`pipelines.exports`), over
every episode of the show in the data dir, as the review shows it now (corrections applied). Needs no Ray."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..exports import csv_bytes, json_rows, parquet_bytes
from ..ids import validate_run_id, validate_show_id
from ..storage import open_storage
from .season import season_export


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--show", required=True, help="the show's id: every episode {show}-sXXeYY in the data dir is included")
    p.add_argument("--run-id", default="main", help="which run of each episode (default: main)")
    p.add_argument("--format", choices=("csv", "json", "parquet"), default="csv", help="csv (default) or json on stdout; parquet to --out")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.add_argument("--out", default=None, help="write to this file instead of stdout (parquet: default season_{show}.parquet)")
    p.add_argument(
        "--data-dir",
        default=os.environ.get("SCREENALYTICS_DATA_DIR", "data"),
        help="local directory or s3://bucket/prefix (default: $SCREENALYTICS_DATA_DIR, else data)",
    )


class NoSeason(ValueError):
    """No episode of the show has the run asked for (exit 2)."""


def run(args: argparse.Namespace) -> int:
    show = validate_show_id(args.show)
    run_id = validate_run_id(args.run_id)
    rows, skipped = season_export(open_storage(args.data_dir), show, run_id)
    for s in skipped:
        print(f"skipped {s['ep_id']}: {s['reason']}", file=sys.stderr)
    episodes = sorted({r["ep_id"] for r in rows})
    if not episodes:
        raise NoSeason(f"no episode of show {show} has a clustered run {run_id} in {args.data_dir}")
    fmt = "json" if args.json else args.format
    if fmt == "json":
        data = (json.dumps({"show_id": show, "run_id": run_id, "episodes": episodes, "rows": json_rows(rows), "skipped": skipped}, indent=1) + "\n").encode()
    else:
        data = parquet_bytes(rows) if fmt == "parquet" else csv_bytes(rows)
    out = args.out or (f"season_{show}.parquet" if fmt == "parquet" else None)
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        Path(out).write_bytes(data)
    print(f"{show}: {len(rows)} rows from {len(episodes)} episode(s)" + (f" -> {out}" if out else ""), file=sys.stderr)
    return 0
