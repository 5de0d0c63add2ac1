"""Review of a finished run, without HTTP: the corrected view of identities, corrections written
safely, screen time computed on request, per-second timelines, labelled frames and clips, integrity.

The HTTP routes (:mod:`serve_app.routers`) and the CLI both use it; it raises :class:`NotFound` and
:class:`Conflict` (mapped to 404 and 409 by the API) instead of knowing about HTTP.
"""

from .errors import Conflict, NotFound

__all__ = ["Conflict", "NotFound"]
