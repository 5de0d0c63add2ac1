"""The rules that turn facebank scores into automatic names (pure: no storage, no Ray).

An identity is named automatically only when all of these hold:

1. its best cast member's score (cosine similarity of the identity's centroid to that member's closest
   facebank face) reaches ``auto_threshold``, or ``auto_threshold - STRONG_LEAD_DROP`` when it leads
   every other match by ``strong_lead`` (a stranger scores low against everyone, with no leader);
2. it beats the runner-up cast member by ``margin`` (look-alikes go to review);
3. it beats the best match in the show's not-cast bank (guests, not-a-face) by ``margin`` too;
4. no identity seen in the same frame got the same cast member with a higher score (one person
   cannot be in two places of one frame; the weaker claim goes to review).

An identity whose best match is a not-cast face above the threshold is recognised as that guest (or
not-a-face) and kept out of cast screen time. Human decisions are applied later, on top of these
names (:func:`apply_names`): a manual name or mark always wins, a rejected cast member is never given.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Optional, cast

from .schemas import Assignments, IdentityNaming, Suggestion
from .stage_settings import NamingConfig

DEFAULT_AUTO_THRESHOLD = {"sface": 0.50, "arcface": 0.40}
"""Before calibration. Measured on bench/naming (README): SFace faces of one person score 0.5-0.9
against a photo of them, different people -0.1-0.45."""


STRONG_LEAD_DROP = 0.1


@dataclass(frozen=True)
class NamingRules:
    """When an identity is named automatically. ``margin`` and ``strong_lead`` come from the ``naming``
    config section (:meth:`from_config`, where their trade-offs are written); the threshold is the show's
    calibrated one, the configured one, or the embedder's default."""

    auto_threshold: float
    margin: float
    strong_lead: float

    @classmethod
    def from_config(cls, cfg: NamingConfig, auto_threshold: float) -> NamingRules:
        return cls(auto_threshold, cfg.margin, cfg.strong_lead)

    def clears(self, best: float, lead: float) -> bool:
        return best >= self.auto_threshold or (best >= self.auto_threshold - STRONG_LEAD_DROP and lead >= self.strong_lead)


def default_threshold(embedding_model: str) -> float:
    family = "arcface" if embedding_model.startswith("arcface") else "sface"
    return DEFAULT_AUTO_THRESHOLD[family]


def _split(scores: dict[str, float]) -> tuple[list[tuple[str, float]], Optional[tuple[str, float]]]:
    """(cast members best first, the best not-cast label)."""
    cast_scores = sorted(((k[5:], s) for k, s in scores.items() if k.startswith("cast:")), key=lambda kv: -kv[1])
    others = [(k, s) for k, s in scores.items() if not k.startswith("cast:")]
    return cast_scores, (max(others, key=lambda kv: kv[1]) if others else None)


def decide(identity_ids: list[str], scores: list[dict[str, float]], co_occurring: set[frozenset[str]], rules: NamingRules) -> list[IdentityNaming]:
    """One naming per identity, from its label scores (``cast:{id}``, ``guest:{label}``, ``not_face:{label}``)."""
    out: list[IdentityNaming] = []
    for ident, sc in zip(identity_ids, scores):
        cast_scores, not_cast = _split(sc)
        best = cast_scores[0] if cast_scores else None
        second = cast_scores[1][1] if len(cast_scores) > 1 else -1.0
        nc_score = not_cast[1] if not_cast else -1.0
        reason, name = "empty_bank" if not sc else "below_threshold", None
        guest_label, guest_kind = None, None
        if not_cast and nc_score >= rules.auto_threshold and (best is None or nc_score >= best[1]):
            reason = "not_cast"
            kind, _, label = not_cast[0].partition(":")
            guest_kind, guest_label = cast(Literal["guest", "not_face"], kind), label
        elif best is not None and rules.clears(best[1], best[1] - max(second, nc_score)):
            if best[1] - second < rules.margin:
                reason = "margin"
            elif best[1] - nc_score < rules.margin:
                reason = "not_cast"
            else:
                reason, name = "auto", best[0]
        out.append(
            IdentityNaming(
                identity_id=ident,
                cast_id=name,
                confidence=best[1] if name and best else None,
                suggestions=[Suggestion(cast_id=c, score=s) for c, s in cast_scores[:3]],
                not_cast_score=nc_score if not_cast else None,
                guest_label=guest_label,
                guest_kind=guest_kind,
                reason=reason,
            )
        )
    _one_per_frame(out, co_occurring)
    return out


def _one_per_frame(namings: list[IdentityNaming], co_occurring: set[frozenset[str]]) -> None:
    """Strongest claim first; a weaker claim on a cast member already given to an identity seen in the
    same frame is withdrawn."""
    given: dict[str, list[str]] = defaultdict(list)  # cast -> identities holding it
    for n in sorted((n for n in namings if n.cast_id), key=lambda n: -(n.confidence or 0.0)):
        assert n.cast_id is not None
        if any(frozenset((n.identity_id, other)) in co_occurring for other in given[n.cast_id]):
            n.cast_id, n.confidence, n.reason = None, None, "one_to_one"
        else:
            given[n.cast_id].append(n.identity_id)


def identity_pairs(track_pairs: Iterable[Iterable[int]], identity_of: dict[int, str]) -> set[frozenset[str]]:
    """Identities seen in one frame, from track pairs seen in one frame."""
    pairs = set()
    for pair in track_pairs:
        a, b = (identity_of.get(t) for t in pair)
        if a and b and a != b:
            pairs.add(frozenset((a, b)))
    return pairs


def apply_names(assignments: Assignments, namings: dict[str, IdentityNaming], co_occurring: set[frozenset[str]]) -> None:
    """Put automatic names under the human decisions in ``assignments`` (in place).

    A manual name or a guest / not-a-face mark wins; a rejected cast member is never given; an
    automatic name is withdrawn when a reviewer gave that cast member to an identity seen in the
    same frame."""
    manual = assignments.manual_assignments
    auto: dict[str, str] = {}
    for ident, naming in namings.items():
        if not naming.cast_id or ident in manual or ident in assignments.marks:
            continue
        if naming.cast_id in assignments.rejected.get(ident, []):
            continue
        if any(manual.get(other) == naming.cast_id for pair in co_occurring if ident in pair for other in pair if other != ident):
            continue
        auto[ident] = naming.cast_id
    assignments.auto_assignments = auto
