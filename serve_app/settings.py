"""The API's settings, read once from the environment when a replica starts.

Secrets are read from the replica's own environment or a file on its node, never passed as arguments
or through a Ray runtime env (the dashboard shows those).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class SettingsError(ValueError):
    """Settings the API refuses to start with."""


def _token_from_file(path: Optional[str]) -> Optional[str]:
    if not path:
        return None
    try:
        return Path(path).read_text().strip() or None
    except OSError as exc:
        raise SettingsError(f"SCREENALYTICS_API_TOKEN_FILE {path}: {exc.strerror}") from None


def _env(name: str, *more: str) -> AliasChoices:
    """A field set by its own name (code, tests) or by its environment variable(s)."""
    return AliasChoices(name, *more)


class ApiSettings(BaseModel):
    """The API's settings: each field names its environment variable; :meth:`from_env` is the one
    place they are read. Empty variables count as unset."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    data_uri: str = Field("data", validation_alias=_env("data_uri", "SCREENALYTICS_DATA_DIR"), description="The data dir: a local path or s3://bucket/prefix.")
    db_path: str = Field(
        "",
        validation_alias=_env("db_path", "SCREENALYTICS_STATE_DB"),
        description="The SQLite state file, on the node running the API and the job actors (the head, on a cluster). "
        "Empty: state.sqlite3 in a local data dir, in the cache dir for an S3 one (filled in by from_env).",
    )
    s3_bucket: Optional[str] = Field(
        None, validation_alias=_env("s3_bucket", "SCREENALYTICS_S3_BUCKET"), description="The bucket episodes are read from by id."
    )
    s3_endpoint: Optional[str] = Field(None, validation_alias=_env("s3_endpoint", "S3_ENDPOINT_URL"), description="An S3-compatible endpoint (MinIO, moto).")
    api_token: Optional[str] = Field(
        None, repr=False, validation_alias=_env("api_token", "SCREENALYTICS_API_TOKEN"), description="When set, every mutating request needs it."
    )
    api_token_file: Optional[str] = Field(
        None, validation_alias=_env("api_token_file", "SCREENALYTICS_API_TOKEN_FILE"), description="A file holding the token (read when api_token is unset)."
    )
    require_token: bool = Field(
        False,
        validation_alias=_env("require_token", "SCREENALYTICS_REQUIRE_TOKEN"),
        description="Refuse to start without a token (set on deployments beyond loopback).",
    )
    allowed_hosts: tuple[str, ...] = Field(
        LOOPBACK_HOSTS,
        validation_alias=_env("allowed_hosts", "SCREENALYTICS_ALLOWED_HOSTS"),
        description="Host header values served, comma-separated (*: any).",
    )
    allowed_origins: tuple[str, ...] = Field(
        (),
        validation_alias=_env("allowed_origins", "SCREENALYTICS_ALLOWED_ORIGINS"),
        description="Other origins whose browser pages may send mutating requests (same-origin pages always may).",
    )
    compat_routes: bool = Field(
        True,
        validation_alias=_env("compat_routes", "SCREENALYTICS_COMPAT_ROUTES"),
        description="Serve the replaced system's routes (serve_app/routers/compat.py) beside the run-scoped ones. "
        "Off: only /episodes/{ep_id}/runs/{run_id}/... names a run.",
    )
    max_upload_bytes: int = Field(
        20 * 1024**3,
        gt=0,
        validation_alias=_env("max_upload_bytes", "SCREENALYTICS_MAX_UPLOAD_BYTES"),
        description="The largest video upload, enforced while the body streams in.",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any, info: ValidationInfo) -> Any:
        if value == "" and info.field_name is not None:
            default = cls.model_fields[info.field_name].default
            return default
        return value

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return tuple(v.strip() for v in value.split(",") if v.strip()) if isinstance(value, str) else value

    @field_validator("api_token")
    @classmethod
    def _long_enough(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and len(value) < 16:
            raise ValueError("the API token must be at least 16 characters")
        return value

    @classmethod
    def from_env(cls, data_uri: str | None = None, environ: Mapping[str, str] | None = None) -> ApiSettings:
        """The settings from the environment (``data_uri``, when given, wins over SCREENALYTICS_DATA_DIR)."""
        env = dict(os.environ if environ is None else environ)
        if data_uri:
            env["SCREENALYTICS_DATA_DIR"] = data_uri
        try:
            raw = cls.model_validate(env)
            token = raw.api_token or _token_from_file(raw.api_token_file)
            settings = cls.model_validate({**raw.model_dump(), "api_token": token})
        except ValidationError as exc:
            raise SettingsError("; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors())) from None
        if settings.require_token and settings.api_token is None:
            raise SettingsError(
                "this deployment listens beyond loopback (SCREENALYTICS_REQUIRE_TOKEN is set) but no API token is configured: "
                "set SCREENALYTICS_API_TOKEN_FILE (or SCREENALYTICS_API_TOKEN) on the head node"
            )
        uri = settings.data_uri if settings.data_uri.startswith("s3://") else str(Path(settings.data_uri).resolve())
        if settings.db_path:
            db_path = settings.db_path
        elif uri.startswith("s3://"):
            from actors.cache import cache_dir

            db_path = str(cache_dir() / "state.sqlite3")
        else:
            db_path = f"{uri}/state.sqlite3"
        return settings.model_copy(update={"data_uri": uri, "db_path": db_path})
