"""Pipeline configuration: one model, one resolver.

Precedence, highest first: explicit request overrides > environment variables > screen-time preset
(screentime fields only) > profile > stage defaults declared below. :func:`resolve_config` returns the
merged config plus, for every field, where its value came from.

Environment variables are ``SCREENALYTICS_<STAGE>__<FIELD>`` (e.g.
``SCREENALYTICS_DETECT_TRACK__DETECT_FPS=8``); ``SCREENALYTICS_PROFILE`` picks the profile. Request
overrides are dotted keys (``{"detect_track.detect_fps": 8}``) or nested dicts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from actors.models.config import ModelConfig

from .audio.link import SEASON_SIMILARITY


class ConfigError(ValueError):
    pass


class _Section(BaseModel):
    # Non-finite numbers (NaN, Infinity) are refused by every setting: they pass `ge`/`le` checks otherwise.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DetectTrackConfig(_Section):
    detect_fps: float = Field(
        5.0,
        gt=0,
        le=240,
        description="Frames sampled per second for detection. Higher: tighter on/off times and fewer broken "
        "tracks, linearly more detector time. Track ends are estimated within half a sampling step.",
    )
    stride: Optional[int] = Field(None, ge=1, le=100_000, description="Explicit frame stride; overrides detect_fps (stride = max(stride, fps/detect_fps)).")
    det_long_side: int = Field(
        960,
        ge=160,
        le=8192,
        description="Frames are resized so their long side is this many pixels before detection. Larger finds "
        "smaller faces (a face of h px is detected at h*det_long_side/width px) at quadratic cost.",
    )
    det_thresh: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Detector score floor. Detections between this and track_high_thresh only continue tracks, so a "
        "low floor keeps blurred or dark faces tracked without starting false tracks; it costs a chip per detection.",
    )
    min_face_px: float = Field(16.0, ge=0, le=10_000, description="Faces shorter than this (source pixels) are ignored.")
    cut_threshold: float = Field(
        27.0,
        gt=0,
        le=255,
        description="Shot-cut score (mean absolute HSV difference of 64x36 thumbnails, 0-255). Lower catches "
        "soft cuts but splits shots on fast motion or flashes.",
    )
    min_shot_frames: int = Field(6, ge=1, le=100_000, description="Cuts closer than this to the previous cut are ignored.")
    decode_all_frames: bool = Field(
        False,
        description="False: in H.264/HEVC video, frames that no other frame references and no sample needs are never "
        "decoded (about a third of the frames and 20% of decoding time with x264's default B-frames); a cut that falls on one of them "
        "is placed on the next decoded frame, at most that run of frames (2 with x264's defaults) late, and exactly "
        "where the encoder starts a picture group at the cut. True: every frame is decoded and every cut is exact.",
    )
    decode_device: Literal["auto", "cpu", "cuda"] = Field(
        "cpu",
        description="Where video is decoded. cpu (the default until NVDEC has been measured on a GPU node: see the "
        "README): the detector actors' CPU cores. auto: NVIDIA's hardware decoder (NVDEC) when the detector actors hold "
        "a GPU, else the CPU; a segment NVDEC cannot decode (a codec or profile it lacks, a driver install without "
        "libnvcuvid) is decoded on the CPU, and track_metrics.json counts segments per decoder. NVDEC frees the cores "
        "that otherwise bound a GPU node (decoding is most of a detector actor's CPU time) at the cost of copying each "
        "decoded picture to host memory (~3 MB at 1080p). cuda: NVDEC for every segment, or the stage fails.",
    )
    nvdec_share: float = Field(
        1.0,
        ge=0,
        le=1,
        description="When NVDEC decodes, the share of segments it takes (evenly spread); the CPUs decode the rest. "
        "1: all on NVDEC, best when the node's cores are few for its GPU. Lower it when NVDEC saturates before "
        "the cores do (many cores per GPU, or several episodes on one GPU), so both decode side by side.",
    )
    track_high_thresh: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Only detections above this start a track (weaker ones may continue one). Lower catches faces "
        "the detector is unsure of (small, blurred); higher rejects more false positives.",
    )
    track_min_hits: int = Field(
        0,
        ge=0,
        le=50,
        description="0: only detections above track_high_thresh start tracks. N: weaker ones start tentative tracks "
        "that count once N detections matched them; recovers persistently blurred or dark faces, while one-off weak "
        "detections still start nothing.",
    )
    track_match_iou: float = Field(0.2, ge=0, le=1, description="Minimum IoU between a track's predicted box and a detection to continue it.")
    track_appearance_min: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Colour similarity (face chip hue/saturation histograms) a detection needs to continue a track, "
        "so a face passing in front of another never takes over its track. One track's consecutive faces score "
        ">= 0.89 on the benchmarks, two people in one frame 0.78 median. 0 turns it off; higher splits tracks "
        "under fast lighting changes.",
    )
    track_max_gap_s: float = Field(
        0.5,
        ge=0,
        le=60,
        description="A track survives this long without a detection (turned head, blur). Longer bridges "
        "dropouts, but risks joining two people at the same place.",
    )
    segment_s: float = Field(
        15.0,
        gt=1,
        le=3600,
        description="Length of the time segments decoded in parallel. Shorter: more parallelism and finer resume, more seek pre-roll decoded twice.",
    )
    batch_size: int = Field(8, ge=1, le=256, description="Frames per detector batch (Ray Data map_batches).")
    num_detectors: Optional[int] = Field(None, ge=1, le=4096, description="Detector actors; default sized from cluster CPUs/GPUs.")


class FacesEmbedConfig(_Section):
    max_faces_per_track: int = Field(
        3,
        ge=1,
        le=1000,
        description="Faces embedded per track: the track is cut into this many stretches and the best face of each "
        "(detector score x sharpness) is embedded. More: steadier prototypes over more poses, linearly more embedder "
        "time (the embedder is a fifth of an episode's CPU time at 5). 3 scored the same as 5 on the accuracy benchmark.",
    )
    min_conf: float = Field(0.6, ge=0, le=1, description="Faces below this detector score are not embedded.")
    min_contrast: float = Field(1.0, ge=0, le=255, description="Gray-level standard deviation floor of the aligned crop.")
    min_blur: float = Field(18.0, ge=0, le=1e6, description="Laplacian-variance floor of the aligned 112x112 crop; below it the face is blurry.")
    mixed_spread: float = Field(0.35, ge=0, le=2, description="Track spread above which the track is flagged mixed.")
    write_crops: bool = Field(True, description="Write the embedded faces' crops for review.")


class ClusterConfig(_Section):
    similarity_threshold: Optional[float] = Field(
        None,
        ge=-1,
        le=1,
        description="Average-linkage cosine similarity needed to merge two clusters of track prototypes. "
        "Null uses the embedder's recommended value (SFace 0.45, ArcFace 0.35). Higher: purer clusters, "
        "more clusters per person.",
    )
    outlier_similarity: float = Field(0.2, ge=-1, le=1, description="Members below this similarity to their cluster centroid are ejected to singletons.")
    knn: int = Field(32, ge=2, le=1024, description="Neighbours per track taken from the FAISS index as merge candidates.")
    max_link_gap: Optional[float] = Field(
        0.2,
        ge=0,
        le=2,
        description="Merges need evidence: two clusters of several tracks each join only when their average "
        "cross similarity is within this of how similar each one's own members are (two tight clusters that are "
        "only moderately alike are two people). Lower: purer identities, more clusters per person; null: off. "
        "Measured: the two leads of Megamind.avi (each cluster 0.84 within, 0.55 across) split at <= 0.29; the "
        "accuracy benchmark keeps 0.059 extra clusters per person down to 0.2 and gets 0.087 at 0.15.",
    )
    junk_gate: bool = Field(
        True, description="Tracks that two independent signals say are not faces (landmarks, detector score) become junk identities, out of screen time."
    )
    junk_score: float = Field(0.8, ge=0, le=1, description="A track whose mean detector score is below this casts one junk vote (a second signal is needed).")
    extra_face_frac: float = Field(
        0.05, ge=0, le=1, description="Faces never taller than this share of the frame height are extras (reported apart). Higher drops more wide-shot faces."
    )
    extra_min_s: float = Field(0.3, ge=0, le=60, description="Tracks seen for less than this are extras (reported apart).")
    extra_background: bool = Field(True, description="A face at most 0.6x the size and 10x blurrier than a face on screen with it (out of focus) is an extra.")


class NamingConfig(_Section):
    auto_threshold: Optional[float] = Field(
        None,
        ge=-1,
        le=1,
        description="Cosine similarity between an identity's centroid and a cast member's closest facebank face "
        "needed to name it automatically. Null: the show's calibrated value (`screenalytics facebank calibrate`), "
        "else the embedder's default (SFace 0.50, ArcFace 0.40). Higher: fewer wrong names, more left for review.",
    )
    margin: float = Field(
        0.06,
        ge=0,
        le=2,
        description="How far the best cast member must beat the runner-up (and the best not-cast match). Higher "
        "keeps look-alikes for review; 0 names on the best score alone.",
    )
    strong_lead: float = Field(
        0.25,
        ge=0,
        le=2,
        description="An identity whose best cast member leads every other match (cast and not-cast) by this much "
        "is named from auto_threshold - 0.1 up: a clear lead is evidence of its own (a stranger scores low against "
        "everyone, with no leader). Higher (or 2) turns this off.",
    )
    faces_per_identity: int = Field(
        5,
        ge=1,
        le=50,
        description="Faces a confirmed identity adds to the facebank (its best, spread over its tracks). More: "
        "better recall for that person across looks, a bigger bank to search.",
    )
    enabled: bool = Field(True, description="False skips automatic naming (suggestions only come from manual work).")


class AudioConfig(_Section):
    enabled: bool = Field(True, description="False skips speech analysis (speaking times stay empty).")
    vad_on: float = Field(0.5, ge=0, le=1, description="Silero speech probability that starts speech. Lower: catches quiet speech, and more noise.")
    vad_off: float = Field(0.35, ge=0, le=1, description="Probability under which speech ends (after min_silence_s).")
    min_silence_s: float = Field(0.3, ge=0, le=10, description="Pauses shorter than this stay inside one speech span.")
    voice_threshold: float = Field(
        0.68,
        ge=-1,
        le=1,
        description="Average cosine similarity of speaker embeddings needed to join two groups of speech windows "
        "into one voice. Higher: more voices (one person split), lower: fewer (two people merged).",
    )
    window_s: float = Field(1.5, gt=0.2, le=10, description="Speech window per speaker embedding (the encoder was trained on 1.6 s).")
    hop_s: float = Field(
        0.25,
        gt=0.05,
        le=10,
        description="Step between windows. Smaller follows quick turn-taking, at proportional cost (0.5 made 3 voices of 2 on pyannote's sample).",
    )
    min_voice_s: float = Field(1.0, ge=0, le=60, description="A voice heard for less than this is folded into the nearest voice.")
    resegment: bool = Field(
        True,
        description="Re-place turn boundaries every 10 ms with per-voice MFCC models (pipelines.audio.resegment): "
        "short replies the 1.5 s windows outvote come back (held-out synthetic exchanges: DER 26% -> 19%; pyannote's "
        "sample: 18.2% -> 16.8%), for about 2 ms of driver time per second of speech.",
    )
    switch_penalty: float = Field(
        40.0,
        ge=0,
        le=1000,
        description="Resegmentation's cost of a change of voice (log-likelihood units). Lower follows shorter replies "
        "and starts to chatter between similar voices; higher keeps the encoder's turns.",
    )
    segment_s: float = Field(
        60.0,
        ge=10,
        le=3600,
        description="Audio per Ray task (speech detection and embeddings run in parallel). Shorter balances the "
        "tasks over the CPUs better (a 10-minute episode's stage: 5.1 s at 120, 3.6 s at 60, 3.9 s at 40 on 2 cores), "
        "each task costs a little start-up.",
    )
    link_min_s: float = Field(
        1.0,
        ge=0,
        le=600,
        description="Seconds a voice must speak while one identity alone is on screen (this episode and the season's together) to be linked to it.",
    )
    season_similarity: float = Field(
        SEASON_SIMILARITY,
        ge=0.5,
        le=1.0,
        description="Centroid similarity at which a voice of another episode of the show counts as this voice (its on-screen evidence "
        "and a reviewer's assignment carry over). Lower pools more of a person's episodes and risks pooling two similar voices.",
    )


PRESETS: dict[str, dict[str, Any]] = {
    "default": {"mode": "tracks", "quality_min": 0.48, "gap_tolerance_s": 0.5, "edge_padding_s": 0.0},
    "stricter": {"mode": "faces", "quality_min": 0.65, "gap_tolerance_s": 0.6, "edge_padding_s": 0.0},
    "strict": {"mode": "tracks", "quality_min": 0.48, "gap_tolerance_s": 0.1, "edge_padding_s": 0.0},
}


class ScreentimeConfig(_Section):
    preset: Literal["default", "stricter", "strict"] = Field("default", description="Named bundle of the fields below.")
    mode: Literal["tracks", "faces"] = Field(
        "tracks",
        description="tracks: a track counts from its first to its last detection. faces: detections are chained "
        "while consecutive ones are within gap_tolerance_s (drops spans where the face was missed).",
    )
    quality_min: float = Field(0.48, ge=0, le=1, description="Tracks whose mean detector score is below this are not counted.")
    gap_tolerance_s: float = Field(
        0.5,
        ge=0,
        le=60,
        description="Intervals of one person closer than this are merged, but never across a shot cut. Higher "
        "forgives detector dropouts and overcounts brief exits.",
    )
    edge_padding_s: float = Field(0.0, ge=0, le=10, description="Seconds added at both ends of every interval (overcounts).")


class PipelineConfig(_Section):
    models: ModelConfig = Field(default_factory=ModelConfig)
    detect_track: DetectTrackConfig = Field(default_factory=DetectTrackConfig)
    faces_embed: FacesEmbedConfig = Field(default_factory=FacesEmbedConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    naming: NamingConfig = Field(default_factory=NamingConfig)
    audio: AudioConfig = Field(default_factory=AudioConfig)
    screentime: ScreentimeConfig = Field(default_factory=ScreentimeConfig)


PROFILES: dict[str, dict[str, Any]] = {
    "balanced": {},
    "low_power": {"detect_track.detect_fps": 3.0, "faces_embed.max_faces_per_track": 2},
    "high_accuracy": {
        "detect_track.detect_fps": 24.0,
        "detect_track.det_long_side": 1280,
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
