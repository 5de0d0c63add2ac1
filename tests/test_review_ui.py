"""The review pages in a real headless Chromium (Debian's ``chromium``, driven by Playwright's Python
package): a reviewer names every identity by keyboard alone, merges two, undoes, and watches screen
time follow; a second episode is named with one keystroke per identity from the facebank; the
episodes page shows a CLI-made run and a running job's live progress. No 5xx and no console error
anywhere. Screenshots of every page, at 1280x800 and 390x844, go to ``test-artifacts/review/``."""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from .conftest import TEST_EP, _free_port

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "review"


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); the review pages are not tested in a browser here")
    playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(pipeline_run, tmp_path_factory, ray_cluster):
    """The API and review pages (``build_app``) over HTTP on loopback, on a copy of the CLI-made run."""
    import uvicorn

    from serve_app.api import build_app
    from serve_app.settings import ApiSettings

    storage, *_ = pipeline_run
    data = tmp_path_factory.mktemp("review-data")
    for area in ("manifests", "embeds", "frames"):
        shutil.copytree(f"{storage.uri}/{area}", data / area, ignore=shutil.ignore_patterns("corrections.json"))
    port = _free_port()
    app = build_app(ApiSettings(data_uri=str(data), db_path=str(data / "state.sqlite3"), allowed_hosts=("127.0.0.1",)))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", data
    srv.should_exit = True
    thread.join(timeout=10)


class Watched:
    """A page whose console errors and 5xx responses are collected."""

    def __init__(self, browser, width: int = 1280, height: int = 800):
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("response", lambda r: self.problems.append(f"{r.status} {r.url}") if r.status >= 500 or r.status == 404 else None)

    def shot(self, name: str) -> None:
        """A full-page screenshot once every thumbnail has loaded (lazy ones included), as a reviewer sees it."""
        self.page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => (i.loading = 'eager'))")
        self.page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=15000)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.page.close()
        assert not self.problems, self.problems


def _names(page) -> list[str]:
    return page.locator(".identity .name").all_inner_texts()


def _seconds(page, label: str) -> float:
    page.wait_for_selector("svg.chart")
    texts = page.locator("svg.chart > g").all_text_contents()  # "Ana6.1 s"
    for t in texts:
        m = re.fullmatch(rf"{re.escape(label)}([\d.]+) s", t)
        if m:
            return float(m.group(1))
    raise AssertionError(f"{label} not in {texts}")


def _wait_names(page, expected: int, pattern: str) -> None:
    page.wait_for_function(f"document.querySelectorAll('.identity .name.{pattern}').length >= {expected}", timeout=15000)


def test_a_reviewer_names_merges_and_undoes_by_keyboard(browser, server):
    base, _ = server
    w = Watched(browser)
    page = w.page
    page.goto(f"{base}/review/episodes/{TEST_EP}")
    page.wait_for_selector(".identity")
    identities = page.locator(".identity").count()
    assert identities == 3 and _names(page) == ["Unnamed"] * 3
    w.shot("episode_before_1280")
    for k, name in enumerate(["Obama", "Ana", "Bea"]):  # a, type the name, Enter: each creates the cast member and assigns
        page.keyboard.press("a")
        page.wait_for_selector("dialog[open] input")
        page.keyboard.type(name)
        page.keyboard.press("Enter")
        _wait_names(page, k + 1, "manual")
    names = _names(page)
    assert [n.split(" (")[0] for n in names] == ["Obama", "Ana", "Bea"], names
    page.keyboard.press("?")
    page.wait_for_selector("dialog[open] table.keys")
    w.shot("help_overlay")
    page.keyboard.press("Escape")

    page.keyboard.press("t")  # screen time, before the merge
    ana_before = _seconds(page, "Ana")
    bea = _seconds(page, "Bea")
    w.shot("screentime_1280")
    page.locator("svg.timeline").click(position={"x": 400, "y": 40})
    page.wait_for_selector("#preview img.frame")
    page.wait_for_function("document.querySelector('#preview img.frame').naturalWidth > 0")
    w.shot("screentime_frame")
    page.keyboard.press("r")
    page.wait_for_selector(".identity")

    page.keyboard.press("End")  # ignored: not a shortcut
    page.keyboard.press("j")
    page.keyboard.press("j")  # Bea
    page.keyboard.press("m")
    page.keyboard.press("k")  # Ana
    page.keyboard.press("m")
    page.wait_for_selector("dialog[open] .side-by-side")
    w.shot("merge_confirm")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('.identity').length === 2")
    page.keyboard.press("t")
    assert _seconds(page, "Ana") >= ana_before + bea - 0.6  # Bea's seconds went to Ana (overlaps count once)
    page.keyboard.press("r")
    page.wait_for_selector(".identity")
    page.keyboard.press("u")  # undo the merge
    page.wait_for_function("document.querySelectorAll('.identity').length === 3")
    page.keyboard.press("t")
    assert _seconds(page, "Ana") == pytest.approx(ana_before, abs=0.01)
    assert _seconds(page, "Bea") == pytest.approx(bea, abs=0.01)
    w.close()


def test_suggestions_name_a_new_episode_at_one_keystroke_each(browser, server, ray_cluster):
    """After the first test confirmed three people, the facebank holds their faces: the same people in
    "episode 2" come with the right suggestion first, and 1 accepts it (and moves on)."""
    from pipelines.runner import run_pipeline
    from pipelines.schemas import StageName
    from pipelines.storage import LocalStorage

    base, data = server
    ep2 = "test-s01e02"
    for area in ("manifests", "embeds", "frames"):
        shutil.copytree(data / area / TEST_EP, data / area / ep2, ignore=shutil.ignore_patterns("corrections.json"))
    run_pipeline(storage=LocalStorage(data), ep_id=ep2, stages=[StageName.cluster, StageName.naming, StageName.screentime])
    w = Watched(browser)
    page = w.page
    page.goto(f"{base}/review/episodes/{ep2}")
    page.wait_for_selector(".identity")
    n = page.locator(".identity").count()
    for k in range(n):
        page.keyboard.press("1")
        _wait_names(page, k + 1, "manual")
    assert all(name.endswith("(confirmed)") for name in _names(page)) and len(_names(page)) == n
    w.shot("episode_named_by_suggestions")
    w.close()


def test_a_reviewer_names_an_unseen_voice_on_the_screen_time_page(browser, server, test_episode, tmp_path):
    """An episode with two lines: t1_b speaks while alone on screen, then someone speaks over an empty
    shot. The screen-time page lists both voices with why each was (not) linked; picking a cast member
    for the unseen one names it, and the speaking table gains that person's voice-only seconds."""
    from pipelines.runner import run_pipeline
    from pipelines.sample import speech as tts
    from pipelines.shows import roster
    from pipelines.storage import LocalStorage

    if not tts.have_tts():
        pytest.skip(f"speech engines missing: {', '.join(tts.missing_tts())}")
    base, data = server
    video, _ = test_episode
    seen, unseen = tts.speak("t1_b", "Hello there, I am the second guest tonight."), tts.speak("obama", "And nobody can see me at all right now.")
    with_audio = tts.mux_audio(Path(video), tts.mix([tts.Line("t1_b", 4.8, seen), tts.Line("obama", 10.4, unseen)], 14.0), tmp_path / "with_audio.mp4")
    storage = LocalStorage(data)
    run_pipeline(storage=storage, ep_id="talk-s01e01", video=str(with_audio))
    roster.create_show(storage, "talk")
    roster.create_cast(storage, "talk", "barack", "Barack Obama")
    w = Watched(browser)
    page = w.page
    page.goto(f"{base}/review/episodes/talk-s01e01/screentime")
    page.wait_for_selector("table.voices")
    rows = page.locator("table.voices tbody tr")
    assert rows.count() == 2
    whys = [rows.nth(k).locator("td").nth(3).inner_text() for k in range(2)]
    assert any(w.startswith("alone on screen") for w in whys) and any(w.startswith("never the only face") for w in whys), whys
    unnamed = page.locator("table.voices tbody tr", has_text="(unnamed)")
    voice = unnamed.get_attribute("data-voice")
    unnamed.locator("select").select_option(label="Barack Obama")
    page.wait_for_selector(f'table.voices tr[data-voice="{voice}"] td.manual')
    row = page.locator("table.speaking tbody tr", has_text="Barack Obama")
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    speaking, both, voice_only = (float(re.sub(r"[^0-9.]", "", c)) for c in cells[1:])
    assert abs(speaking - len(unseen) / tts.RATE) < 0.3 and both == 0 and voice_only == speaking
    w.shot("screentime_voices")
    page.goto(f"{base}/review/shows/talk")  # the season table: never on screen, heard speaking
    page.wait_for_selector("table.season td .speaks")
    cell = page.locator("table.season tbody tr", has_text="talk-s01e01").locator("td").first.inner_text()
    assert cell.split()[0:2] == ["0.0", "s"] and "speaks" in cell and abs(float(cell.split("speaks")[1].split()[0]) - speaking) < 0.11, cell
    w.shot("show_speaking")
    w.close()


def test_episodes_page_shows_cli_runs_and_live_progress(browser, server, test_episode):
    import httpx as requests

    base, _ = server
    video, _ = test_episode
    ep = "live-s01e01"
    assert requests.post(f"{base}/episodes", json={"show_slug_or_id": "live", "season_number": 1, "episode_number": 1}).status_code == 201
    with open(video, "rb") as fh:
        assert requests.post(f"{base}/episodes/{ep}/video", files={"file": ("ep.mp4", fh, "video/mp4")}).status_code == 200
    w = Watched(browser)
    page = w.page
    page.goto(f"{base}/review/")
    cli_row = page.locator(f"tr[data-ep='{TEST_EP}']")
    cli_row.wait_for()
    assert cli_row.locator(".chip.succeeded").count() == 6  # the CLI-made run, adopted: every stage, audio included
    row = page.locator(f"tr[data-ep='{ep}']")
    row.locator("select").select_option("detect_track")
    row.locator("button.start").click()
    page.wait_for_function(f"(document.querySelector(\"tr[data-ep='{ep}'] .progress-text\") || {{}}).textContent?.includes('detect_track')", timeout=30000)
    seen = set()
    deadline = time.time() + 60
    while time.time() < deadline:
        text = page.locator(f"tr[data-ep='{ep}']").inner_text()
        seen.add(re.sub(r"\s+", " ", text))
        if row.locator(".chip.succeeded").count() >= 1 and "Start" in text:
            break
        page.wait_for_timeout(200)
    progress = [t for t in seen if "running" in t and "%" in t]
    assert progress, seen  # live progress shown while it ran
    assert row.locator(".chip.succeeded").count() == 1  # detect_track done, shown without a reload
    w.shot("episodes_1280")
    w.close()


@pytest.mark.parametrize("width,height", [(1280, 800), (390, 844)])
def test_every_page_fits_the_screen(browser, server, width, height):
    base, _ = server
    for name, path, ready in [
        ("episodes", "/review/", "table.episodes"),
        ("episode", f"/review/episodes/{TEST_EP}", ".identity"),
        ("screentime", f"/review/episodes/{TEST_EP}/screentime", "svg.timeline"),
        ("show", "/review/shows/test", ".cast-card"),
    ]:
        w = Watched(browser, width, height)
        w.page.goto(base + path)
        w.page.wait_for_selector(ready)
        overflow = w.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{name} scrolls sideways at {width}px"
        w.shot(f"{name}_{width}")
        assert _reached_by_tab(w.page, 40), f"{name}: a control cannot be reached with Tab"
        w.close()


def _reached_by_tab(page, first: int) -> bool:
    """Tab through the page from the top: every one of the first ``first`` visible controls gets focus."""
    count = page.evaluate(
        """() => { const els = [...document.querySelectorAll('button, a[href], input, select')].filter(e => e.getClientRects().length);
                   els.forEach((e, i) => (e.dataset.tabcheck = String(i))); return els.length; }"""
    )
    wanted = {str(i) for i in range(min(count, first))}
    page.evaluate("document.activeElement && document.activeElement.blur()")
    reached = set()
    for _ in range(len(wanted) + 10):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement ? document.activeElement.dataset.tabcheck || '' : ''"))
        if wanted <= reached:
            return True
    return False


def test_a_page_loaded_before_a_recluster_reloads_instead_of_correcting_other_people(browser, server):
    """The run is re-clustered (its ids now name other tracks) while the page is open: the reviewer's
    keystroke gets a 409, nothing is written, the page reloads with the new clustering, and the same
    keystroke then lands on what the reviewer now sees."""
    import json

    base, data = server
    source = data / "manifests" / TEST_EP / "runs"
    main = next(p for p in source.iterdir() if (p / "identities.json").is_file() and p.name != "stale")
    for area in ("manifests", "embeds", "frames"):
        src = data / area / TEST_EP / "runs" / main.name
        if src.is_dir():
            shutil.copytree(src, data / area / TEST_EP / "runs" / "stale", ignore=shutil.ignore_patterns("corrections.json"), dirs_exist_ok=True)
    w = Watched(browser)
    page = w.page
    page.goto(f"{base}/review/episodes/{TEST_EP}?run_id=stale")
    page.wait_for_selector(".identity")
    first = page.locator(".identity").first.get_attribute("id")

    identities = source / "stale" / "identities.json"
    clustering = json.loads(identities.read_text())
    groups = [i["track_ids"] for i in clustering["identities"]]
    for ident, tracks in zip(clustering["identities"], groups[1:] + groups[:1]):  # a re-cluster: every id now names other tracks
        ident["track_ids"], ident["size"] = tracks, len(tracks)
    identities.write_text(json.dumps(clustering))

    page.keyboard.press("n")  # not a face, on the card the reviewer is looking at
    page.wait_for_selector("#toast.show.error")
    assert "re-clustered" in page.locator("#toast").inner_text()
    assert not (source / "stale" / "corrections.json").exists()  # nothing landed on the tracks the id names now
    page.wait_for_selector(".identity")
    page.keyboard.press("n")  # on the reloaded page, the same keystroke is taken
    page.wait_for_function("document.querySelector('#toast').textContent.includes('not a face')")
    log = json.loads((source / "stale" / "corrections.json").read_text())
    assert [c["op"] for c in log["corrections"]] == ["mark"] and first
    w.problems = [p for p in w.problems if "409" not in p]  # Chromium logs the refused request as a console error
    w.close()


def test_fragments_strangers_and_bulk_actions_take_one_key_each(browser, server):
    """A person split in two is put back with one key (M: the other fragment is the first candidate);
    with no facebank match, 1 names nobody and the card says so; A then g marks every stranger guest in
    one step, and one u takes the whole step back."""
    import json

    from pipelines.corrections import CorrectionsLog

    base, data = server
    ep = "frag-s01e01"  # a show without a facebank: nobody is a likely cast match
    for area in ("manifests", "embeds", "frames"):
        shutil.copytree(data / area / TEST_EP, data / area / ep, ignore=shutil.ignore_patterns("corrections.json"))
    runs = data / "manifests" / ep / "runs"
    run = next(p.name for p in runs.iterdir() if (p / "identities.json").is_file())
    ident_file = runs / run / "identities.json"
    clustering = json.loads(ident_file.read_text())
    person = max(clustering["identities"], key=lambda i: len(i["track_ids"]))
    assert len(person["track_ids"]) >= 2
    half = person["track_ids"][len(person["track_ids"]) // 2 :]
    person["track_ids"] = person["track_ids"][: len(person["track_ids"]) // 2]
    person["size"] = len(person["track_ids"])
    fragment = {**person, "identity_id": "id_0099", "track_ids": half, "size": len(half), "rep_face_id": None}
    clustering["identities"].append(fragment)
    ident_file.write_text(json.dumps(clustering))
    for stale in ("identity_names.json", "analytics"):
        target = runs / run / stale
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)

    def log() -> list:
        path = runs / run / "corrections.json"
        return CorrectionsLog.model_validate_json(path.read_text()).corrections if path.is_file() else []

    w = Watched(browser)
    page = w.page
    page.goto(f"{base}/review/episodes/{ep}?run_id={run}")
    page.wait_for_selector(".identity")
    cards = page.locator(".identity")
    assert cards.count() == 4
    assert page.locator(".nomatch").count() == 4  # no facebank: no likely cast match anywhere
    page.keyboard.press("1")  # the habit: names nobody
    page.wait_for_selector("#toast.show.error")
    assert "no likely cast match" in page.locator("#toast").inner_text() and log() == []
    w.shot("episode_no_likely_match")

    fragment_card = page.locator("#card-id_0099")
    first_candidate = fragment_card.locator(".candidate").first.inner_text()
    assert person["identity_id"] in first_candidate, first_candidate  # the other half of the person comes first
    fragment_card.locator("header").click()
    page.keyboard.press("M")
    page.wait_for_function("document.querySelectorAll('.identity').length === 3")
    assert [c.op for c in log()] == ["merge"]

    page.keyboard.press("A")  # every stranger
    page.wait_for_function("document.querySelectorAll('.identity.picked').length === 3")
    w.shot("episode_bulk_selected")
    page.keyboard.press("g")
    page.wait_for_function("document.querySelectorAll('.identity .name.guest').length === 3")
    marks = [c for c in log() if c.op == "mark"]
    assert len(marks) == 3 and len({c.group for c in marks}) == 1 and marks[0].group
    page.keyboard.press("u")  # one undo for the whole step
    page.wait_for_function("document.querySelectorAll('.identity .name.guest').length === 0")
    assert sorted(c.target_seq for c in log() if c.op == "undo") == sorted(c.seq for c in marks)
    page.locator("#card-id_0099, .identity").first.locator("input.pick").click()  # the mouse selects too
    assert page.locator(".identity.picked").count() == 1
    w.close()
