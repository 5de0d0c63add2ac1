"""Identifier rules shared by the CLI, the pipeline and the HTTP API.

Every id that becomes part of a storage key is checked here first, so no input can name a path
outside the data directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EP_ID_PATTERN = r"^[a-z0-9][a-z0-9_]*(?:-[a-z0-9_]+)*-s\d{2,3}e\d{2,3}$"
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
SHOW_SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
CAST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
FACE_ID_PATTERN = r"^face_\d{4,}_\d{6,}$"
IDENTITY_ID_PATTERN = r"^[A-Za-z0-9_]{1,64}$"
# The patterns are anchored with ^...$ for OpenAPI and pydantic (whose regex engine ends `$` at the end
# of the text). Python's `$` also matches before a trailing newline, so Python checks use fullmatch.

_EP_ID = re.compile(EP_ID_PATTERN)
_RUN_ID = re.compile(RUN_ID_PATTERN)
_SHOW_ID = re.compile(SHOW_SLUG_PATTERN)
_CAST_ID = re.compile(CAST_ID_PATTERN)
_FACE_ID = re.compile(r"face_(?P<track>\d{4,})_(?P<frame>\d{6,})")
_EP_PARTS = re.compile(r"(?P<show>.+)-s(?P<season>\d{2,3})e(?P<episode>\d{2,3})")


class InvalidIdError(ValueError):
    """An id that does not match its documented pattern."""


@dataclass(frozen=True)
class EpisodeKey:
    show: str
    season: int
    episode: int

    @property
    def ep_id(self) -> str:
        return f"{self.show}-s{self.season:02d}e{self.episode:02d}"


def _checked(value: str, pattern: re.Pattern[str], what: str, expected: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidIdError(f"invalid {what} {value!r}: {expected}")
    return value


def validate_ep_id(ep_id: str) -> str:
    return _checked(ep_id, _EP_ID, "ep_id", "expected {show}-s{SS}e{EE} in lower case, e.g. 'rhobh-s05e02'")


def validate_run_id(run_id: str) -> str:
    return _checked(run_id, _RUN_ID, "run_id", f"must match {RUN_ID_PATTERN}")


def validate_show_id(show_id: str) -> str:
    return _checked(show_id, _SHOW_ID, "show id", f"must match {SHOW_SLUG_PATTERN}")


def validate_cast_id(cast_id: str) -> str:
    return _checked(cast_id, _CAST_ID, "cast id", f"must match {CAST_ID_PATTERN}")


def parse_ep_id(ep_id: str) -> EpisodeKey:
    validate_ep_id(ep_id)
    m = _EP_PARTS.fullmatch(ep_id)
    assert m is not None
    return EpisodeKey(m["show"], int(m["season"]), int(m["episode"]))


def make_ep_id(show: str, season: int, episode: int) -> str:
    ep_id = EpisodeKey(show.strip().lower(), season, episode).ep_id
    return validate_ep_id(ep_id)


def face_id(track_id: int, frame_idx: int) -> str:
    """The id of one face: the detection of ``track_id`` at ``frame_idx`` (e.g. ``face_0007_000120``)."""
    return f"face_{track_id:04d}_{frame_idx:06d}"


def parse_face_id(value: str) -> tuple[int, int]:
    """``(track_id, frame_idx)`` of a face id; :class:`InvalidIdError` when it is not one."""
    m = _FACE_ID.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise InvalidIdError(f"invalid face_id {value!r}: expected face_TTTT_FFFFFF")
    return int(m["track"]), int(m["frame"])
