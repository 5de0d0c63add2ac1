"""``screenalytics``: run the pipeline on an episode from the command line (``serve`` is added by
:mod:`serve_app.cli`, the console script).

Results go to stdout (``--json`` for machines), narration and progress to stderr: a progress bar per
stage on a terminal, one line per stage step otherwise (a log file, a pipe, ``ray job submit``).
``-q`` keeps only the result and errors; ``-v`` adds the pipeline's log lines (``-vv`` debug).

Exit codes: 0 success, 2 bad input (video, ids, settings, missing stage inputs or model files),
130 interrupted, 1 anything else (for ``batch``: some episode failed).
"""

from __future__ import annotations

import argparse
import json
import logging
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
from .shows.season_command import NoSeason
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
    NoSeason,
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


class LineProgress:
    """Progress for a log or a pipe (stderr is no terminal): a line when a stage step starts, at each
    quarter of it, and when it ends, so a log shows movement without a line per frame."""

    def __init__(self) -> None:
        self.printed: dict[tuple[StageName, str], int] = {}

    def __call__(self, stage: StageName, done: float, total: float, **info: Any) -> None:
        step = str(info.get("step") or stage.value)
        pct = 100 if not total else max(0, min(100, int(100 * done / total)))
        quarter = pct // 25
        if self.printed.get((stage, step), -1) >= quarter:
            return
        self.printed[(stage, step)] = quarter
        print(f"{stage.value}: {step} {done:.0f}/{total:.0f} ({pct}%)", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


def make_progress(args: argparse.Namespace) -> TqdmProgress | LineProgress:
    """Bars on a terminal, lines elsewhere, nothing with ``--quiet`` or ``--no-progress``."""
    if getattr(args, "quiet", False) or getattr(args, "no_progress", False):
        return TqdmProgress(enabled=False)
    if sys.stderr.isatty() or os.environ.get("SCREENALYTICS_PROGRESS") == "1":
        return TqdmProgress()
    return LineProgress()


def _set_verbosity(args: argparse.Namespace) -> None:
    """-v: the pipeline's INFO log lines on stderr; -vv: DEBUG; -q: errors only."""
    verbose = getattr(args, "verbose", 0)
    level = logging.ERROR if getattr(args, "quiet", False) else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for name in ("pipelines", "actors", "serve_app"):
        logging.getLogger(name).setLevel(level)


def narrate(args: argparse.Namespace, line: str) -> None:
    """A line for the person watching (stderr), unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(line, file=sys.stderr, flush=True)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("screenalytics")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _find_known(exc: BaseException) -> BaseException | None:
    return next((e for e in exception_chain(exc) if isinstance(e, BAD_INPUT)), None)


DATA_DIR_HELP = "local directory or s3://bucket/prefix (default: $SCREENALYTICS_DATA_DIR, else data)"


def add_output(p: argparse.ArgumentParser) -> None:
    """-v / -q, on every command."""
    p.add_argument("-v", "--verbose", action="count", default=0, help="log what the pipeline does on stderr (-vv: debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the result and errors (no progress, no narration)")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ep-id", required=True, help="episode id, {show}-s{SS}e{EE}")
    p.add_argument("--run-id", default=None, help="run id (default: main); same id + same settings reuses finished stages")
    p.add_argument("--profile", default=None, help="balanced (default), low_power or high_accuracy")
    p.add_argument("--data-dir", default=os.environ.get("SCREENALYTICS_DATA_DIR", "data"), help=DATA_DIR_HELP)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a setting, e.g. detect_track.detect_fps=8")
    p.add_argument("--force", action="store_true", help="recompute even when finished outputs match")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines (narration and result still print)")
    p.add_argument("--json", action="store_true", help="print the result (stages, screen time, the tidy table) as JSON on stdout")
    add_address(p)


def add_address(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--address",
        default=None,
        help="Ray cluster to join; local: a private one (default: RAY_ADDRESS, e.g. under `ray job submit`, else the cluster `ray start` runs on this machine, else a private local Ray)",
    )
    p.add_argument("--no-dashboard", action="store_true", help="start a private Ray without its dashboard (about 5 s faster to start on 2 cores)")


def ray_options(args: argparse.Namespace) -> dict[str, bool]:
    """How the command starts Ray when it owns it: with the dashboard unless --no-dashboard, said on stderr unless -q."""
    return {"dashboard": not getattr(args, "no_dashboard", False), "announce": not getattr(args, "quiet", False)}


Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]
"""(add the command's arguments, run it, its help line): how a package above this one adds a command."""


def build_parser(extra: Mapping[str, Command] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="screenalytics", description="Who is on screen, and for how long.")
    parser.add_argument("--version", action="version", version=f"screenalytics {_version()}", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the pipeline (all stages, or --stage ones) on an episode")
    run.add_argument("video", nargs="?", help="video path or s3:// URI (needed for detect_track)")
    run.add_argument("--stage", action="append", choices=[s.value for s in STAGE_ORDER], help="run only these stages (repeatable)")
    _add_common(run)
    demo = sub.add_parser("demo", help="build the bundled sample episode from real face media, name its cast from photos, and run it")
    demo.add_argument("--data-dir", default="data", help="where the sample and its artifacts go (default: data)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    add_address(demo)
    from . import batch
    from .shows import commands as facebank_commands
    from .shows import season_command

    facebank_commands.add_arguments(sub.add_parser("facebank", help="a show's facebank: add photos, list, calibrate, re-embed"), add_output)
    season_command.add_arguments(sub.add_parser("season", help="a show's season as one tidy table (CSV, JSON or Parquet)"))
    batch.add_arguments(sub.add_parser("batch", help="run a catalog of episodes on the Ray cluster (summary and season tables at the end)"))
    for name, (add_arguments, _, help_line) in (extra or {}).items():
        add_arguments(sub.add_parser(name, help=help_line))
    for command in (run, demo, *(sub.choices[name] for name in ("season", "batch", *(extra or {})))):
        add_output(command)
    return parser


def main(argv: Sequence[str] | None = None, extra: Mapping[str, Command] | None = None) -> int:
    """Run a command; ``extra`` adds commands from packages above this one (``screenalytics serve``)."""
    args = build_parser(extra).parse_args(argv)
    _set_verbosity(args)
    progress = make_progress(args)
    try:
        if extra and args.command in extra:
            return extra[args.command][1](args)
        if args.command == "facebank":
            from .shows.commands import run as run_facebank

            return run_facebank(args)
        if args.command == "season":
            from .shows.season_command import run as run_season

            return run_season(args)
        if args.command == "batch":
            from .batch import run_command

            return run_command(args)
        if args.command == "demo":
            from .sample.demo import run_demo

            return run_demo(Path(args.data_dir), progress, args.address, ray_options(args))
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


def _run(args: argparse.Namespace, progress: TqdmProgress | LineProgress) -> int:
    from .exports import episode_rows, json_rows
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
        ray_options=ray_options(args),
    )
    progress.close()
    for note in result.notes:
        narrate(args, f"note: {note}")
    artifacts = f"{result.storage_uri}/{result.manifests}"
    if args.json:
        report = result.report
        done = [{"stage": o.stage.value, "action": o.action, "seconds": round(o.seconds, 3), "counts": o.counts} for o in result.outcomes]
        out = {
            "ep_id": result.ep_id,
            "run_id": result.run_id,
            "artifacts": artifacts,
            "stages": done,
            "notes": result.notes,
            "people": json_rows(episode_rows(report)) if report else None,
            "screentime": report.model_dump(mode="json") if report else None,
        }
        print(json.dumps(out, indent=1))
        return 0
    for o in result.outcomes:
        narrate(args, f"{o.stage.value:<12} {o.action:<8} {o.seconds:6.1f}s  {json.dumps(o.counts)}")
    if result.report is not None:
        print(format_table(result.report))
    narrate(args, f"artifacts: {artifacts} (the analyst's table: analytics/export.csv and .parquet)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
