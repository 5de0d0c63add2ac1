"""``screenalytics facebank ...``: reference photos, the bank's contents, calibration and re-embedding."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

from ..config import resolve_config
from ..ids import validate_cast_id, validate_show_id
from ..storage import open_storage
from . import facebank, roster


def add_arguments(p: argparse.ArgumentParser, add_output: Callable[[argparse.ArgumentParser], None]) -> None:
    """The facebank subcommands' flags; ``add_output`` adds the CLI's -v/-q to each."""
    sub = p.add_subparsers(dest="facebank_command", required=True)
    add = sub.add_parser("add", help="add reference photos of a cast member (show and member created when missing)")
    add.add_argument("photos", nargs="+", help="photo files, one face each")
    add.add_argument("--show", required=True, help="the show's id, e.g. rhobh (episodes {show}-s01e01 ... share its facebank)")
    add.add_argument("--cast-id", required=True, help="the cast member's id, e.g. kyle (lower case, digits, _ and -)")
    add.add_argument("--name", default=None, help="the cast member's display name")
    add.add_argument("--pick", choices=["only", "largest"], default="only", help="only: a photo with several faces is an error; largest: take the largest")
    lst = sub.add_parser("list", help="faces per cast member and in the not-cast bank")
    lst.add_argument("--json", action="store_true", help="print the list as JSON on stdout")
    cal = sub.add_parser("calibrate", help="choose the show's auto-naming threshold from its confirmed episodes")
    cal.add_argument("--run-id", default="main", help="the run of each episode whose corrections count as confirmed")
    re = sub.add_parser("reembed", help="embed the bank's stored chips with the current embedder (after a model change)")
    for q in (lst, cal, re):
        q.add_argument("--show", required=True, help="the show's id")
    for q in (add, lst, cal, re):
        add_output(q)
        q.add_argument(
            "--data-dir",
            default=os.environ.get("SCREENALYTICS_DATA_DIR", "data"),
            help="local directory or s3://bucket/prefix (default: $SCREENALYTICS_DATA_DIR, else data)",
        )
        q.add_argument("--profile", default=None, help="settings profile whose models embed the photos: balanced (default), low_power or high_accuracy")


def run(args: argparse.Namespace) -> int:
    storage = open_storage(args.data_dir)
    show = validate_show_id(args.show)
    models = resolve_config(args.profile, None).config.models
    if args.facebank_command == "add":
        from .bank import PhotoError, PhotoInput, add_photos

        validate_cast_id(args.cast_id)
        photos = []
        for name in args.photos:
            path = Path(name)
            if not path.is_file():
                raise PhotoError(f"{name}: no such file")
            photos.append(PhotoInput(path.name, path.read_bytes()))
        added = add_photos(storage, show, args.cast_id, photos, models, pick=args.pick, name=args.name)
        total = sum(1 for e in facebank.list_entries(storage, show) if e.cast_id == args.cast_id)
        print(f"added {len(added)} face(s) to {args.cast_id} in {show} ({total} in all)")
        return 0
    if args.facebank_command == "list":
        entries = facebank.list_entries(storage, show)
        names = roster.cast_names(storage, show)
        if args.json:
            listing = [
                {
                    "kind": e.kind,
                    "cast_id": e.cast_id,
                    "name": names.get(e.cast_id or "") if e.cast_id else e.label,
                    "source": e.source,
                    "model": e.embedding_model,
                    "entry_id": e.entry_id,
                }
                for e in entries
            ]
            print(json.dumps({"show_id": show, "cast": [m.model_dump() for m in roster.list_cast(storage, show)], "faces": listing}, indent=1))
            return 0
        print(f"{'cast / not-cast':<28} {'photos':>7} {'confirmed':>10}  models")
        groups: dict[str, list] = {}
        for e in entries:
            key = f"{names.get(e.cast_id or '', e.cast_id)} ({e.cast_id})" if e.kind == "cast" else f"{e.kind}: {e.label}"
            groups.setdefault(key, []).append(e)
        for member in roster.list_cast(storage, show):
            groups.setdefault(f"{member.name} ({member.cast_id})", [])
        for label, group in sorted(groups.items()):
            models_used = sorted({e.embedding_model for e in group})
            print(f"{label[:28]:<28} {sum(e.source == 'photo' for e in group):>7} {sum(e.source == 'cluster' for e in group):>10}  {', '.join(models_used)}")
        return 0
    if args.facebank_command == "calibrate":
        from actors.models.registry import embedder_identity

        from .calibrate import calibrate

        model, _ = embedder_identity(models)
        naming = resolve_config(args.profile, None).config.naming
        result = calibrate(storage, show, model, naming.margin, naming.strong_lead, args.run_id)
        print(f"{'threshold':>9} {'precision':>9} {'coverage':>9} {'named':>6}")
        for row in result.table:
            if round(row["threshold"] * 100) % 10 == 0 or row["threshold"] == result.auto_threshold:
                mark = "  <- chosen" if row["threshold"] == result.auto_threshold else ""
                print(f"{row['threshold']:>9.2f} {row['precision']:>9.3f} {row['coverage']:>9.3f} {int(row['named']):>6}{mark}")
        print(
            f"\n{show}: auto threshold {result.auto_threshold:.2f} (precision {result.precision:.3f}, coverage {result.coverage:.3f}) from {len(result.episodes)} episode(s), stored"
        )
        named = max(int(row["named"]) for row in result.table)
        if named < 30:
            print(f"note: only {named} identities could be named in the replay; confirm more episodes for a steadier choice")
        return 0
    from .reembed import reembed

    counts = reembed(storage, show, models)
    print(f"re-embedded {counts['embedded']} face(s); {counts['no_chip']} had no stored chip and must be added again")
    return 0
