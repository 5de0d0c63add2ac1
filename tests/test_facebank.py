"""The facebank: reference photos with real models, the naming rules, human decisions over automatic
names, the facebank actor, the naming stage on a real run, and the season table."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from actors.facebank_actor import FacebankIndex
from actors.models.config import ModelConfig
from pipelines.naming import NamingRules, apply_names, decide
from pipelines.registry import IDENTITY_NAMES
from pipelines.schemas import Assignments, IdentityNaming, Suggestion
from pipelines.shows import bank, facebank, roster
from pipelines.shows.errors import CastIdTaken, PhotoError
from pipelines.stage_settings import NamingConfig
from pipelines.storage import LocalStorage

NAMING = NamingConfig()
RULES = NamingRules.from_config(NAMING, auto_threshold=0.5)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from pipelines.sample.media import reference_photos

    return reference_photos(tmp_path_factory.mktemp("refs"))


@pytest.fixture(scope="module")
def photo_models():
    from actors.models.photo import PhotoModels

    return PhotoModels.load(ModelConfig().model_dump())


def _photo(path) -> bank.PhotoInput:
    return bank.PhotoInput(path.name, path.read_bytes())


def _add(storage, cast, path, models=None, **kw):
    return bank.add_photos(storage, "test", cast, [_photo(path)], ModelConfig(), embed=models.faces if models else None, **kw)


# --- rules (pure) ---------------------------------------------------------------------------------


def test_auto_name_needs_threshold_margin_and_to_beat_not_cast():
    ids = ["a", "b", "c", "d", "e", "f"]
    scores = [
        {"cast:x": 0.71, "cast:y": 0.30},  # clear
        {"cast:x": 0.38, "cast:y": 0.10},  # below threshold, even with the strong lead's drop
        {"cast:x": 0.66, "cast:y": 0.63},  # look-alikes: margin
        {"cast:x": 0.70, "guest:g1": 0.68},  # a known guest almost as close
        {"cast:x": 0.52, "guest:g1": 0.81},  # the guest, recognised
        {"cast:x": 0.44, "cast:y": 0.10},  # below threshold, but a strong lead (0.34 >= strong_lead) names it
    ]
    out = {n.identity_id: n for n in decide(ids, scores, set(), RULES)}
    assert out["a"].cast_id == "x" and out["a"].reason == "auto" and out["a"].confidence == 0.71
    assert [s.cast_id for s in out["a"].suggestions] == ["x", "y"]
    assert out["b"].cast_id is None and out["b"].reason == "below_threshold"
    assert out["c"].cast_id is None and out["c"].reason == "margin"
    assert out["d"].cast_id is None and out["d"].reason == "not_cast"
    assert out["e"].cast_id is None and out["e"].guest_kind == "guest" and out["e"].guest_label == "g1"
    assert out["f"].cast_id == "x" and out["f"].reason == "auto"


def test_two_identities_in_one_frame_never_get_the_same_cast_member():
    scores = [{"cast:x": 0.80}, {"cast:x": 0.70}, {"cast:x": 0.60}]
    out = decide(["a", "b", "c"], scores, {frozenset(("a", "b"))}, RULES)
    assert [(n.cast_id, n.reason) for n in out] == [("x", "auto"), (None, "one_to_one"), ("x", "auto")]  # c never shares a frame with a


def test_human_decisions_win_over_automatic_names():
    namings = {i: IdentityNaming(identity_id=i, cast_id="x", confidence=0.8, suggestions=[Suggestion(cast_id="x", score=0.8)], reason="auto") for i in "abcde"}
    a = Assignments(ep_id="t-s01e01", run_id="main", manual_assignments={"a": "y", "e": "x"}, marks={"b": "guest"}, rejected={"c": ["x"]})
    apply_names(a, namings, {frozenset(("d", "e"))})
    # a: named by hand; b: a guest; c: "not x"; d: shares a frame with e, whom a human named x
    assert a.auto_assignments == {}
    a2 = Assignments(ep_id="t-s01e01", run_id="main")
    apply_names(a2, namings, set())
    assert a2.auto_assignments == dict.fromkeys("abcde", "x")


# --- roster and photos (real models) --------------------------------------------------------------


def test_roster_lives_in_the_data_dir_and_cast_ids_are_unique_across_shows(tmp_path):
    storage = LocalStorage(tmp_path)
    assert roster.create_show(storage, "rhobh", "RHOBH") and not roster.create_show(storage, "rhobh")
    assert roster.create_cast(storage, "rhobh", "kyle", "Kyle") and not roster.create_cast(storage, "rhobh", "kyle")
    roster.create_show(storage, "other")
    with pytest.raises(CastIdTaken, match="rhobh"):
        roster.create_cast(storage, "other", "kyle")
    assert roster.cast_names(storage, "rhobh") == {"kyle": "Kyle"}
    assert roster.delete_cast(storage, "rhobh", "kyle") and roster.list_cast(storage, "rhobh") == []


def test_bad_photos_are_named_and_add_nothing(tmp_path, photos, photo_models):
    storage = LocalStorage(tmp_path)
    group = photos["t1_a"].parent / "group.jpg"
    import zipfile

    from pipelines.sample.media import INSIGHTFACE_ARCHIVE, _archive

    with zipfile.ZipFile(_archive(*INSIGHTFACE_ARCHIVE, sdist=False)) as wheel:
        group.write_bytes(wheel.read("insightface/data/images/t1.jpg"))
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((480, 640, 3), 128, np.uint8))
    with pytest.raises(PhotoError, match=r"group\.jpg: 6 faces found"):
        bank.add_photos(storage, "test", "ana", [_photo(photos["obama"]), _photo(group)], ModelConfig(), embed=photo_models.faces)
    with pytest.raises(PhotoError, match=r"wall\.png: no face found"):
        _add(storage, "ana", blank, photo_models)
    with pytest.raises(PhotoError, match="not a readable image"):
        bank.add_photos(storage, "test", "ana", [bank.PhotoInput("broken.jpg", b"\xff\xd8 not really")], ModelConfig(), embed=photo_models.faces)
    assert facebank.list_entries(storage, "test") == [] and roster.get_cast(storage, "test", "ana") is None
    added = _add(storage, "ana", group, photo_models, pick="largest")
    assert len(added) == 1 and added[0].embedding_model == "sface-2021dec-int8bq" and storage.exists(added[0].chip_key)


def test_a_photo_matches_its_person_not_another(tmp_path, photos, photo_models):
    """obama2.jpg (not in the bank) against a bank of obama.jpg and biden.jpg, with the pipeline's models."""
    import tarfile

    from pipelines.sample.media import FACE_RECOGNITION_ARCHIVE, _archive

    storage = LocalStorage(tmp_path)
    _add(storage, "obama", photos["obama"], photo_models)
    _add(storage, "biden", photos["biden"], photo_models)
    with tarfile.open(_archive(*FACE_RECOGNITION_ARCHIVE, sdist=True)) as sdist:
        fh = sdist.extractfile("face_recognition-1.3.0/tests/test_images/obama2.jpg")
        assert fh is not None
        image = cv2.imdecode(np.frombuffer(fh.read(), np.uint8), cv2.IMREAD_COLOR)
    probe = np.asarray([photo_models.faces(image, 0.6)[0]["embedding"]], np.float32)
    labels, matrix = facebank.load_matrix(storage, "test", "sface-2021dec-int8bq")
    scores = FacebankIndex(labels, matrix).scores(probe)[0]
    assert scores["cast:obama"] >= RULES.auto_threshold > scores["cast:biden"]
    (naming,) = decide(["id"], [scores], set(), RULES)
    assert naming.cast_id == "obama"


# --- on a real run (Ray) --------------------------------------------------------------------------


def _copy_run(pipeline_run, tmp_path):
    storage, layout, *_ = pipeline_run
    for area in ("manifests", "embeds", "frames"):
        shutil.copytree(f"{storage.uri}/{area}", tmp_path / area)
    return LocalStorage(tmp_path), layout


def _run(storage, ep_id, stages=("cluster", "naming", "screentime"), **kw):
    """The stages after faces_embed (the copied run has the rest)."""
    from pipelines.runner import run_pipeline
    from pipelines.schemas import StageName

    return run_pipeline(storage=storage, ep_id=ep_id, stages=[StageName(s) for s in stages], **kw)


def _report(storage, layout):
    from pipelines.review.live import live_screentime

    return live_screentime(storage, layout, roster.cast_names(storage, "test"))


@pytest.mark.slow
def test_naming_stage_names_cast_from_photos_and_leaves_the_rest(pipeline_run, tmp_path, photos, photo_models):
    storage, layout = _copy_run(pipeline_run, tmp_path)
    truth = pipeline_run[3]
    _add(storage, "obama", photos["obama"], photo_models)
    _add(storage, "ana", photos["t1_a"], photo_models)
    result = _run(storage, layout.ep_id)
    actions = {o.stage.value: o.action for o in result.outcomes}
    assert actions["cluster"] == "reused" and actions["naming"] == "computed"
    report = _report(storage, layout)
    seconds = {m.cast_id: m.visual_s for m in report.metrics}
    assert set(seconds) == {"obama", "ana"} and all(m.named_by == "auto" for m in report.metrics)
    assert abs(seconds["obama"] - truth.seconds["obama"]) / truth.seconds["obama"] < 0.05
    assert abs(seconds["ana"] - truth.seconds["t1_a"]) / truth.seconds["t1_a"] < 0.05
    unnamed = [i for i in report.identities if i.cast_id is None]
    assert len(unnamed) == 1 and unnamed[0].suggestions and unnamed[0].kind == "unknown"  # t1_b: not in the bank
    # a bank that (wrongly) gives obama's name to two people seen in one frame names only one of them
    facebank.remove_entries(storage, "test", [e.entry_id for e in facebank.list_entries(storage, "test") if e.cast_id == "ana"])
    _add(storage, "obama", photos["t1_a"], photo_models)
    _run(storage, layout.ep_id)
    names = {n.cast_id for n in _report(storage, layout).identities if n.name_source == "auto"}
    assert names == {"obama"}

    reasons = sorted(n.reason for n in IDENTITY_NAMES.read(storage, layout).identities)
    assert "one_to_one" in reasons


@pytest.mark.slow
def test_not_x_survives_a_recluster_and_guests_are_recognised_in_the_next_episode(pipeline_run, tmp_path, photos, photo_models):
    from pipelines.review.edits import append_correction
    from pipelines.shows.confirmed import sync_run

    storage, layout = _copy_run(pipeline_run, tmp_path)
    _add(storage, "obama", photos["obama"], photo_models)
    _run(storage, layout.ep_id)
    report = _report(storage, layout)
    obama_id = next(i.identity_id for i in report.identities if i.cast_id == "obama")
    guest_id = next(i.identity_id for i in report.identities if i.cast_id is None and i.visual_s > 3)

    def lock():
        from contextlib import nullcontext

        return nullcontext()

    append_correction(storage, layout, lambda identity, track: {"op": "reject", "identity": identity(obama_id), "cast_id": "obama"}, lock)
    view = append_correction(storage, layout, lambda identity, track: {"op": "mark", "identity": identity(guest_id), "kind": "guest", "label": "Ana"}, lock)
    assert sync_run(storage, view, NAMING.faces_per_identity)["added"] >= 1  # the guest's faces join the not-cast bank
    assert {e.kind for e in facebank.list_entries(storage, "test")} == {"cast", "guest"}
    _run(storage, layout.ep_id, overrides={"cluster.knn": 16})  # a re-cluster, and a re-naming
    report = _report(storage, layout)
    assert "obama" not in {m.cast_id for m in report.metrics}  # "not obama" held
    obama_now = next(i for i in report.identities if i.suggestions and i.suggestions[0].cast_id == "obama")
    assert obama_now.suggestions[0].rejected and obama_now.name_source is None
    assert next(i for i in report.identities if i.identity_id == guest_id).kind == "guest"
    # The same people in "episode 2": the guest is recognised from the not-cast bank, obama named again
    for area in ("manifests", "embeds", "frames"):
        shutil.copytree(tmp_path / area / layout.ep_id, tmp_path / area / "test-s01e02", ignore=shutil.ignore_patterns("corrections.json"))
    from pipelines.layout import RunLayout

    ep2 = RunLayout("test-s01e02", "main")
    _run(storage, ep2.ep_id)
    report2 = _report(storage, ep2)
    assert {m.cast_id for m in report2.metrics} == {"obama"}
    guests = [i for i in report2.identities if i.cast_id is None and i.suggestions]

    namings = {n.identity_id: n for n in IDENTITY_NAMES.read(storage, ep2).identities}
    assert any(namings[i.identity_id].guest_label == "Ana" for i in guests)


@pytest.mark.slow
def test_facebank_actor_rebuilds_from_storage_after_being_killed(ray_cluster, tmp_path, photos, photo_models):
    storage = LocalStorage(tmp_path)
    _add(storage, "obama", photos["obama"], photo_models)
    _add(storage, "biden", photos["biden"], photo_models)
    vectors = np.asarray([e.embedding for e in facebank.list_entries(storage, "test")], np.float32)
    faces, before = bank.score(storage, "test", "sface-2021dec-int8bq", vectors)
    ray_cluster.kill(bank.actor("test"), no_restart=True)
    faces_after, after = bank.score(storage, "test", "sface-2021dec-int8bq", vectors)
    assert faces == faces_after == 2 and before == after
    _add(storage, "hanks", photos["hanks"], photo_models)  # added by someone else: used at once
    assert bank.score(storage, "test", "sface-2021dec-int8bq", vectors)[0] == 3


@pytest.mark.slow
def test_season_table_and_review_routes(pipeline_run, tmp_path, photos, photo_models):
    from fastapi.testclient import TestClient

    from serve_app.api import build_app
    from serve_app.settings import ApiSettings

    storage, layout = _copy_run(pipeline_run, tmp_path)
    settings = ApiSettings(data_uri=storage.uri, db_path=str(tmp_path / "state.sqlite3"), allowed_hosts=("testserver",))
    client = TestClient(build_app(settings), base_url="http://testserver")
    r = client.post("/shows/test/cast/obama/faces", files=[("files", ("obama.jpg", photos["obama"].read_bytes(), "image/jpeg"))])
    assert r.status_code == 201, r.text
    assert r.json()["added"][0]["chip_url"].startswith("/shows/test/facebank/")
    assert client.get(r.json()["added"][0]["chip_url"]).headers["content-type"] == "image/jpeg"
    bad = client.post(
        "/shows/test/cast/obama/faces", files=[("files", ("wall.png", cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1].tobytes(), "image/png"))]
    )
    assert bad.status_code == 422 and "wall.png: no face found" in bad.json()["detail"]
    _run(storage, layout.ep_id)
    bundle = client.get(f"/episodes/{layout.ep_id}/faces_review_bundle").json()
    named = [i for i in bundle["identities"] if i["name_source"] == "auto"]
    assert [i["cast_id"] for i in named] == ["obama"] and named[0]["confidence"] > 0.5
    assert len(bundle["needs_review"]) == 2 and all(n["top_suggestion"] for n in bundle["needs_review"])
    # a reviewer confirms the others: one as a new cast member (its faces join the bank), one as a guest
    client.post("/shows/test/cast", json={"cast_id": "ana", "name": "Ana"})
    first, second = (n["identity_id"] for n in bundle["needs_review"])
    r = client.post(f"/episodes/{layout.ep_id}/assignments/cluster", json={"run_id": "main", "cluster_id": first, "cast_id": "ana"})
    assert r.status_code == 200 and r.json()["facebank"]["added"] >= 1
    assert client.post(f"/episodes/{layout.ep_id}/identities/{second}/mark", json={"run_id": "main", "kind": "guest", "label": "B"}).status_code == 200
    assert client.post(f"/episodes/{layout.ep_id}/identities/{second}/reject", json={"run_id": "main", "cast_id": "nobody"}).status_code == 404
    season = client.get("/shows/test/screentime").json()
    rows = {(r["ep_id"], r["cast_id"]): r for r in season["rows"]}
    assert rows[(layout.ep_id, "obama")]["named_by"] == "auto" and rows[(layout.ep_id, "ana")]["named_by"] == "manual"
    assert 0 < rows[(layout.ep_id, "obama")]["share_of_episode"] < 1
    assert season["episodes"][0]["needs_review"] == 0 and season["episodes"][0]["guest_s"] > 0
    csv = client.get("/shows/test/screentime?format=csv")
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.splitlines()[0].startswith("ep_id,cast_id,name,seconds,share_of_episode,named_by")
    # undoing the assignment takes its faces back out of the bank
    client.post(f"/episodes/{layout.ep_id}/assignments/cluster", json={"run_id": "main", "cluster_id": first, "cast_id": None})
    assert not [e for e in facebank.list_entries(storage, "test") if e.cast_id == "ana"]


@pytest.mark.slow
def test_calibration_replays_confirmed_episodes_and_the_naming_stage_uses_it(pipeline_run, tmp_path, photos, photo_models):
    from contextlib import nullcontext

    from pipelines.review.edits import append_correction
    from pipelines.shows.calibrate import calibrate
    from pipelines.shows.confirmed import sync_run

    storage, layout = _copy_run(pipeline_run, tmp_path)
    _add(storage, "obama", photos["obama"], photo_models)
    _add(storage, "ana", photos["t1_a"], photo_models)
    _run(storage, layout.ep_id)
    report = _report(storage, layout)
    for ident in report.identities:  # a reviewer confirms what the facebank named, and names the third
        cast = ident.cast_id or "bea"
        roster.create_cast(storage, "test", cast)
        view = append_correction(
            storage, layout, lambda identity, track, i=ident.identity_id, c=cast: {"op": "assign_cluster", "identity": identity(i), "cast_id": c}, nullcontext
        )
    sync_run(storage, view, NAMING.faces_per_identity)
    result = calibrate(storage, "test", "sface-2021dec-int8bq", NAMING.margin, NAMING.strong_lead)
    assert result.episodes == [layout.ep_id] and result.precision == 1.0
    by_t = {row["threshold"]: row for row in result.table}
    assert by_t[0.5]["named"] == 2 and by_t[0.5]["coverage"] > 0.6  # bea has no photo: her own faces are held out
    assert result.auto_threshold <= 0.5 and storage.exists("shows/test/calibration.json")
    again = _run(storage, layout.ep_id)
    assert {o.stage.value: o.action for o in again.outcomes}["naming"] == "computed"  # the new threshold names again

    assert IDENTITY_NAMES.read(storage, layout).auto_threshold == result.auto_threshold
