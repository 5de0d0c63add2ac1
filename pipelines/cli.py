"""``screenalytics``: run the pipeline on an episode from the command line (``serve`` is added by
:mod:`serve_app.cli`, the console script).

Exit codes: 0 success, 2 bad input (video, ids, settings, missing stage inputs or model files),
130 interrupted, 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import ConfigError, parse_overrides
from .ids import InvalidIdError
from .ray_env import RayUnreachable
from .review.table import format_table
from .schemas import STAGE_ORDER, StageName
from .shows.errors import CastIdTaken, NothingToCalibrate, PhotoError
from .stages.base import Canceled, MissingInputs, exception_chain
from .storage import StorageError
from .video import VideoError

BAD_INPUT = (
    RayUnreachable,
    VideoError,
    InvalidIdError,
    ConfigError,
    MissingInputs,
    StorageError,
    FileNotFoundError,
    PhotoError,
    CastIdTaken,
    NothingToCalibrate,
)


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


def _find_known(exc: BaseException) -> BaseException | None:
    return next((e for e in exception_chain(exc) if isinstance(e, BAD_INPUT)), None)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ep-id", required=True, help="episode id, {show}-s{SS}e{EE}")
    p.add_argument("--run-id", default=None, help="run id (default: main); same id + same settings reuses finished stages")
    p.add_argument("--profile", default=None, help="balanced (default), low_power or high_accuracy")
    p.add_argument("--data-dir", default=os.environ.get("SCREENALYTICS_DATA_DIR", "data"), help="local directory or s3://bucket/prefix")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a setting, e.g. detect_track.detect_fps=8")
    p.add_argument("--force", action="store_true", help="recompute even when finished outputs match")
    p.add_argument("--no-progress", action="store_true")
    add_address(p)


def add_address(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join; local: a private one (default: RAY_ADDRESS, e.g. under `ray job submit`, else the cluster `ray start` runs on this machine, else a private local Ray)",
    )


Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]
"""(add the command's arguments, run it, its help line): how a package above this one adds a command."""


def build_parser(extra: Mapping[str, Command] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="screenalytics", description="Who is on screen, and for how long.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the pipeline (all stages, or --stage ones) on an episode")
    run.add_argument("video", nargs="?", help="video path or s3:// URI (needed for detect_track)")
    run.add_argument("--stage", action="append", choices=[s.value for s in STAGE_ORDER], help="run only these stages (repeatable)")
    _add_common(run)
    demo = sub.add_parser("demo", help="build the bundled sample episode from real face media and run it")
    demo.add_argument("--data-dir", default="data")
    demo.add_argument("--no-progress", action="store_true")
    add_address(demo)
    from .shows import commands as facebank_commands

    facebank_commands.add_arguments(sub.add_parser("facebank", help="a show's facebank: add photos, list, calibrate, re-embed"))
    for name, (add_arguments, _, help_line) in (extra or {}).items():
        add_arguments(sub.add_parser(name, help=help_line))
    return parser


def main(argv: Sequence[str] | None = None, extra: Mapping[str, Command] | None = None) -> int:
    """Run a command; ``extra`` adds commands from packages above this one (``screenalytics serve``)."""
    args = build_parser(extra).parse_args(argv)
    quiet = getattr(args, "no_progress", False)
    progress = TqdmProgress(enabled=(not quiet and sys.stderr.isatty()) or os.environ.get("SCREENALYTICS_PROGRESS") == "1")
    try:
        if extra and args.command in extra:
            return extra[args.command][1](args)
        if args.command == "facebank":
            from .shows.commands import run as run_facebank

            return run_facebank(args)
        if args.command == "demo":
            from .sample.demo import run_demo

            return run_demo(Path(args.data_dir), progress, args.address)
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
        ray_address=args.address,
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
