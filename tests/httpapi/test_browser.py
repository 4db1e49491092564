"""The web UI in a real browser: Debian's chromium, headless, driven by Playwright (its own
browser download is not used), against `contentgen api` serving a catalog that `contentgen run
--offline` filled with all three kinds. Screenshots are checked for what they show: the pixels
where a thumbnail is drawn match that thumbnail, the progress bar is filled as far as the job
has come. Every request the browser makes must go to the server under test.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from contentgen.catalog import Catalog, Filters
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.cli.main import main
from contentgen.httpapi import ApiSettings, create_app
from contentgen.pricing import Budgets
from contentgen.store import LocalStore
from tests.conftest import EXAMPLES
from tests.harness.browser import (
    WAIT_MS,
    WHITE,
    box_of,
    difference,
    load,
    local_page,
    ready,
    region,
    screenshot,
    show,
    sign_in,
    until,
)
from tests.harness.records import WAITS, live_job
from tests.harness.servers import serve_app

TOKENS = {
    "demo-user": "demo-user-token-0123456789",
    "bob": "bob-token-0123456789",
    "carol": "carol-token-0123456789",  # 30 transcripts: more than a page
    "ops": "ops-admin-token-0123456789",  # an admin
}
CAROLS = 30
SAMPLE = EXAMPLES / "media" / "sample.mp4"
BAR_BGR = (214, 88, 36)  # #2458d6, the progress bar's fill (style.css --bar)


@dataclass
class World:
    base: str
    root: Path
    store: LocalStore
    catalog: Catalog
    ids: dict[str, str] = field(default_factory=dict)


def _run(*args: str) -> None:
    assert main(["run", "--offline", *args]) == 0


def _fill(root: Path) -> tuple[LocalStore, dict[str, str]]:
    store_dir, catalog_dir = root / "store", root / "catalog"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CONTENTGEN_STORE", str(store_dir))
        env.setenv("CONTENTGEN_CATALOG", str(catalog_dir))
        env.delenv("CONTENTGEN_ALLOW_PRIVATE_SOURCES", raising=False)
        env.chdir(root)
        _run("--source", str(SAMPLE), str(EXAMPLES / "loratraining.yaml"))
        _run(str(EXAMPLES / "imagegeneration-lora.yaml"))
        _run(str(EXAMPLES / "imagegeneration.yaml"))
        _run("--source", str(SAMPLE), str(EXAMPLES / "transcription.yaml"))
        bobs = yaml.safe_load((EXAMPLES / "imagegeneration.yaml").read_text())
        bobs["metadata"]["name"] = "bobs-fox"
        bobs["spec"].update(owner="bob", prompt="A red fox in the snow, for bob", numImages=1)
        (root / "bob.yaml").write_text(yaml.safe_dump(bobs))
        _run(str(root / "bob.yaml"))
    store = LocalStore(store_dir)
    catalog = EmbeddedCatalog(catalog_dir)
    ids = {doc["name"]: doc["_id"] for doc in catalog.find(Filters(), page=_all()).docs}
    lora = catalog.get(ids["demo-avatar"])
    assert lora is not None and lora["versions"][0]["contactSheetThumbnailUri"]  # the dataset stage's
    # A job that is still running, for the live view.
    catalog.upsert(live_job(catalog, "live-0000-job", "live-interview", 10, "fetch"))
    ids["live-interview"] = "live-0000-job"
    # One that waits: over its owner's budget.
    catalog.upsert(live_job(catalog, "wait-0000-job", "over-budget", 0, "", "Pending", reason=WAITS))
    ids["over-budget"] = "wait-0000-job"
    from tests.catalog.factory import T0, transcript_doc

    for n in range(CAROLS):
        catalog.upsert(
            transcript_doc(f"carol-{n:02d}", owner="carol", name=f"carol-call-{n:02d}", created=T0 + n * HOUR)
        )
    catalog.close()
    return store, ids


HOUR = timedelta(hours=1)


def _all() -> Any:
    from contentgen.catalog import Page

    return Page(500)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    root = Path(tempfile.mkdtemp(prefix="contentgen-ui-"))
    try:
        store, ids = _fill(root)
        tokens = root / "tokens.yaml"
        entries = [
            {"owner": o, "token": t, **({"admin": True} if o == "ops" else {})} for o, t in TOKENS.items()
        ]
        tokens.write_text(yaml.safe_dump({"tokens": entries}))
        catalog = EmbeddedCatalog(root / "catalog")
        settings = ApiSettings(
            catalog="unused://",
            store=str(store.root),
            api_tokens_file=tokens,
            stream_poll_seconds=0.1,
            budgets=Budgets(owner_monthly_usd=5.0, owners={"demo-user": 2.0}),
        )
        app = create_app(settings, catalog=catalog, store=lambda: store)
        with serve_app(app) as base:
            yield World(base, root, store, catalog, ids)
        catalog.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Browser:
    page: Any
    outside: list[str]  # requests to anywhere but the server under test (all refused)


@pytest.fixture
def open_browser(chromium: Any, world: World, tmp_path: Path) -> Iterator[Callable[[str], Browser]]:
    contexts: list[Any] = []

    def start(owner: str) -> Browser:
        context = chromium.new_context(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
        contexts.append(context)
        page, outside = local_page(context, world.base)
        sign_in(page, world.base, TOKENS[owner])
        until(page, "[...document.images].every((i) => i.complete)")
        return Browser(page, outside)

    yield start
    for context in contexts:
        context.close()


def stored(world: World, uri: str) -> bytes:
    return world.store.get_bytes(world.store.key_of(uri))


def filled_fraction(shot: np.ndarray, box: dict[str, float]) -> float:
    """How much of a progress bar is drawn in its fill colour, along its middle row."""
    bar = region(shot, box)
    row = bar[bar.shape[0] // 2, 2:-2].astype(np.int32)  # inside the border
    filled = np.abs(row - np.array(BAR_BGR)).sum(axis=1) < 60
    return float(filled.mean())


# --- the tests --------------------------------------------------------------------------------


def test_the_gallery_shows_each_image_as_its_thumbnail(
    open_browser: Callable[[str], Browser], world: World
) -> None:
    browser = open_browser("demo-user")
    page = browser.page
    runs = [world.catalog.get(world.ids[n]) for n in ("demo-landscape", "demo-avatar-portrait")]
    expected = {
        (r["_id"], v["version"], n + 1): i
        for r in runs
        if r
        for v in r["versions"]
        for n, i in enumerate(v["images"])
    }
    cards = page.query_selector_all("#gallery .image-card")
    assert len(cards) == len(expected) == 3
    assert "for bob" not in page.inner_text("main")  # another owner's image is not here
    shot = screenshot(page)
    distances = []
    for card in cards:
        key = (
            card.get_attribute("data-id"),
            int(card.get_attribute("data-version")),
            int(card.get_attribute("data-n")),
        )
        image = expected[key]
        thumb = card.query_selector("img.thumb")
        assert thumb.evaluate("(i) => i.naturalWidth") > 0
        box = box_of(thumb)
        assert box["width"] > 100 and box["height"] > 60
        own = difference(shot, box, stored(world, image["thumbnailUri"]))
        distances.append(own)
        assert own < 12, f"the gallery does not show {image['thumbnailUri']} where its card is ({own:.1f})"
        # ...and the check can tell pictures apart: a blank tile would not pass.
        assert difference(shot, box, WHITE) > 3 * own + 10
    assert browser.outside == []


def test_a_lora_page_has_versions_trigger_word_contact_sheet_and_what_was_made(
    open_browser: Callable[[str], Browser], world: World
) -> None:
    browser = open_browser("demo-user")
    page = browser.page
    lora_id, portrait_id = world.ids["demo-avatar"], world.ids["demo-avatar-portrait"]
    show(page, f"#/lora/{lora_id}")
    assert page.inner_text("#trigger") == "dmavatar"
    version = page.query_selector("section.version[data-version='1']")
    assert version is not None
    text = version.inner_text()
    assert "sample.mp4" in text  # source video
    assert f"datasets/demo-user/{lora_id}/v1/dataset.zip" in text
    shot = screenshot(page)
    lora = world.catalog.get(lora_id)
    assert lora is not None
    sheet = version.query_selector("img.contact-sheet")
    assert (
        difference(shot, box_of(sheet), stored(world, lora["versions"][0]["contactSheetThumbnailUri"])) < 12
    )
    made = version.query_selector_all(".made-with")
    assert [m.get_attribute("data-id") for m in made] == [portrait_id]
    portrait = world.catalog.get(portrait_id)
    assert portrait is not None
    drawn = made[0].query_selector("img.thumb")
    assert difference(shot, box_of(drawn), stored(world, portrait["images"][0]["thumbnailUri"])) < 12
    # The download button fetches the weights themselves.
    with page.expect_download() as download:
        version.query_selector("a.download").click()
    path = download.value.path()
    assert Path(path).read_bytes() == stored(world, lora["versions"][0]["modelUri"])
    assert browser.outside == []


def test_an_image_page_traces_back_to_the_source_video(
    open_browser: Callable[[str], Browser], world: World
) -> None:
    page = open_browser("demo-user").page
    show(page, f"#/image/{world.ids['demo-avatar-portrait']}")
    lineage = page.inner_text("#lineage")
    # which checkpoint of the version the picture was made with, and which of its versions
    lora = world.catalog.get(world.ids["demo-avatar"])
    assert lora is not None
    step = lora["versions"][0]["chosenStep"]
    assert (
        f"LoRA demo-avatar v1, step {step}, the automatic choice (scale 0.8) · images of version 1" in lineage
    )
    assert world.ids["demo-avatar"] in lineage
    assert f"datasets/demo-user/{world.ids['demo-avatar']}/v1/dataset.zip" in lineage
    assert "source video:" in lineage and "sample.mp4" in lineage
    page.click("#lineage a")  # on to the LoRA
    ready(page, "lora")
    assert page.inner_text("#trigger") == "dmavatar"


def test_a_transcript_shows_its_text(open_browser: Callable[[str], Browser], world: World) -> None:
    page = open_browser("demo-user").page
    show(page, "#/transcripts")
    page.click(f"#transcripts tr[data-id='{world.ids['demo-interview']}'] a")
    ready(page, "transcript")
    until(page, "!document.getElementById('transcript-text').textContent.includes('loading')")
    record = world.catalog.get(world.ids["demo-interview"])
    assert record is not None
    expected = stored(world, record["transcript"]["textUri"]).decode()
    shown = page.text_content("#transcript-text") or ""
    assert shown.strip() == expected.strip() and "offline" in expected.lower()


def test_search_plays_a_transcript_from_where_it_says_the_words(
    open_browser: Callable[[str], Browser], world: World
) -> None:
    uid = world.ids["demo-interview"]
    record = world.catalog.get(uid)
    assert record is not None
    said = record["versions"][-1]["transcriptText"].split()
    word = next(w for w in said[5:] if w.isalpha() and len(w) >= 6)
    page = open_browser("demo-user").page
    page.fill("#search-q", word)
    page.press("#search-q", "Enter")
    ready(page, "search")
    link = page.query_selector(f"#results .asset-card[data-id='{uid}'] .snippets a.time")
    assert link is not None
    href = link.get_attribute("href") or ""
    assert href.startswith(f"#/transcript/{uid}?version=1&t=")
    marked = page.query_selector(f"#results .asset-card[data-id='{uid}'] .snippets mark")
    assert marked is not None and marked.inner_text().lower() == word.lower()
    link.click()
    ready(page, "transcript")
    page.wait_for_selector("#segments .segment.hit")  # the turn it is said in, marked and in view
    seconds = float(href.rsplit("t=", 1)[1])
    start = float(page.get_attribute("#segments .segment.hit", "data-start") or "nan")
    assert start <= seconds + 0.05


def test_a_running_job_moves_live(open_browser: Callable[[str], Browser], world: World) -> None:
    """Progress arrives over the SSE stream (EventSource, authenticated by the session cookie)."""
    page = open_browser("demo-user").page
    uid = world.ids["live-interview"]
    show(page, f"#/job/{uid}")
    bar = page.query_selector("#job-progress .progress")
    assert abs(filled_fraction(screenshot(page), box_of(bar)) - 0.10) < 0.03

    def update(progress: int, stage: str, phase: str = "Running") -> None:
        world.catalog.upsert(live_job(world.catalog, uid, "live-interview", progress, stage, phase))

    update(60, "transcribe")
    until(page, "document.getElementById('percent').textContent === '60 %'")
    assert page.inner_text("#job-stage") == "transcribe"
    assert abs(filled_fraction(screenshot(page), box_of(bar)) - 0.60) < 0.03
    update(100, "done", "Succeeded")
    until(page, "document.querySelector('#job-run .badge').textContent === 'run Succeeded'")
    assert filled_fraction(screenshot(page), box_of(bar)) > 0.97
    # The jobs list follows it too.
    update(20, "fetch")
    show(page, "#/jobs")
    row = page.query_selector(f"#jobs tr[data-id='{uid}']")
    assert row is not None and "Running" in row.inner_text()
    update(80, "transcribe")
    progress = f"document.querySelector(\"#jobs tr[data-id='{uid}'] .progress\")"
    until(page, f"{progress}.getAttribute('aria-valuenow') === '80'")
    assert abs(filled_fraction(screenshot(page), box_of(row.query_selector(".progress"))) - 0.80) < 0.03
    update(100, "done", "Succeeded")


def test_two_tabs_of_the_jobs_page_with_ten_live_jobs(
    chromium: Any, open_browser: Callable[[str], Browser], world: World
) -> None:
    """Issue 17: the Jobs page opened one EventSource per running row, and a browser allows six
    HTTP/1.1 connections to a host: a second tab never loaded. Now each tab has one stream for
    its whole list; both load, both move, and a job created meanwhile appears in both."""
    uids = [f"tab-{n:02d}-job" for n in range(10)]
    for n, uid in enumerate(uids):
        world.catalog.upsert(live_job(world.catalog, uid, f"tab-job-{n}", 5, "fetch"))
    first = open_browser("demo-user")
    context = first.page.context
    second_page = context.new_page()  # the same browser, the same connection pool
    second_page.set_default_timeout(WAIT_MS)
    streams: dict[Any, list[str]] = {first.page: [], second_page: []}
    for page in streams:
        page.on(
            "request",
            lambda request, page=page: "/api/stream/" in request.url and streams[page].append(request.url),
        )
    load(second_page, world.base + "/")
    ready(second_page, "gallery")
    for page in (first.page, second_page):
        show(page, "#/jobs")
        until(page, f"document.querySelectorAll('#jobs tr[data-id^=\"tab-\"]').length === {len(uids)}")
    for n, uid in enumerate(uids):
        world.catalog.upsert(live_job(world.catalog, uid, f"tab-job-{n}", 50 + n, "transcribe"))
    world.catalog.upsert(live_job(world.catalog, "tab-new-job", "tab-job-new", 1, "fetch", "Pending"))
    for page in (first.page, second_page):
        for n, uid in enumerate(uids):
            bar = f"document.querySelector('#jobs tr[data-id=\"{uid}\"] .progress')"
            until(page, f"{bar}.getAttribute('aria-valuenow') === '{50 + n}'")
        until(page, "document.querySelector('#jobs tr[data-id=\"tab-new-job\"]') !== null")  # no reload
        assert "run Pending" in page.inner_text("#jobs tr[data-id='tab-new-job']")
    opened = [[u for u in urls if "/api/stream/" in u] for urls in streams.values()]
    assert [len(urls) for urls in opened] == [1, 1]  # one stream per tab, for all its rows
    assert all(url.endswith("/api/stream/jobs") for urls in opened for url in urls)
    for n, uid in enumerate([*uids, "tab-new-job"]):  # done: out of the way of the other tests
        world.catalog.upsert(live_job(world.catalog, uid, f"tab-job-{n}", 100, "done", "Succeeded"))
    assert first.outside == []


def test_a_change_while_the_jobs_stream_starts_is_not_lost(
    open_browser: Callable[[str], Browser], world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server takes its time to start the Jobs page's stream (its starting point, the newest
    write, is read slowly), and a job moves meanwhile. The page read its list at once, before the
    stream had started: the move was in neither, and the row stayed where the list had it. Now
    the list is read once the stream has started (`ready`)."""
    uid = "slow-start-job"
    world.catalog.upsert(live_job(world.catalog, uid, "slow-start", 5, "fetch"))
    page = open_browser("demo-user").page
    asked, answer = threading.Event(), threading.Event()
    last_change = world.catalog.last_change

    def slow_last_change(*args: Any, **kwargs: Any) -> Any:
        asked.set()
        answer.wait(10)
        return last_change(*args, **kwargs)

    monkeypatch.setattr(world.catalog, "last_change", slow_last_change)
    page.evaluate("document.getElementById('main').removeAttribute('data-ready')")
    page.evaluate("location.hash = '#/jobs'")
    # (Waiting with Playwright's clock: the page's requests pass through this process's router.)
    deadline = time.monotonic() + WAIT_MS / 1000
    while not asked.is_set():
        assert time.monotonic() < deadline, "the page opened no stream"
        page.wait_for_timeout(50)
    page.wait_for_timeout(300)  # what the page does meanwhile
    world.catalog.upsert(live_job(world.catalog, uid, "slow-start", 60, "transcribe"))
    answer.set()
    ready(page, "jobs")
    bar = f"document.querySelector('#jobs tr[data-id=\"{uid}\"] .progress')"
    until(page, f"{bar}.getAttribute('aria-valuenow') === '60'")
    world.catalog.upsert(live_job(world.catalog, uid, "slow-start", 100, "done", "Succeeded"))


def test_search_and_filters(open_browser: Callable[[str], Browser], world: World) -> None:
    page = open_browser("demo-user").page
    page.fill("#search-q", "lighthouse")
    page.press("#search-q", "Enter")
    ready(page, "search")
    assert [r.get_attribute("data-id") for r in page.query_selector_all("#results .asset-card")] == [
        world.ids["demo-landscape"]
    ]
    show(page, "#/gallery")
    page.select_option("#filters select[name=model]", "flux-lora")
    page.evaluate("document.getElementById('main').removeAttribute('data-ready')")
    page.click("#filters button[type=submit]")
    ready(page, "gallery")
    assert "model=flux-lora" in page.evaluate("location.hash")
    cards = page.query_selector_all("#gallery .image-card")
    assert [c.get_attribute("data-id") for c in cards] == [world.ids["demo-avatar-portrait"]]


def test_owners_see_only_their_own(open_browser: Callable[[str], Browser], world: World) -> None:
    browser = open_browser("bob")
    page = browser.page
    cards = page.query_selector_all("#gallery .image-card")
    assert [c.get_attribute("data-id") for c in cards] == [world.ids["bobs-fox"]]
    show(page, "#/loras")
    assert page.query_selector_all(".lora-card") == []
    page.evaluate(f"location.hash = '#/lora/{world.ids['demo-avatar']}'")
    page.wait_for_selector("#error")
    assert page.inner_text("#error") == f"Not found: no record '{world.ids['demo-avatar']}'"
    # Nor through the files: the session cookie is bob's.
    answer = page.evaluate(
        "async (id) => (await fetch(`/api/assets/${id}/content`)).status", world.ids["demo-landscape"]
    )
    assert answer == 404
    page.click("#logout")
    page.wait_for_selector("#login-form")
    assert page.evaluate("async () => (await fetch('/api/jobs')).status") == 401


def test_the_docs_work_offline(open_browser: Callable[[str], Browser], world: World) -> None:
    browser = open_browser("demo-user")
    page = browser.page
    load(page, world.base + "/docs")
    page.wait_for_selector("text=contentgen catalog API")
    page.wait_for_selector(".opblock-summary-path[data-path='/api/assets/{ref}/lineage']")
    assert browser.outside == []  # Swagger UI's files, favicon and no validator badge: all local
    shot = screenshot(page)
    title = box_of(page.query_selector(".information-container .title"))
    assert (region(shot, title) < 100).mean() > 0.02  # the title is drawn, dark on light


# --- the small things a tool gets right -----------------------------------------------------------


def test_log_out_is_not_on_the_login_page(chromium: Any, world: World) -> None:
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, device_scale_factor=1)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        load(page, world.base + "/")
        ready(page, "login")
        assert not page.is_visible("#logout") and not page.is_visible("#nav")
        # Nothing is drawn in the header's right half (where Log out sits once logged in).
        shot = screenshot(page)
        header = box_of(page.query_selector("header"))
        right = region(
            shot,
            {
                "x": header["width"] / 2,
                "y": 2,
                "width": header["width"] / 2 - 2,
                "height": header["height"] - 4,
            },
        )
        assert float(np.abs(right.astype(np.int32) - right[2, 2].astype(np.int32)).max()) < 30
        page.fill("#token", TOKENS["demo-user"])
        page.click("#login-form button[type=submit]")
        ready(page, "gallery")
        assert page.is_visible("#logout")
        shot = screenshot(page)
        button = box_of(page.query_selector("#logout"))
        assert float(region(shot, button).std()) > 10  # drawn: a label on a button
        page.click("#logout")
        ready(page, "login")
        assert not page.is_visible("#logout")
    finally:
        context.close()


def test_the_search_box_does_not_keep_an_old_query(open_browser: Callable[[str], Browser]) -> None:
    page = open_browser("demo-user").page
    page.fill("#search-q", "lighthouse")
    page.press("#search-q", "Enter")
    ready(page, "search")
    assert page.input_value("#search-q") == "lighthouse"
    show(page, "#/loras")
    assert page.input_value("#search-q") == ""
    page.go_back()  # back to the search: its words again
    ready(page, "search")
    until(page, "document.getElementById('search-q').value === 'lighthouse'")


def test_empty_states_say_how_to_make_the_first(open_browser: Callable[[str], Browser]) -> None:
    page = open_browser("bob").page
    show(page, "#/loras")
    empty = page.inner_text("#empty")
    assert "No LoRAs yet." in empty and "kubectl apply -f examples/loratraining.yaml" in empty
    assert page.query_selector("#empty a[href='#/create/lora']") is None  # this API does not create
    show(page, "#/transcripts?tag=nothing-has-it")
    assert "match these filters" in page.inner_text("#empty")
    page.click("#empty a")
    ready(page, "transcripts")
    assert "?" not in page.evaluate("location.hash")


def test_pending_rows_say_why_they_wait(open_browser: Callable[[str], Browser], world: World) -> None:
    page = open_browser("demo-user").page
    doc = world.catalog.get(world.ids["over-budget"])
    assert doc is not None and doc["latestRun"]["reason"] == "BudgetExceeded"
    show(page, "#/jobs")
    row = page.query_selector(f"#jobs tr[data-id='{world.ids['over-budget']}']")
    assert row is not None
    assert "waits: BudgetExceeded — " + WAITS[1] in row.inner_text()
    show(page, f"#/job/{world.ids['over-budget']}")
    assert page.inner_text("#job-waits") == "waits: BudgetExceeded — " + WAITS[1]
    show(page, "#/transcripts")
    assert "waits: BudgetExceeded" in page.inner_text(
        f"#transcripts tr[data-id='{world.ids['over-budget']}']"
    )


def test_admins_see_an_owner_column_and_filter_by_owner(
    open_browser: Callable[[str], Browser], world: World
) -> None:
    page = open_browser("ops").page
    show(page, "#/jobs")
    heads = [h.inner_text() for h in page.query_selector_all("#jobs tr.head th")]
    assert heads[:2] == ["name", "owner"]
    owners = {c.inner_text() for c in page.query_selector_all("#jobs td.owner")}
    assert {"demo-user", "carol"} <= owners
    page.fill("#filters input[name=owner]", "bob")
    page.evaluate("document.getElementById('main').removeAttribute('data-ready')")
    page.click("#filters button[type=submit]")
    ready(page, "jobs")
    assert {c.inner_text() for c in page.query_selector_all("#jobs td.owner")} == {"bob"}
    # ...and someone who is not an admin has neither.
    page = open_browser("demo-user").page
    show(page, "#/jobs")
    assert page.query_selector("#jobs td.owner") is None
    assert page.query_selector("#filters input[name=owner]") is None


def test_lists_page(open_browser: Callable[[str], Browser]) -> None:
    page = open_browser("carol").page
    show(page, "#/transcripts")
    names = [r.query_selector("a").inner_text() for r in page.query_selector_all("#transcripts tr[data-id]")]
    assert len(names) == 25 and page.inner_text(".pager .range") == f"1–25 of {CAROLS}"
    assert page.query_selector(".pager a[rel=prev]") is None
    page.evaluate("document.getElementById('main').removeAttribute('data-ready')")
    page.click(".pager a[rel=next]")
    ready(page, "transcripts")
    rest = [r.query_selector("a").inner_text() for r in page.query_selector_all("#transcripts tr[data-id]")]
    assert page.inner_text(".pager .range") == f"26–{CAROLS} of {CAROLS}" and len(rest) == CAROLS - 25
    assert not set(names) & set(rest)
    assert sorted(n.rsplit("-", 1)[1] for n in names + rest) == [f"{n:02d}" for n in range(CAROLS)]
    assert page.query_selector(".pager a[rel=next]") is None
    show(page, "#/jobs")  # the same paging on every list
    assert page.inner_text(".pager .range") == f"1–25 of {CAROLS}"


def test_the_spend_page_shows_the_stats_and_budgets(
    open_browser: Callable[[str], Browser], world: World
) -> None:
    page = open_browser("demo-user").page
    show(page, "#/spend")
    stats = page.evaluate("async () => (await fetch('/api/assets/stats')).json()")
    assert f"{stats['totalJobs']} ({stats['totalVersions']})" in page.inner_text("#tile-records")
    assert f"{stats['totalGB']:.3f} GiB" in page.inner_text("#tile-storage")
    row = page.inner_text("#budgets tr[data-owner='demo-user']")
    assert "$2.00 (budgets.owners)" in row and "left" in row
    assert "spend-by-owner" not in page.content()  # only an admin sees everyone's
    page = open_browser("ops").page
    show(page, "#/spend")
    budgets = {
        r.get_attribute("data-owner"): r.inner_text()
        for r in page.query_selector_all("#budgets tr[data-owner]")
    }
    assert "$2.00 (budgets.owners)" in budgets["demo-user"]
    assert "$5.00 (budgets.ownerMonthlyUsd)" in budgets["ops"]


def test_a_session_ended_elsewhere_shows_the_login(open_browser: Callable[[str], Browser]) -> None:
    """The next view's 401 (its cookie gone, as when it expires) shows the login form: the router
    calls what the entry module handed it (app.js: useViews), not the sign-in module."""
    page = open_browser("demo-user").page
    page.context.clear_cookies()
    page.evaluate("location.hash = '#/loras'")
    page.wait_for_selector("#login-form")
    assert not page.is_visible("#nav") and page.get_attribute("#main", "data-ready") == "login"
