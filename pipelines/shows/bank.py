"""Talking to a show's facebank: the actor that answers queries, and adding reference photos.

Photos are detected, aligned and embedded by the same models as the pipeline. A photo must hold
exactly one face unless ``pick="largest"`` is asked for: a group photo or a photo with no face is an
error naming the photo, never a silent guess.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Optional

import cv2
import numpy as np
import ray
from PIL import Image, UnidentifiedImageError

from actors.facebank_actor import Row, facebank_actor
from actors.models.config import ModelConfig

from ..schemas import FacebankEntry
from ..storage import S3Storage, Storage, open_storage, parse_s3_uri, s3_client
from . import facebank, roster
from .errors import PhotoError

PHOTO_SCORE_THRESHOLD = 0.6
"""Detector score a face in a reference photo needs. Photos are sharp and frontal, so a higher floor
than video keeps posters and background faces in a photo from counting as a second face."""

MAX_PHOTO_PIXELS = 50_000_000
"""Largest reference photo, in pixels, read from the file's header before anything is decoded. 50 MP
takes any camera's full-size photo (a 45 MP still is 8192 x 5464) and at most ~150 MB decoded; a
few-hundred-KB PNG that claims 30000 x 30000 pixels (a decompression bomb: 2.7 GB decoded, seconds of
CPU) is refused from its header. Raising it lets larger scans through at that memory cost per photo."""


def _storage_at(location: str) -> Storage:
    """A storage from ``uri`` or ``uri|endpoint`` (an S3 API endpoint other than AWS's)."""
    uri, _, endpoint = location.partition("|")
    if endpoint:
        bucket, prefix = parse_s3_uri(uri)
        return S3Storage(bucket, prefix, client=s3_client(endpoint))
    return open_storage(uri)


def location_of(storage: Storage) -> str:
    """How the actor reaches ``storage``: its URI, and the S3 endpoint when it is not AWS's (the actor
    may run where ``S3_ENDPOINT_URL`` is not set)."""
    endpoint = getattr(getattr(getattr(storage, "client", None), "meta", None), "endpoint_url", None)
    return f"{storage.uri}|{endpoint}" if isinstance(storage, S3Storage) and endpoint and "amazonaws.com" not in endpoint else storage.uri


def bank_source(location: str, show_id: str, model: str, known: frozenset[str]) -> tuple[list[str], dict[str, Row]]:
    """What the facebank actor reads: the current entry ids and the rows it has not loaded yet."""
    storage = _storage_at(location)
    ids = facebank.entry_ids(storage, show_id)
    new: dict[str, Row] = {}
    for entry_id in ids:
        if entry_id in known:
            continue
        entry = facebank.read_entry(storage, show_id, entry_id)
        if entry is not None:
            new[entry_id] = (facebank.label_of(entry), entry.embedding) if entry.embedding_model == model else None
    return ids, new


def actor(show_id: str) -> Any:
    return facebank_actor(show_id, bank_source)


def score(storage: Storage, show_id: str, model: str, vectors: np.ndarray) -> tuple[int, list[dict[str, float]]]:
    """(faces in the bank for ``model``, label scores per vector), from the show's facebank actor."""
    if not facebank.entry_ids(storage, show_id):  # no bank yet: no actor to start
        return 0, [{} for _ in range(len(vectors))]
    answer = ray.get(actor(show_id).scores.remote(location_of(storage), model, np.asarray(vectors, np.float32)))
    return int(answer["faces"]), answer["scores"]


def warm_up(storage: Storage, ep_id: str, model: str) -> None:
    """Start the show's facebank actor and its index load without waiting (when the show has a bank)."""
    from ..ids import parse_ep_id

    show_id = parse_ep_id(ep_id).show
    if facebank.entry_ids(storage, show_id):
        actor(show_id).size.remote(location_of(storage), model)


@dataclass
class PhotoInput:
    name: str
    data: bytes


def photo_dimensions(photo: PhotoInput) -> tuple[int, int]:
    """(width, height) from the image's header, without decoding its pixels; PhotoError for a file that
    is no image, or one larger than ``MAX_PHOTO_PIXELS``."""
    limit = f"at most {MAX_PHOTO_PIXELS // 1_000_000} megapixels"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(photo.data)) as header:  # lazy: reads the header only
                width, height = header.size
    except Image.DecompressionBombError:  # so far past the limit that Pillow refused to describe it
        raise PhotoError(f"{photo.name}: too large ({limit}): resize it first") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise PhotoError(f"{photo.name}: not a readable image (JPEG, PNG, BMP, WebP or TIFF)") from None
    if width * height > MAX_PHOTO_PIXELS:
        raise PhotoError(f"{photo.name}: too large ({width} x {height} pixels; {limit}): resize it first")
    return width, height


def _decode(photo: PhotoInput) -> np.ndarray:
    photo_dimensions(photo)  # before any pixel is decoded
    image = cv2.imdecode(np.frombuffer(photo.data, np.uint8), cv2.IMREAD_COLOR) if photo.data else None
    if image is None:
        raise PhotoError(f"{photo.name}: not a readable image (JPEG, PNG, BMP, WebP or TIFF)")
    return np.asarray(image)


def _pick(photo: PhotoInput, faces: list[dict[str, Any]], pick: Literal["only", "largest"]) -> dict[str, Any]:
    if not faces:
        raise PhotoError(f"{photo.name}: no face found")
    if len(faces) > 1 and pick != "largest":
        raise PhotoError(f"{photo.name}: {len(faces)} faces found; use a photo of one person or pick the largest face (--pick largest)")
    return max(faces, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))


def add_photos(
    storage: Storage,
    show_id: str,
    cast_id: str,
    photos: Sequence[PhotoInput],
    models: ModelConfig,
    pick: Literal["only", "largest"] = "only",
    name: Optional[str] = None,
    embed: Any = None,
) -> list[FacebankEntry]:
    """Add one face per photo to ``cast_id`` (show and cast member created when missing). Every photo
    is checked before any is added, so a bad one adds nothing. ``embed(image, threshold)`` finds the
    faces (default: in this process; the API passes the facebank actor's)."""
    if embed is None:
        from actors.models.photo import PhotoModels

        embed = PhotoModels.load(models.model_dump()).faces
    for photo in photos:  # every photo's header, before any photo is decoded or any model is loaded
        photo_dimensions(photo)
    chosen = [(photo, _pick(photo, embed(_decode(photo), PHOTO_SCORE_THRESHOLD), pick)) for photo in photos]
    roster.create_show(storage, show_id)
    roster.create_cast(storage, show_id, cast_id, name)
    added = []
    for photo, face in chosen:
        entry = FacebankEntry(
            entry_id=facebank.photo_entry_id(cast_id, photo.data, face["embedding_model"]),
            kind="cast",
            cast_id=cast_id,
            source="photo",
            photo=photo.name[-200:],
            embedding_model=face["embedding_model"],
            embedding=face["embedding"],
        )
        added.append(facebank.write_entry(storage, show_id, entry, face["chip_jpeg"]))
    return added
