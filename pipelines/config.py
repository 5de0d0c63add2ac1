"""Pipeline configuration: one model, one resolver.

Precedence, highest first: explicit request overrides > environment variables > screen-time preset
(screentime fields only) > profile > stage defaults (:mod:`pipelines.stage_settings`). :func:`resolve_config` returns the
merged config plus, for every field, where its value came from.

Environment variables are ``SCREENALYTICS_<STAGE>__<FIELD>`` (e.g.
``SCREENALYTICS_DETECT_TRACK__DETECT_FPS=8``); ``SCREENALYTICS_PROFILE`` picks the profile. Request
overrides are dotted keys (``{"detect_track.detect_fps": 8}``) or nested dicts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from .stage_settings import PRESETS, PipelineConfig


class ConfigError(ValueError):
    pass


PROFILES: dict[str, dict[str, Any]] = {
    "balanced": {},
    "low_power": {"detect_track.detect_fps": 3.0, "detect_track.keyframe_max_gap": 16, "faces_embed.max_faces_per_track": 2},
    "high_accuracy": {
        "detect_track.detect_fps": 24.0,
        "detect_track.det_long_side": 1280,
        "detect_track.keyframe_max_gap": 1,
        "faces_embed.max_faces_per_track": 12,
    },
}
DEFAULT_PROFILE = "balanced"
ENV_PREFIX = "SCREENALYTICS_"


class ResolvedConfig(BaseModel):
    profile: str
    config: PipelineConfig
    sources: dict[str, str]


def _flatten(overrides: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping):
            for sub, v in value.items():
                flat[f"{key}.{sub}"] = v
        else:
            flat[key] = value
    for key in flat:
        section, _, field = key.partition(".")
        section_model = PipelineConfig.model_fields.get(section)
        if section_model is None or field not in section_model.annotation.model_fields:  # type: ignore[union-attr]
            raise ConfigError(f"unknown setting {key!r} in {where}; known: {', '.join(sorted(all_setting_keys()))}")
    return flat


def all_setting_keys() -> list[str]:
    keys = []
    for section, info in PipelineConfig.model_fields.items():
        for field in info.annotation.model_fields:  # type: ignore[union-attr]
            keys.append(f"{section}.{field}")
    return keys


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in all_setting_keys():
        section, field = key.split(".")
        name = f"{ENV_PREFIX}{section.upper()}__{field.upper()}"
        if name in environ:
            raw = environ[name]
            try:
                out[key] = json.loads(raw)
            except json.JSONDecodeError:
                out[key] = raw
    return out


def resolve_config(
    profile: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ResolvedConfig:
    """Merge defaults, profile, preset, environment and request overrides, in rising precedence."""
    environ = os.environ if environ is None else environ
    profile = profile or environ.get(f"{ENV_PREFIX}PROFILE") or DEFAULT_PROFILE
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    request = _flatten(overrides, "request")
    env = _env_overrides(environ)
    layers: list[tuple[str, dict[str, Any]]] = [(f"profile:{profile}", _flatten(PROFILES[profile], "profile"))]
    preset = request.get("screentime.preset", env.get("screentime.preset", "default"))
    if preset not in PRESETS:
        raise ConfigError(f"unknown screen-time preset {preset!r}; choose one of {', '.join(PRESETS)}")
    layers.append((f"preset:{preset}", {f"screentime.{k}": v for k, v in PRESETS[preset].items()}))
    layers.append(("env", env))
    layers.append(("request", request))

    merged: dict[str, dict[str, Any]] = {}
    sources = {key: "default" for key in all_setting_keys()}
    for source, values in layers:
        for key, value in values.items():
            section, field = key.split(".")
            merged.setdefault(section, {})[field] = value
            sources[key] = source
    try:
        config = PipelineConfig.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])} ({sources.get('.'.join(str(p) for p in err['loc'][:2]), '?')}): {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
    return ResolvedConfig(profile=profile, config=config, sources=sources)


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["section.field=value", ...]`` from a command line: values are JSON where they parse, else text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out
