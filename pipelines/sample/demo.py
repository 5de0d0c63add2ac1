"""``screenalytics demo``: build the bundled sample episode from real face media, give its show a facebank
from one reference photo per cast member (the package photos a user would hand to ``facebank add``),
run it, and print the cast as the pipeline named it, then the comparison with the sample's truth.

The reference photos come from the same packages as the sample's faces (Biden's is the very photo the
sample shows; Obama's is one of three), so the demo shows the workflow, not accuracy: ``bench.naming``
measures naming on held-out photos.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..layout import RunLayout
from ..runner import run_pipeline
from ..schemas import ScreentimeReport
from ..storage import LocalStorage
from .episode import GroundTruth

SAMPLE_EP = "sample-s01e01"
SAMPLE_SHOW = "sample"
DEMO_CAST = {"obama": "Barack Obama", "biden": "Joe Biden"}
"""The sample's cast, named from one reference photo each; its two other people stay unnamed."""


def build_sample(data_dir: Path) -> tuple[Path, GroundTruth]:
    from .episode import render_episode, sample_episode_spec
    from .media import load_sprites

    video = data_dir / "raw" / SAMPLE_EP / "video.mp4"
    truth_path = video.with_name("truth.json")
    if video.is_file() and truth_path.is_file():
        return video, GroundTruth.load(truth_path)
    print(f"building the sample episode from real face media in registry packages -> {video}")
    truth = render_episode(sample_episode_spec(), load_sprites(), video)
    truth.save(truth_path)
    return video, truth


def build_facebank(storage: LocalStorage, data_dir: Path) -> list[str]:
    """One reference photo per cast member into the sample show's facebank (once); returns the photos'
    file names."""
    from ..config import resolve_config
    from ..shows import facebank
    from ..shows.bank import PhotoInput, add_photos
    from .media import reference_photos

    photos = reference_photos(data_dir / "raw" / "reference_photos")
    present = {e.cast_id for e in facebank.list_entries(storage, SAMPLE_SHOW)}
    models = resolve_config(None, None).config.models
    for cast_id, name in DEMO_CAST.items():
        if cast_id not in present:
            photo = photos[cast_id]
            add_photos(storage, SAMPLE_SHOW, cast_id, [PhotoInput(photo.name, photo.read_bytes())], models, name=name)
    return [photos[c].name for c in DEMO_CAST]


def named_cast_lines(report: ScreentimeReport) -> list[str]:
    """Each cast member with how it was named, then the identities nobody named."""
    lines = [f"  {'cast member':<16} {'seconds':>8}  named by"]
    for m in report.metrics:
        idents = [i for i in report.identities if i.cast_id == m.cast_id]
        how = ", ".join(f"{i.identity_id} {i.name_source or '-'}" + (f" (similarity {i.confidence:.2f})" if i.confidence is not None else "") for i in idents)
        lines.append(f"  {m.name:<16} {m.visual_s:>8.2f}  {how}")
    for ident in report.identities:
        if ident.cast_id is None and ident.kind not in ("junk", "not_face"):
            best = (
                f"best match {ident.suggestions[0].cast_id} {ident.suggestions[0].score:.2f}, below the naming threshold" if ident.suggestions else "no match"
            )
            lines.append(f"  {ident.identity_id:<16} {ident.visual_s:>8.2f}  unnamed ({ident.kind}; {best})")
    return lines


def run_demo(data_dir: Path, progress, ray_address: str | None = None, ray_options: dict | None = None) -> int:
    from .evaluate import evaluate_run

    video, truth = build_sample(data_dir)
    storage = LocalStorage(data_dir)
    photos = build_facebank(storage, data_dir)
    print(f"facebank of show '{SAMPLE_SHOW}': one reference photo each ({', '.join(photos)})")
    t0 = time.time()
    result = run_pipeline(storage=storage, ep_id=SAMPLE_EP, video=str(video), progress=progress, ray_address=ray_address, ray_options=ray_options)
    progress.close()
    for o in result.outcomes:
        print(f"{o.stage.value:<12} {o.action:<8} {o.seconds:6.1f}s")
    report = result.report
    if report is None:
        return 1
    print(f"\nwho is on screen ({time.time() - t0:.1f}s for a {truth.frame_count / truth.fps:.0f}s 720p episode), named from the facebank:")
    print("\n".join(named_cast_lines(report)))
    ev = evaluate_run(storage, RunLayout(SAMPLE_EP, result.run_id), truth)
    measured = {m.cast_id: m.visual_s for m in report.metrics if m.cast_id}
    print("\nagainst the sample's ground truth:")
    for person in sorted(ev.true_s):
        if person in DEMO_CAST:
            print(f"  {DEMO_CAST[person]:<16} true {ev.true_s[person]:6.2f}s  measured {measured.get(person, 0.0):6.2f}s  (named automatically)")
        else:
            idents = sorted(i for i, p in ev.identity_labels.items() if p == person)
            print(
                f"  {person:<16} true {ev.true_s[person]:6.2f}s  measured {ev.measured_s.get(person, 0.0):6.2f}s  (unnamed: {', '.join(idents) or 'not found'})"
            )
    print(f"\nartifacts: {storage.uri}/{result.manifests} (the analyst's table: analytics/export.csv and export.parquet)")
    print(f"review and name the others: screenalytics serve --data-dir {data_dir}, then http://127.0.0.1:8000/review/episodes/{SAMPLE_EP}")
    return 0
