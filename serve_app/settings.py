"""The API's settings, read once from the environment when a replica starts.

Secrets are read from the replica's own environment or a file on its node, never passed as arguments
or through a Ray runtime env (the dashboard shows those).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class SettingsError(ValueError):
    """Settings the API refuses to start with."""


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _token(environ: Mapping[str, str]) -> Optional[str]:
    token = environ.get("SCREENALYTICS_API_TOKEN") or None
    path = environ.get("SCREENALYTICS_API_TOKEN_FILE")
    if token is None and path:
        try:
            token = Path(path).read_text().strip() or None
        except OSError as exc:
            raise SettingsError(f"SCREENALYTICS_API_TOKEN_FILE {path}: {exc.strerror}") from None
    if token is not None and len(token) < 16:
        raise SettingsError("the API token must be at least 16 characters")
    return token


@dataclass(frozen=True)
class ApiSettings:
    """``data_uri``: the data dir (local path or s3://). ``db_path``: the SQLite state file, on the node
    running the API and the job actors (the head, on a cluster). ``api_token``: when set, every mutating
    request needs it. ``allowed_hosts``: Host header values served (``*``: any). ``allowed_origins``:
    other origins whose browser pages may send mutating requests (same-origin pages always may).
    ``max_upload_bytes``: the largest video upload, enforced while the body streams in."""

    data_uri: str
    db_path: str
    s3_bucket: Optional[str] = None
    s3_endpoint: Optional[str] = None
    api_token: Optional[str] = field(default=None, repr=False)
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    allowed_origins: tuple[str, ...] = ()
    max_upload_bytes: int = 20 * 1024**3

    @classmethod
    def from_env(cls, data_uri: str | None = None, environ: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if environ is None else environ
        data_uri = data_uri or env.get("SCREENALYTICS_DATA_DIR", "data")
        if not data_uri.startswith("s3://"):
            data_uri = str(Path(data_uri).resolve())
        if data_uri.startswith("s3://"):
            from actors.cache import cache_dir

            default_db = str(cache_dir() / "state.sqlite3")
        else:
            default_db = f"{data_uri}/state.sqlite3"
        token = _token(env)
        if env.get("SCREENALYTICS_REQUIRE_TOKEN", "").lower() in ("1", "true", "yes") and token is None:
            raise SettingsError(
                "this deployment listens beyond loopback (SCREENALYTICS_REQUIRE_TOKEN is set) but no API token is configured: "
                "set SCREENALYTICS_API_TOKEN_FILE (or SCREENALYTICS_API_TOKEN) on the head node"
            )
        return cls(
            data_uri=data_uri,
            db_path=env.get("SCREENALYTICS_STATE_DB", default_db),
            s3_bucket=env.get("SCREENALYTICS_S3_BUCKET") or None,
            s3_endpoint=env.get("S3_ENDPOINT_URL") or None,
            api_token=token,
            allowed_hosts=_csv(env.get("SCREENALYTICS_ALLOWED_HOSTS")) or LOOPBACK_HOSTS,
            allowed_origins=_csv(env.get("SCREENALYTICS_ALLOWED_ORIGINS")),
            max_upload_bytes=int(env.get("SCREENALYTICS_MAX_UPLOAD_BYTES") or 20 * 1024**3),
        )
