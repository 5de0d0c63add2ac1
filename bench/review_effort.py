"""Review effort: the keystrokes a scripted reviewer needs to get every identity of an episode right
(cast named, strangers marked guest, non-faces marked, fragments merged into their person), with the
review page as it was ("before": every suggestion a numbered key, merges by m / navigate / m / Enter,
one card at a time) and as it is ("after": keys only for likely suggestions, M merges a fragment into
its first candidate, A + g marks every remaining stranger guest in one step).

    python -m bench.review_effort [--out bench/results/review_effort_2core.json]

Episodes: the four accuracy episodes and the two distractor episodes (synthetic, real faces, exact
truth; a facebank of three cast members, obama, biden and hanks, one reference photo each, the six
people of insightface's group photo as strangers), and the real footage with hand labels (Megamind,
carphone; no facebank). Keystroke model, per card in the page's order (longest on screen first):

- named right automatically, an extra (listed apart), junk that is not a face: 0;
- a cast member: 1 when a numbered suggestion is right (the key), else 3 (a, pick, Enter);
- a fragment of a person another identity holds: before 3 + the cards between them (m, j/k..., m,
  Enter); after 1 (M) when its first merge candidate is the same person, else as before;
- not a face: 1 (n); a stranger: 1 (g), or after, all strangers with no likely match together: A + g.

Also reported: cards where pressing 1 names the wrong person ("a wrong name one key away"), and how
often a fragment's first merge candidate is its own person.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pipelines.config import resolve_config
from pipelines.layout import RunLayout
from pipelines.registry import IDENTITIES
from pipelines.review.assist import merge_candidates, suggestion_floor
from pipelines.review.live import view_screentime
from pipelines.review.view import load_view
from pipelines.runner import run_pipeline
from pipelines.storage import LocalStorage

from .episodes import ACCURACY_EPISODES, DISTRACTOR_EPISODES, bench_dir, distractor_episode, episode

CAST = ("obama", "biden", "hanks")
SHOW = "effort"


@dataclass
class Card:
    identity_id: str
    person: Optional[str]  # the truth: who it is (None: not a face)
    kind: str
    auto_cast: Optional[str]
    suggestions: list[tuple[str, float]]
    candidates: list[str]
    seconds: float
    rank: int = 0


@dataclass
class Effort:
    keys: int = 0
    wrong_one_key: int = 0
    fragments: int = 0
    fragments_first: int = 0
    notes: list[str] = field(default_factory=list)


def effort(cards: list[Card], cast: set[str], floor: Optional[float], after: bool) -> Effort:
    """Keystrokes to get every card right, with the page before or after (see the module)."""
    cards = sorted(cards, key=lambda c: (-c.seconds, c.identity_id))
    for k, c in enumerate(cards):
        c.rank = k
    person_of = {c.identity_id: c.person for c in cards}
    rank_of = {c.identity_id: c.rank for c in cards}
    main: dict[str, str] = {}
    for c in cards:
        if c.person and c.kind != "junk":
            main.setdefault(c.person, c.identity_id)
    out = Effort()
    strangers = 0
    for c in cards:
        if c.kind == "junk" and c.person is None:
            continue  # not counted, and rightly so
        if c.kind == "junk":
            out.keys += 1  # f: it is a face after all; then decided below
        if c.person and main.get(c.person) not in (None, c.identity_id):
            out.fragments += 1
            first = bool(c.candidates) and person_of.get(c.candidates[0]) == c.person
            out.fragments_first += first
            out.keys += 1 if after and first else 3 + abs(rank_of[main[c.person]] - c.rank)
            continue
        offered = [s for s in c.suggestions if not after or floor is None or s[1] >= floor][:9]
        if offered and offered[0][0] != c.person and not c.auto_cast:
            out.wrong_one_key += 1
        if c.person in cast:
            if c.auto_cast == c.person:
                continue
            out.keys += 1 if any(s[0] == c.person for s in offered) else 3
        elif c.person is None:
            out.keys += 1  # n
        elif c.kind == "extra" and not c.auto_cast:
            continue  # a stranger in the background: listed apart already
        elif after and not offered and not c.auto_cast:
            strangers += 1
        else:
            out.keys += 1  # g
    if strangers:
        out.keys += 2 if strangers > 1 else 1  # A + g, or g alone
    return out


def cards_of(storage: LocalStorage, layout: RunLayout, person_of_identity: dict[str, Optional[str]]) -> tuple[list[Card], Optional[float]]:
    view = load_view(storage, layout)
    seconds = {i.identity_id: i.visual_s for i in view_screentime(view, {}).identities}
    candidates = merge_candidates(storage, view)
    auto = view.resolved.assignments.auto_assignments
    cards = []
    for ident in view.resolved.identities.identities:
        naming = view.resolved.naming.get(ident.identity_id)
        cards.append(
            Card(
                identity_id=ident.identity_id,
                person=person_of_identity.get(ident.identity_id),
                kind=ident.kind,
                auto_cast=auto.get(ident.identity_id),
                suggestions=[(s.cast_id, s.score) for s in naming.suggestions] if naming else [],
                candidates=[c["identity_id"] for c in candidates.get(ident.identity_id, [])],
                seconds=seconds.get(ident.identity_id, 0.0),
            )
        )
    window = resolve_config(None, None).config.naming.suggestion_window
    return cards, suggestion_floor(view.resolved.auto_threshold, window)


def _facebank(storage: LocalStorage) -> None:
    from pipelines.sample.media import reference_photos
    from pipelines.shows import facebank
    from pipelines.shows.bank import PhotoInput, add_photos

    if facebank.list_entries(storage, SHOW):
        return
    photos = reference_photos(bench_dir() / "effort_photos")
    models = resolve_config(None, None).config.models
    for person in CAST:
        add_photos(storage, SHOW, person, [PhotoInput(photos[person].name, photos[person].read_bytes())], models, name=person.title())


def _synthetic(storage: LocalStorage) -> list[tuple[str, RunLayout, dict[str, Optional[str]]]]:
    from pipelines.sample.evaluate import evaluate_run

    out = []
    sources = [episode(seed, seconds) for seed, seconds in ACCURACY_EPISODES] + [distractor_episode(seed, seconds) for seed, seconds in DISTRACTOR_EPISODES]
    for k, (video, truth) in enumerate(sources, start=1):
        ep_id = f"{SHOW}-s01e{k:02d}"
        result = run_pipeline(storage=storage, ep_id=ep_id, video=str(video))
        layout = RunLayout(ep_id, result.run_id)
        out.append((f"{ep_id} ({video.name})", layout, evaluate_run(storage, layout, truth).identity_labels))
    return out


def _real(storage: LocalStorage) -> list[tuple[str, RunLayout, dict[str, Optional[str]]]]:
    from collections import Counter

    from pipelines.sample import media
    from tests.test_real_footage import LABELS, _label_of_tracks

    out = []
    for name, clip in LABELS["clips"].items():
        try:
            video = media.megamind_video() if name == "megamind" else media.carphone_video()
        except media.MediaUnavailable as exc:
            print(f"{name}: skipped ({exc})")
            continue
        result = run_pipeline(storage=storage, ep_id=clip["ep_id"], video=str(video))
        layout = RunLayout(clip["ep_id"], result.run_id)
        labels = _label_of_tracks(storage, layout, clip)
        person_of: dict[str, Optional[str]] = {}
        for ident in IDENTITIES.read(storage, layout).identities:
            kind, who = Counter(labels[t] for t in ident.track_ids).most_common(1)[0][0]
            person_of[ident.identity_id] = None if kind == "not_faces" else who
        out.append((f"{clip['ep_id']} (real: {name})", layout, person_of))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench/results/review_effort_2core.json")
    args = parser.parse_args()
    from pipelines.ray_env import ensure_ray

    ensure_ray(num_cpus=2)
    storage = LocalStorage(bench_dir() / "effort-data")
    _facebank(storage)
    rows: list[dict[str, Any]] = []
    for name, layout, person_of in _synthetic(storage) + _real(storage):
        cards, floor = cards_of(storage, layout, person_of)
        cast = set(CAST) if layout.ep_id.startswith(SHOW) else set()
        before, after = effort(cards, cast, floor, after=False), effort(cards, cast, floor, after=True)
        rows.append(
            {
                "episode": name,
                "identities": len(cards),
                "keys_before": before.keys,
                "keys_after": after.keys,
                "wrong_name_one_key_before": before.wrong_one_key,
                "wrong_name_one_key_after": after.wrong_one_key,
                "fragments": after.fragments,
                "fragments_first_candidate_right": after.fragments_first,
            }
        )
        print(json.dumps(rows[-1]))
    total = sum(r["identities"] for r in rows)
    summary = {
        "identities": total,
        "keys_per_identity_before": round(sum(r["keys_before"] for r in rows) / total, 3),
        "keys_per_identity_after": round(sum(r["keys_after"] for r in rows) / total, 3),
        "wrong_name_one_key_before": sum(r["wrong_name_one_key_before"] for r in rows),
        "wrong_name_one_key_after": sum(r["wrong_name_one_key_after"] for r in rows),
        "fragments": sum(r["fragments"] for r in rows),
        "fragments_first_candidate_right": sum(r["fragments_first_candidate_right"] for r in rows),
    }
    print(json.dumps(summary, indent=1))
    Path(args.out).write_text(json.dumps({"summary": summary, "episodes": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
