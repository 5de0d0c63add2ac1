"""``screenalytics``: run the pipeline on an episode from the command line.

Exit codes: 0 success, 2 bad input (video, ids, settings, missing stage inputs or model files),
130 interrupted, 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from .config import ConfigError
from .ids import InvalidIdError
from .schemas import STAGE_ORDER, ScreentimeReport, StageName
from .stages.base import Canceled, MissingInputs
from .storage import StorageError
from .video import VideoError

BAD_INPUT = (VideoError, InvalidIdError, ConfigError, MissingInputs, StorageError, FileNotFoundError)


class TqdmProgress:
    """One progress bar per stage."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bars: dict[StageName, Any] = {}

    def __call__(self, stage: StageName, done: float, total: float, **info: Any) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            for other in self.bars.values():
                other.close()
            unit = "frame" if stage is StageName.detect_track else ("face" if stage is StageName.faces_embed else "step")
            bar = self.bars[stage] = tqdm(total=total, desc=f"{stage.value:<12}", unit=unit, leave=True, dynamic_ncols=True)
        if bar.total != total:
            bar.total = total
        bar.n = done
        postfix = {k: (f"{v:.1f}" if isinstance(v, float) else v) for k, v in info.items() if k in ("step", "fps_infer")}
        bar.set_postfix(postfix, refresh=False)
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def format_table(report: ScreentimeReport) -> str:
    lines = []
    if report.metrics:
        lines.append(f"{'cast member':<24} {'seconds':>9} {'tracks':>7}")
        for m in report.metrics:
            lines.append(f"{m.name:<24} {m.visual_s:>9.2f} {m.tracks_count:>7}")
        lines.append("")
    lines.append(f"{'identity':<10} {'cast':<14} {'seconds':>9} {'tracks':>7}  first seen")
    for ident in report.identities:
        first = ident.intervals[0][0] if ident.intervals else 0.0
        lines.append(f"{ident.identity_id:<10} {(ident.cast_id or '-'):<14} {ident.visual_s:>9.2f} {len(ident.track_ids):>7}  {first:8.2f}s")
    lines.append(f"(video {report.math.video_duration_s:.1f}s, preset {report.preset}, mode {report.mode})")
    return "\n".join(lines)


def _find_known(exc: BaseException) -> BaseException | None:
    seen = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, BAD_INPUT):
            return e
        for nxt in (getattr(e, "cause", None), e.__cause__, e.__context__):
            if isinstance(nxt, BaseException):
                stack.append(nxt)
    return None


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ep-id", required=True, help="episode id, {show}-s{SS}e{EE}")
    p.add_argument("--run-id", default=None, help="run id (default: main); same id + same settings reuses finished stages")
    p.add_argument("--profile", default=None, help="balanced (default), low_power or high_accuracy")
    p.add_argument("--data-dir", default=os.environ.get("SCREENALYTICS_DATA_DIR", "data"), help="local directory or s3://bucket/prefix")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a setting, e.g. detect_track.detect_fps=8")
    p.add_argument("--force", action="store_true", help="recompute even when finished outputs match")
    p.add_argument("--no-progress", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="screenalytics", description="Who is on screen, and for how long.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the pipeline (all stages, or --stage ones) on an episode")
    run.add_argument("video", nargs="?", help="video path or s3:// URI (needed for detect_track)")
    run.add_argument("--stage", action="append", choices=[s.value for s in STAGE_ORDER], help="run only these stages (repeatable)")
    _add_common(run)
    srv = sub.add_parser("serve", help="start the HTTP API (Ray Serve) on a local Ray, or on RAY_ADDRESS's cluster")
    srv.add_argument("--data-dir", default=os.environ.get("SCREENALYTICS_DATA_DIR", "data"))
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    demo = sub.add_parser("demo", help="build the bundled sample episode from real face media and run it")
    demo.add_argument("--data-dir", default="data")
    demo.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet = getattr(args, "no_progress", False)
    progress = TqdmProgress(enabled=(not quiet and sys.stderr.isatty()) or os.environ.get("SCREENALYTICS_PROGRESS") == "1")
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "demo":
            from .sample.demo import run_demo

            return run_demo(Path(args.data_dir), progress)
        return _run(args, progress)
    except KeyboardInterrupt:
        print("\ninterrupted; finished stages and segments are kept, rerun to resume", file=sys.stderr)
        return 130
    except Canceled:
        print("canceled", file=sys.stderr)
        return 130
    except BaseException as exc:  # noqa: BLE001 - translate to exit codes
        known = _find_known(exc)
        if known is not None:
            print(f"error: {known}", file=sys.stderr)
            return 2
        from actors.models.base import ModelFilesMissing

        if isinstance(exc, ModelFilesMissing):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
    finally:
        progress.close()


def _serve(args: argparse.Namespace) -> int:
    import time

    from ray import serve

    from serve_app.app import deployment

    from .ray_env import ensure_ray

    ensure_ray()
    serve.start(http_options={"host": args.host, "port": args.port})
    serve.run(deployment(args.data_dir), name="screenalytics", route_prefix="/")
    print(f"Screenalytics API on http://{args.host}:{args.port} (docs: /docs); data in {args.data_dir}. Ctrl-C stops it.")
    try:
        while True:
            time.sleep(3600)
    finally:
        serve.shutdown()


def _run(args: argparse.Namespace, progress: TqdmProgress) -> int:
    from .runner import run_pipeline
    from .storage import open_storage

    storage = open_storage(args.data_dir)
    stages = [StageName(s) for s in args.stage] if args.stage else None
    result = run_pipeline(
        storage=storage,
        ep_id=args.ep_id,
        run_id=args.run_id,
        video=args.video,
        profile=args.profile,
        overrides=parse_overrides(args.overrides),
        stages=stages,
        force=args.force,
        progress=progress,
    )
    progress.close()
    for o in result.outcomes:
        print(f"{o.stage.value:<12} {o.action:<8} {o.seconds:6.1f}s  {json.dumps(o.counts)}")
    if result.report is not None:
        print()
        print(format_table(result.report))
    print(f"\nartifacts: {result.storage_uri}/{result.manifests}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
