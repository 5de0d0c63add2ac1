"""Errors of the show roster and facebank that callers turn into a 4xx or exit code 2."""

from __future__ import annotations


class CastIdTaken(ValueError):
    """A cast id already used by another show (cast ids are unique across shows)."""


class PhotoError(ValueError):
    """A reference photo that cannot give exactly one face (the message names it)."""


class NothingToCalibrate(ValueError):
    """No episode of the show has identities a reviewer named."""
