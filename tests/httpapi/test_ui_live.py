"""The web UI's live view of a LoRA training and the controls around it (issue 67), in Debian's
chromium (Playwright), against `contentgen api --local` as a laptop runs it:

- a training under way shows its step, loss, time left and each checkpoint's pictures and score,
  and a checkpoint scored while the page is open appears on it without a reload (the record is
  written as the operator writes it from the worker's reports, over the record's event stream);
- "Stop and keep the best" says first, in a dialog, which checkpoint it keeps, and then asks the
  laptop's run to stop (its stop file); the version it made then says where and why it stopped;
- "Make it the verdict" on an evaluation says what it changes, takes a note, and makes it the
  version's verdict;
- and the whole flow on the offline provider's simulated training, run by the laptop's API: each
  checkpoint appearing as it is scored, Stop and keep the best, then "Train on from version 1"
  (what it runs and costs first, in a dialog) making version 2, which says what it went on from.

Screenshots at 1280 and 420 px, checked for what they show (pixels where a picture is drawn,
geometry elsewhere); `CONTENTGEN_UI_SHOTS=DIR` keeps them for a person to look at.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from contentgen.catalog import Catalog, Filters, Page, to_record
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.catalog.evaluations import with_evaluation
from contentgen.cli.main import main
from contentgen.httpapi import ApiSettings, create_app
from contentgen.httpapi.creators import LocalCreator
from contentgen.pipeline.local_run import RunLock
from contentgen.pipeline.settings import PipelineSettings
from contentgen.pipeline.training_controls import local_stop_asked
from contentgen.store import LocalStore
from tests.catalog.factory import T0, lora_doc
from tests.conftest import EXAMPLES
from tests.harness.browser import (
    Tab,
    difference,
    fits,
    load,
    local_page,
    pbox,
    ready,
    until,
    violations,
)
from tests.harness.browser import settled_screenshot as screenshot
from tests.harness.browser import show_checked as show
from tests.harness.evaluations import LATER, evaluation
from tests.harness.live import running, training
from tests.harness.servers import serve_app

SIZES = {"wide": {"width": 1280, "height": 900}, "narrow": {"width": 420, "height": 900}}
SAMPLE = EXAMPLES / "media" / "sample.mp4"
OWNER = "demo-user"
LIVE = "live-0000-lora"
# Each checkpoint's grid a colour of its own, so a screenshot shows which is drawn where (BGR).
GRIDS = {250: (40, 40, 200), 500: (40, 160, 40), 750: (200, 90, 30)}


@dataclass
class Lab:
    base: str
    root: Path
    store: LocalStore
    catalog: Catalog
    work: Path
    ids: dict[str, str] = field(default_factory=dict)


def _grid(store: LocalStore, step: int) -> str:
    """Checkpoint `step`'s likeness grid, stored as the worker stores it; its URI."""
    picture = np.full((300, 600, 3), GRIDS[step], np.uint8)
    cv2.putText(picture, f"step {step}", (20, 160), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 4)
    ok, data = cv2.imencode(".jpg", picture)
    assert ok
    key = f"loras/{OWNER}/{LIVE}/v2/likeness/step-{step:06d}/likeness-grid.jpg"
    if not store.exists(key):
        store.put_once_bytes(key, data.tobytes(), "image/jpeg")
    return store.uri(key)


def _live(lab: Lab, step: int, scored: list[tuple[int, str, float | None]], **more: Any) -> None:
    """The record of live-avatar as the operator writes it when the worker reports `step`."""
    for point, *_ in scored:
        _grid(lab.store, point)
    folder = lab.store.uri(f"loras/{OWNER}/{LIVE}/v2") + "/"
    report = training(LIVE, step, scored, at=T0 + timedelta(hours=1), folder=folder, **more)
    previous = lab.catalog.get(LIVE)
    doc = running(LIVE, "live-avatar", report, previous=previous, owner=OWNER, progress=step // 10)
    lab.catalog.upsert({**doc, "origin": "local"})


def _fill(root: Path) -> tuple[LocalStore, dict[str, str]]:
    store_dir, catalog_dir = root / "store", root / "catalog"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CONTENTGEN_STORE", str(store_dir))
        env.setenv("CONTENTGEN_CATALOG", str(catalog_dir))
        env.chdir(root)
        assert main(["run", "--offline", "--source", str(SAMPLE), str(EXAMPLES / "loratraining.yaml")]) == 0
    store = LocalStore(store_dir)
    catalog = EmbeddedCatalog(catalog_dir)
    ids = {doc["name"]: doc["_id"] for doc in catalog.find(Filters(), page=Page(500)).docs}

    folder = f"loras/{OWNER}/{ids['demo-avatar']}/v1/likeness/e1/"
    grid = np.full((200, 400, 3), (40, 160, 40), np.uint8)
    store.put_once_bytes(folder + "likeness-grid.jpg", cv2.imencode(".jpg", grid)[1].tobytes(), "image/jpeg")
    again = evaluation(1, cost=0.0)
    again["likeness"]["gridUri"] = store.uri(folder + "likeness-grid.jpg")
    again["artifacts"] = [{"uri": again["likeness"]["gridUri"], "sizeBytes": 10, "contentType": "image/jpeg"}]

    def evaluated(doc: dict[str, Any] | None) -> dict[str, Any]:
        """demo-avatar's v1 evaluated again (e1, good), its run's own report poor."""
        assert doc is not None
        changed = with_evaluation(doc, again, now=LATER)
        assert changed is not None
        version = changed["versions"][0]
        version["likeness"] = {"verdict": "poor", "median": 0.2, "reasons": ["the run's own: poor"]}
        return changed

    catalog.modify(ids["demo-avatar"], evaluated)
    base = lora_doc(LIVE, name="live-avatar", versions=1, owner=OWNER, uri_of=store.uri)
    catalog.upsert({**running(LIVE, "live-avatar", None, previous=base, owner=OWNER), "origin": "local"})
    ids["live-avatar"] = LIVE
    catalog.close()
    return store, ids


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    root = Path(tempfile.mkdtemp(prefix="contentgen-live-ui-"))
    try:
        store, ids = _fill(root)
        catalog = EmbeddedCatalog(root / "catalog")
        work = root / "work"
        creator = LocalCreator(catalog, lambda: store, offline=True, settings=PipelineSettings(work_dir=work))
        settings = ApiSettings(
            catalog="unused://",
            store=str(store.root),
            api_auth=["local"],
            api_create="local",
            api_offline=True,
            stream_poll_seconds=0.1,
        )
        app = create_app(settings, catalog=catalog, store=lambda: store, creator=creator)
        with serve_app(app) as base:
            yield Lab(base, root, store, catalog, work, ids)
        creator.close()
        catalog.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def open_page(chromium: Any, lab: Lab) -> Iterator[Callable[..., Tab]]:
    contexts: list[Any] = []

    def start(size: str = "wide") -> Tab:
        context = chromium.new_context(viewport=SIZES[size], device_scale_factor=1)
        contexts.append(context)
        page, outside = local_page(context, lab.base)
        load(page, lab.base + "/")
        ready(page, "gallery")
        return Tab(page, outside, SIZES[size]["width"])

    yield start
    for context in contexts:
        context.close()


def _text(page: Any, selector: str) -> str:
    return str(page.inner_text(selector))


@pytest.mark.parametrize("size", ["wide", "narrow"])
def test_a_training_under_way_shows_each_checkpoint_as_it_is_scored_and_stops_keeping_the_best(
    open_page: Callable[..., Tab], lab: Lab, size: str
) -> None:
    _live(lab, 300, [(250, "poor", 0.21)])
    tab = open_page(size)
    page = tab.page
    show(page, f"#/lora/{LIVE}")
    until(page, "document.querySelectorAll('#live-checkpoints figure').length === 1")
    assert "300 of 1000" in _text(page, "#live-step")
    assert _text(page, "#live-eta").startswith("about 18 min (at ")
    assert page.locator("#live-training svg.loss-curve").count() == 1
    shot = screenshot(page)
    card = page.locator("#live-checkpoints figure[data-step='250'] img")
    assert (
        difference(shot, pbox(page, card), lab.store.get_bytes(lab.store.key_of(_grid(lab.store, 250)))) < 25
    )
    fits(tab, "main *, .dialog *")

    # the worker scores checkpoint 500: the page shows it without a reload
    page.evaluate("window.sameLoad = 1")
    _live(lab, 510, [(250, "poor", 0.21), (500, "good", 0.55)])
    until(page, "document.querySelectorAll('#live-checkpoints figure').length === 2")
    assert page.evaluate("window.sameLoad") == 1
    assert "510 of 1000" in _text(page, "#live-step") and _text(page, "#live-best") == "step 500"
    until(page, "[...document.images].every((i) => i.complete && i.naturalWidth > 0)")
    best = page.locator("#live-checkpoints figure.best")
    assert best.get_attribute("data-step") == "500" and "the best so far" in best.inner_text()
    points = page.evaluate(
        "[...document.querySelectorAll('#live-training svg.likeness-curve circle.point')]"
        ".map((c) => [Number(c.dataset.step), c.classList.contains('chosen')])"
    )
    assert points == [[250, False], [500, True]]
    shot = screenshot(page)
    assert violations(page) == []
    grid = lab.store.get_bytes(lab.store.key_of(_grid(lab.store, 500)))
    assert difference(shot, pbox(page, best.locator("img")), grid) < 25

    # Stop and keep the best: what it keeps first, in a dialog; then the laptop's run is asked
    page.click("#stop-training")
    page.wait_for_selector("#stop-dialog")
    said = _text(page, "#stop-dialog")
    assert "keeps checkpoint 500 (good, median 0.55), the best scored so far" in said
    assert _text(page, "#stop-dialog-confirm") == "Stop and keep step 500"
    assert local_stop_asked(lab.work, LIVE, 2) is None  # nothing asked before it is confirmed
    screenshot(page)
    fits(tab, "main *, .dialog *")
    assert violations(page) == []
    going_on = RunLock(lab.work, LIVE)  # its run's process (a run no process holds is not stopped)
    assert going_on.acquire()
    try:
        page.click("#stop-dialog-confirm")
        page.wait_for_selector("#stop-asked")
    finally:
        going_on.release()
    assert page.locator("#stop-dialog").count() == 0
    asked = local_stop_asked(lab.work, LIVE, 2)
    assert asked is not None and asked["stop"] == "keep-best"

    # the worker sees it and stops; the version made says where and why, the page shows it
    _live(lab, 510, [(250, "poor", 0.21), (500, "good", 0.55)], stop_asked="keep-best")
    until(page, "document.getElementById('stop-training')?.textContent === 'Stop asked'")
    made = lora_doc(LIVE, name="live-avatar", versions=2, owner=OWNER, uri_of=lab.store.uri,
                    previous=lab.catalog.get(LIVE))  # fmt: skip
    made["versions"][1]["stopped"] = {
        "how": "asked", "step": 510, "plannedSteps": 1000, "by": OWNER, "stepsSaved": 490,
        "why": "a person asked to stop; checkpoint 500, the best scored so far, is the model",
    }  # fmt: skip
    lab.catalog.upsert({**made, "origin": "local"})
    until(
        page, "document.getElementById('live-training') === null && !!document.getElementById('stopped-v2')"
    )
    assert _text(page, "#stopped-v2").startswith("at step 510 of 1000 (asked, by demo-user): a person asked")
    screenshot(page)
    _live_again(lab)


def test_a_video_loras_checkpoints_are_said_to_be_clips_frames(
    open_page: Callable[..., Tab], lab: Lab
) -> None:
    """A Wan LoRA's checkpoints are drawn as clips, each picture of its grid four frames across one:
    the live view says so above the cards, and each card's picture says what it is."""
    _live(lab, 300, [(250, "poor", 0.21)], clip_frames=4)
    page = open_page("wide").page
    show(page, f"#/lora/{LIVE}")
    until(page, "document.querySelectorAll('#live-checkpoints figure').length === 1")
    said = (
        "A video LoRA: each checkpoint's grid holds clips (each a clip's 4 frames, first to last, scored as"
    )
    assert _text(page, "#live-clips").startswith(said)
    assert (
        page.locator("#live-checkpoints img").get_attribute("alt") == "clips' frames of checkpoint step 250"
    )
    _live_again(lab)


def _live_again(lab: Lab) -> None:
    """live-avatar training v2 again, for the next size's test."""
    base = lora_doc(LIVE, name="live-avatar", versions=1, owner=OWNER, uri_of=lab.store.uri)
    lab.catalog.upsert({**running(LIVE, "live-avatar", None, previous=base, owner=OWNER), "origin": "local"})
    shutil.rmtree(lab.work / LIVE, ignore_errors=True)


def test_an_evaluation_is_made_the_verdict_from_its_row(open_page: Callable[..., Tab], lab: Lab) -> None:
    uid = lab.ids["demo-avatar"]
    for size in ("narrow", "wide"):
        tab = open_page(size)
        page = tab.page
        show(page, f"#/lora/{uid}?tab=v1")
        page.click("#evaluations-v1 tr[data-evaluation='1'] button.choose-verdict")
        page.wait_for_selector("#verdict-dialog")
        said = _text(page, "#verdict-dialog")
        assert "e1 (good, median 0.51) in place of its run's own (poor, median 0.20)" in said
        fits(tab, "main *, .dialog *")
        screenshot(page)
        assert violations(page) == []
        if size == "narrow":
            page.click("#verdict-dialog-cancel")
            assert page.locator("#verdict-dialog").count() == 0
            continue
        page.fill("#verdict-dialog-note", "seeds 1 and 2 show her better")
        page.click("#verdict-dialog-confirm")
        until(page, "document.querySelector('#verdict-v1')?.dataset.verdict === 'good'")
        record = to_record(lab.catalog.get(uid)).wire()  # type: ignore[arg-type]
        choice = record["versions"][0]["likenessChoice"]
        assert (choice["how"], choice["evaluation"], choice["note"]) == (
            "chosen",
            1,
            "seeds 1 and 2 show her better",
        )
        assert (
            page.locator("#evaluations-v1 tr[data-evaluation='0'] button.choose-verdict").count() == 1
        )  # back
        screenshot(page)


CARDS = """[...document.querySelectorAll('#live-checkpoints figure')].map((f) => ({
    step: Number(f.dataset.step), best: f.classList.contains('best'),
    kept: f.querySelector('img')?.dataset.kept === '1'}))"""


def _a_newer_checkpoint_leaves_the_earlier_pictures_as_they_were(page: Any) -> None:
    """Every step's report redraws the live view; a checkpoint's card whose checkpoint did not
    change stays the same element, its picture not fetched again (it used to be replaced at every
    step: the pictures flashed, and a screenshot rarely caught them all drawn). Only the best's
    card, whose mark moves, is drawn anew."""
    page.evaluate("document.querySelectorAll('#live-checkpoints img').forEach((i) => { i.dataset.kept = 1 })")
    before = page.evaluate(CARDS)
    until(page, f"document.querySelectorAll('#live-checkpoints figure').length > {len(before)}")
    after = {card["step"]: card for card in page.evaluate(CARDS)}
    best = {c["step"] for c in before if c["best"]} | {s for s, c in after.items() if c["best"]}
    unchanged = [card["step"] for card in before if card["step"] not in best]
    assert unchanged, before  # two checkpoints or more, one of them not the best
    assert [s for s in unchanged if not after[s]["kept"]] == [], (before, after)


def test_a_real_training_is_followed_stopped_and_gone_on_from_on_its_page(
    open_page: Callable[..., Tab], lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offline provider's simulated training, run by the laptop's API as `contentgen api --local`
    runs it (each checkpoint stored, scored and reported as it is made, as the cluster's trainer
    does): its page shows each checkpoint as it comes, without a reload; Stop and keep the best
    ends it with its best checkpoint so far as the model; Train on from the version it made runs
    the next version here, which says what it went on from."""
    import httpx

    monkeypatch.setenv("CONTENTGEN_OFFLINE_STEP_SECONDS", "0.05")
    spec = {
        "owner": OWNER,
        "source": {"url": str(SAMPLE)},
        "triggerWord": "dmavatar",
        "dataset": {"captioning": "template", "maxFrames": 12, "minFrames": 4},
        "training": {"steps": 1000, "checkpointEvery": 100},
        "evaluation": {"checkpoints": 10},
    }
    body = {"kind": "LoraTraining", "metadata": {"name": "watched-avatar"}, "spec": spec}
    made = httpx.post(f"{lab.base}/api/resources", json=body, timeout=60)
    assert made.status_code == 201, made.text
    uid = made.json()["jobId"]
    tab = open_page("wide")
    page = tab.page
    show(page, f"#/lora/{uid}")
    page.wait_for_selector("#live-training")
    page.evaluate("window.sameLoad = 1")
    until(page, "document.querySelectorAll('#live-checkpoints figure').length >= 2")
    assert page.evaluate("window.sameLoad") == 1  # they came over the stream, the page as it was
    _a_newer_checkpoint_leaves_the_earlier_pictures_as_they_were(page)
    until(page, "[...document.querySelectorAll('#live-checkpoints img')].every((i) => i.naturalWidth > 0)")
    screenshot(page)
    page.click("#stop-training")
    page.wait_for_selector("#stop-dialog")
    assert "the best scored so far" in _text(page, "#stop-dialog")
    page.click("#stop-dialog-confirm")
    page.wait_for_selector("#stop-asked")
    until(
        page, "document.getElementById('live-training') === null && !!document.getElementById('stopped-v1')"
    )
    assert "(asked, by local)" in _text(page, "#stopped-v1")  # the laptop's caller, who asked
    record = lab.catalog.get(uid)
    assert record is not None and record["versions"][0]["stopped"]["how"] == "asked"
    screenshot(page)

    monkeypatch.setenv("CONTENTGEN_OFFLINE_STEP_SECONDS", "0")
    page.click("#continue-v1 summary")
    page.fill("#continue-steps-v1", "200")
    page.click("#continue-ask-button-v1")
    page.wait_for_selector("#continue-dialog")
    assert "on from v1 for 200 more steps, as a new version" in _text(page, "#continue-dialog")
    page.click("#continue-dialog-confirm")
    until(page, "document.querySelector('[data-tab=v2]') !== null")
    show(page, f"#/lora/{uid}?tab=v2")
    assert _text(page, "#continued-v2").startswith("version 1, after its step ")
    screenshot(page)
    narrow = open_page("narrow")
    show(narrow.page, f"#/lora/{uid}?tab=v2")
    fits(narrow, "main *, .dialog *")
    screenshot(narrow.page)
    assert violations(narrow.page) == []
