"""The local cache directory: the one place its default is written."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Fixed-up model files, S3 downloads and sample media: ``SCREENALYTICS_CACHE_DIR``, else
    ``~/.cache/screenalytics``."""
    return Path(os.environ.get("SCREENALYTICS_CACHE_DIR") or Path.home() / ".cache" / "screenalytics")
