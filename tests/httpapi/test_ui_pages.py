"""Every page of the web UI, in Debian's chromium (Playwright), at desktop width and at 420 px:
axe-core (from npm, `make axe`) finds no serious or critical accessibility violation, colour
contrast included, light and dark, and nothing is wider than a phone's window. Each page's
screenshot is kept in $CONTENTGEN_UI_SHOTS when it is set, for a person to look at.

Then the pages issue 45 found wanting, each checked for what a user meets: the Jobs table's
columns at desktop width, an asset's collections as links named after them, a version's likeness
grid as a thumbnail that opens whole, the job page once the run it followed has ended, the Spend
cards' amounts inside their cards, the Create form's words (a bad name, the provider the API really
uses, only LoRAs with a version to use), search results and a collection's assets as cards with
their pictures, adding to a collection from the gallery and the search, a collection shared from
its page, and every version of a video reachable from the gallery.

The API is `contentgen api` with tokens (so the login page is one of the pages), creating local
runs offline, over a catalog that `contentgen run --offline` filled with every kind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from contentgen.catalog import Catalog, Filters, Page
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.cli.main import main
from contentgen.httpapi import ApiSettings, create_app
from contentgen.store import LocalStore
from tests.conftest import EXAMPLES
from tests.harness.browser import (
    LOOK_RULES,
    Tab,
    box_of,
    difference,
    fits,
    keep_screenshot,
    load,
    local_page,
    no_stray_text,
    ready,
    sign_in,
    until,
    violations,
)
from tests.harness.browser import show as show_view
from tests.harness.deliveries import Clock, deliver, events, notification
from tests.harness.records import live_job
from tests.harness.servers import serve_app

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = EXAMPLES / "media" / "sample.mp4"
TOKEN = "demo-user-token-0123456789"
SIZES = {"wide": {"width": 1280, "height": 900}, "narrow": {"width": 420, "height": 900}}
DIALOGS = "main *, header *, .dialog *"  # what must fit the window
VIDEO_LIKENESS = {  # as a run with a LoRA measures a video's face along it
    "verdict": "no-faces",
    "median": None,
    "lowest": None,
    "drift": None,
    "samples": [],
    "reasons": ["no face in the sampled frames"],
    "threshold": 0.35,
}


MISSING = "source.url: /tmp/no-such-video.mp4 does not exist: check source.url"
QUEUED = (
    "Queued",
    "Kueue holds the Job in LocalQueue default/gpu-queue: couldn't assign flavors to pod set main: "
    "insufficient unused quota for nvidia.com/gpu in flavor a100-80gb, 1 more needed; the ClusterQueue "
    "gpu-cluster-queue has 4 admitted workloads and 7 pending ahead of it",
)


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
    from tests.catalog.factory import lora_doc

    store_dir, catalog_dir = root / "store", root / "catalog"
    waves = next(d for d in yaml.safe_load_all((EXAMPLES / "videogeneration.yaml").read_text()) if d)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CONTENTGEN_STORE", str(store_dir))
        env.setenv("CONTENTGEN_CATALOG", str(catalog_dir))
        env.chdir(root)
        _run("--source", str(SAMPLE), str(EXAMPLES / "loratraining.yaml"))
        _run(str(EXAMPLES / "imagegeneration-lora.yaml"))
        _run(str(EXAMPLES / "imagegeneration.yaml"))
        _run("--source", str(SAMPLE), str(EXAMPLES / "transcription.yaml"))
        _run(str(EXAMPLES / "loraevaluation.yaml"))
        for seed in (7, 8):  # the video's two versions
            waves["spec"]["seed"] = seed
            (root / "waves.yaml").write_text(yaml.safe_dump(waves))
            _run(str(root / "waves.yaml"))
    store = LocalStore(store_dir)
    catalog = EmbeddedCatalog(catalog_dir)
    ids = {doc["name"]: doc["_id"] for doc in catalog.find(Filters(), page=Page(500)).docs}
    video = catalog.get(ids["demo-waves"])
    assert video is not None and len(video["versions"]) == 2
    for version in video["versions"]:
        version["video"]["likeness"] = VIDEO_LIKENESS
    catalog.upsert(video)
    # A LoRA whose only run failed: nothing to use.
    broken = lora_doc(
        "broken-0000-lora",
        owner="demo-user",
        name="broken-avatar",
        phase="Failed",
        versions=0,
        uri_of=store.uri,
    )
    # A run that waits with a long message (the Jobs table's widest cell).
    catalog.upsert(live_job(catalog, "queued-0000-job", "queued-call", 0, "", "Pending", reason=QUEUED))
    ids["queued-call"] = "queued-0000-job"
    failed = {"reason": "InvalidInput", "message": MISSING}  # as a run whose source is missing fails
    broken["latestRun"].update(reason="InvalidInput", message=MISSING, error=failed)
    broken["runs"][-1]["error"] = failed
    catalog.upsert(broken)
    ids["broken-avatar"] = broken["_id"]
    ids["live-avatar"] = _live_avatar(catalog, store)
    catalog.close()
    return store, ids


def _live_avatar(catalog: Catalog, store: LocalStore) -> str:
    """A LoRA training its version 2 (issue 67's live view): two checkpoints scored so far, each with
    its grid of pictures stored, the second the best."""
    from tests.catalog.factory import lora_doc
    from tests.harness.live import running, training

    uid = "live-0000-lora"
    folder = f"loras/demo-user/{uid}/v2/"
    for step, colour in ((250, (40, 40, 200)), (500, (40, 160, 40))):
        grid = np.full((240, 480, 3), colour, np.uint8)
        key = f"{folder}likeness/step-{step:06d}/likeness-grid.jpg"
        store.put_once_bytes(key, cv2.imencode(".jpg", grid)[1].tobytes(), "image/jpeg")
    base = lora_doc(uid, name="live-avatar", versions=1, owner="demo-user", uri_of=store.uri)
    scored = [(250, "poor", 0.21), (500, "good", 0.55)]
    report = training(uid, 510, scored, at=base["updatedAt"], folder=store.uri(folder.rstrip("/")) + "/")
    catalog.upsert(
        {**running(uid, "live-avatar", report, previous=base, owner="demo-user"), "origin": "local"}
    )
    return uid


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    root = Path(tempfile.mkdtemp(prefix="contentgen-pages-"))
    try:
        store, ids = _fill(root)
        tokens = root / "tokens.yaml"
        tokens.write_text(yaml.safe_dump({"tokens": [{"owner": "demo-user", "token": TOKEN}]}))
        catalog = EmbeddedCatalog(root / "catalog")
        settings = ApiSettings(
            catalog="unused://",
            store=str(store.root),
            api_tokens_file=tokens,
            api_create="local",
            api_offline=True,
            stream_poll_seconds=0.1,
        )
        app = create_app(settings, catalog=catalog, store=lambda: store)
        with serve_app(app) as base:
            world = World(base, root, store, catalog, ids)
            world.ids["collection"] = _collection(
                world, "campaign", [ids["demo-landscape"], ids["demo-waves"]]
            )
            _collection(world, "portfolio", [ids["demo-landscape"]])
            _deliveries(catalog, ids["demo-avatar"])
            yield world
        app.state.services.creator.close()
        catalog.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _collection(world: World, name: str, members: list[str]) -> str:
    """A collection of demo-user's made through the API, with `members` added by id."""
    import httpx

    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=world.base, headers=headers) as client:
        made = client.post("/api/collections", json={"name": name, "description": f"the {name}"})
        assert made.status_code in (200, 201), made.text
        cid = str(made.json()["id"])
        for member in members:
            added = client.post(f"/api/collections/{cid}/members", json={"ref": member})
            assert added.status_code == 200, added.text
    return cid


def _deliveries(catalog: Catalog, lora: str) -> None:
    """Webhook deliveries of the LoRA's events, attempted through the delivery log's own API:
    one answered after a retry, one that timed out (the Notifications page's rows)."""
    from contentgen.catalog.deliveries import Deliveries

    clock = Clock()
    log = Deliveries(catalog, clock)
    hooks = notification("default", "studio-backend")
    first, second = events("demo-user", lora, "demo-avatar", "LoraTraining", versions=2)
    deliver(log, clock, first, hooks, [(503, "busy", ""), (204, "", "")])
    deliver(log, clock, second, hooks, [(0, "", "timeout after 10 s")])


@pytest.fixture
def open_page(chromium: Any, world: World) -> Iterator[Callable[..., Tab]]:
    contexts: list[Any] = []

    def start(size: str = "wide", scheme: str = "light", login: bool = True) -> Tab:
        context = chromium.new_context(viewport=SIZES[size], device_scale_factor=1, color_scheme=scheme)
        contexts.append(context)
        page, outside = local_page(context, world.base)
        page.on("dialog", lambda dialog: dialog.accept())
        if login:
            sign_in(page, world.base, TOKEN)
        else:
            load(page, world.base + "/")
            ready(page, "login")
            until(page, "[...document.images].every((i) => i.complete)")
        return Tab(page, outside, SIZES[size]["width"], scheme)

    yield start
    for context in contexts:
        context.close()


def show(page: Any, hash_: str) -> None:
    show_view(page, hash_)
    until(page, "!document.querySelector('#usage p.meta')?.textContent.includes('loading')")


def pages(world: World) -> list[str]:
    ids = world.ids
    return [
        "#/gallery",
        f"#/image/{ids['demo-landscape']}",
        f"#/image/{ids['demo-avatar-portrait']}",
        f"#/video/{ids['demo-waves']}",
        "#/loras",
        f"#/lora/{ids['demo-avatar']}",
        f"#/lora/{ids['demo-avatar']}?tab=compare",
        f"#/lora/{ids['broken-avatar']}",
        f"#/lora/{ids['live-avatar']}",
        "#/transcripts",
        f"#/transcript/{ids['demo-interview']}",
        "#/jobs",
        f"#/job/{ids['demo-landscape']}",
        f"#/evaluation/{ids['demo-avatar-again']}",
        "#/search?q=demo",
        "#/spend",
        "#/create/image",
        "#/create/video",
        "#/create/lora",
        "#/create/transcript",
        "#/collections",
        f"#/collection/{ids['collection']}",
        "#/notifications",
    ]


# --- every page: axe-core, 420 px, screenshots ------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "scheme"), [("wide", "light"), ("narrow", "light"), ("wide", "dark"), ("narrow", "dark")]
)
def test_every_page_has_no_serious_accessibility_violation(
    open_page: Callable[..., Tab], world: World, size: str, scheme: str
) -> None:
    """Every rule at desktop width in the light scheme; at 420 px and in the dark scheme the rules
    whose outcome the width or the colours change (browser.LOOK_RULES: contrast, fit), with the
    narrow pages' dialogs measured to fit."""
    tab = open_page(size, scheme, login=False)
    page = tab.page
    rules = None if (size, scheme) == ("wide", "light") else LOOK_RULES
    found: dict[str, list[dict[str, Any]]] = {}

    keep_screenshot(page, f"{size}-{scheme}-login")
    found["login"] = violations(page, rules)
    page.fill("#token", TOKEN)
    page.click("#login-form button[type=submit]")
    ready(page, "gallery")
    for hash_ in pages(world):
        show(page, hash_)
        no_stray_text(page)
        keep_screenshot(page, f"{size}-{scheme}-{hash_[2:]}")
        found[hash_] = violations(page, rules)
        if size == "narrow":
            fits(tab, DIALOGS)
    # What opens over a page: the lightbox (an image, a likeness grid) and the + Collection dialog.
    show(page, "#/gallery")
    page.click("#gallery .image-card a.open")
    page.wait_for_selector("#lightbox")
    until(page, "document.getElementById('lb-image').complete")
    keep_screenshot(page, f"{size}-{scheme}-lightbox", full_page=False)
    found["lightbox"] = violations(page, rules)
    page.keyboard.press("Escape")
    show(page, f"#/lora/{world.ids['demo-avatar']}")
    page.click("section.version:not([hidden]) a.open-likeness-grid")
    page.wait_for_selector("#lightbox[data-picture=grid]")
    until(page, "document.getElementById('lb-image').complete")
    keep_screenshot(page, f"{size}-{scheme}-likeness-grid-lightbox", full_page=False)
    found["likeness grid"] = violations(page, rules)
    page.keyboard.press("Escape")
    show(page, "#/notifications")
    page.click("table.deliveries tr.delivery button.expand")
    page.wait_for_selector("table.deliveries tr.delivery-detail:not([hidden])")
    keep_screenshot(page, f"{size}-{scheme}-notifications-opened")
    found["a delivery opened"] = violations(page, rules)
    show(page, "#/gallery")
    page.click("#gallery .card button.collect")
    page.wait_for_selector("#collect-dialog button.add-to")
    keep_screenshot(page, f"{size}-{scheme}-collect-dialog", full_page=False)
    found["+ Collection"] = violations(page, rules)
    if size == "narrow":
        fits(tab, DIALOGS)
    page.keyboard.press("Escape")
    show(page, f"#/lora/{world.ids['live-avatar']}")  # a training under way: Stop and keep the best
    page.click("#stop-training")
    page.wait_for_selector("#stop-dialog")
    keep_screenshot(page, f"{size}-{scheme}-stop-dialog", full_page=False)
    found["Stop and keep the best"] = violations(page, rules)
    if size == "narrow":
        fits(tab, DIALOGS)
    page.keyboard.press("Escape")
    bad = {
        where: [f"{v['id']} ({v['impact']}): {'; '.join(v['nodes'])}" for v in these]
        for where, these in found.items()
        if these
    }
    assert bad == {}, json.dumps(bad, indent=1)
    assert tab.outside == []


# --- the pages issue 45 found wanting -----------------------------------------------------------------


def test_the_jobs_table_keeps_its_columns_readable_at_desktop_width(
    open_page: Callable[..., Tab], world: World
) -> None:
    page = open_page().page
    show(page, "#/jobs")
    heads = page.query_selector_all("#jobs tr.head th")
    heights = {h.inner_text(): box_of(h)["height"] for h in heads}
    line = min(heights.values())
    assert all(height < 1.5 * line for height in heights.values()), heights  # every header on one line
    text_height = (  # of the cell's text, not of its row
        "(td) => { const r = document.createRange(); r.selectNodeContents(td); "
        "return r.getBoundingClientRect().height; }"
    )
    one = page.query_selector("#jobs tr.head th").evaluate(text_height)  # a line of text
    assert "Kueue holds the Job" in page.inner_text(f"#jobs tr[data-id='{world.ids['queued-call']}']")
    for row in page.query_selector_all("#jobs tr[data-id]"):
        for label, lines in (("type", 1), ("status", 1), ("versions", 1), ("created", 2), ("name", 2)):
            cell = row.query_selector(f"td[data-label='{label}']")
            assert cell.evaluate(text_height) < (lines + 0.5) * one, (label, cell.inner_text())
        assert box_of(row.query_selector("td.stage"))["width"] >= 180  # a message in a readable measure
        name = row.query_selector("td[data-label=name]")
        assert box_of(name)["width"] > 120
    assert page.evaluate("document.documentElement.scrollWidth") <= SIZES["wide"]["width"]


def test_an_asset_page_names_its_collections_as_links(open_page: Callable[..., Tab], world: World) -> None:
    page = open_page().page
    show(page, f"#/image/{world.ids['demo-landscape']}")
    until(page, "!!document.getElementById('usage-facts')")
    row = page.query_selector("#usage-facts dt:text-is('collections') + dd")
    assert row is not None
    links = row.query_selector_all("a")
    assert sorted(a.inner_text() for a in links) == ["campaign", "portfolio"]
    assert all(a.get_attribute("href").startswith("#/collection/") for a in links)
    assert row.inner_text() in ("campaign, portfolio", "portfolio, campaign")  # no ",http://…"


def test_a_versions_likeness_grid_is_a_thumbnail_that_opens_whole(
    open_page: Callable[..., Tab], world: World
) -> None:
    page = open_page().page
    lora = world.catalog.get(world.ids["demo-avatar"])
    assert lora is not None
    grid_uri = lora["versions"][0]["likeness"]["gridUri"]
    stored = cv2.imdecode(
        np.frombuffer(world.store.get_bytes(world.store.key_of(grid_uri)), np.uint8), cv2.IMREAD_COLOR
    )
    assert stored.shape[0] > 3 * stored.shape[1]  # the grid: a tall strip of picture pairs
    show(page, f"#/lora/{world.ids['demo-avatar']}")
    panel = "section.version:not([hidden])"
    thumb = box_of(page.query_selector(f"{panel} img.likeness-grid"))
    assert thumb["height"] <= 240 and thumb["width"] <= 200
    assert box_of(page.query_selector(panel))["height"] < 4000  # was a tab 6,100 px tall
    heads = page.query_selector_all(f"{panel} table.evaluations tr.head th")
    line = min(box_of(h)["height"] for h in heads)
    assert all(box_of(h)["height"] < 1.5 * line for h in heads)  # its headers do not wrap
    page.click(f"{panel} a.open-likeness-grid")
    page.wait_for_selector("#lightbox[data-picture=grid]")
    until(page, "document.getElementById('lb-image').complete")
    natural = page.evaluate("(i => [i.naturalWidth, i.naturalHeight])(document.getElementById('lb-image'))")
    assert natural == [stored.shape[1], stored.shape[0]]
    drawn = box_of(page.query_selector("#lb-image"))
    assert drawn["width"] == pytest.approx(stored.shape[1], abs=1)  # whole, at its own size, scrolled


def test_after_create_the_job_page_shows_what_the_finished_run_made(
    open_page: Callable[..., Tab], world: World
) -> None:
    page = open_page().page
    show(page, "#/create/image")
    page.fill("#f-prompt", "A lighthouse at night, long exposure")
    page.fill("#f-name", "night-lighthouse")
    page.click("#create-submit")
    ready(page, "job")
    until(page, "document.getElementById('job-ending')?.dataset.ended === 'Succeeded'")
    assert page.query_selector("#cancel") is None  # no Cancel run on a run that succeeded
    assert page.query_selector("#delete") is not None
    until(
        page,
        "[...document.querySelectorAll('#job-outputs img')].every((i) => i.complete && i.naturalWidth > 0)",
    )
    assert len(page.query_selector_all("#job-outputs img")) == 1
    until(page, "!!document.getElementById('usage-storage')")
    assert not page.inner_text("#usage-storage").startswith("0 B")
    job = page.evaluate("location.hash")
    page.click("#job-outputs a.output")
    ready(page, "image")
    # the page of a run that ended before it was drawn says so at once (a fast run's first view)
    show(page, job)
    until(page, "document.getElementById('job-ending')?.dataset.ended === 'Succeeded'")


@pytest.mark.parametrize("size", ["wide", "narrow"])
def test_the_spend_cards_hold_their_amounts(open_page: Callable[..., Tab], size: str) -> None:
    page = open_page(size).page
    show(page, "#/spend")
    for tile in page.query_selector_all("#spend-tiles .tile"):
        outer = box_of(tile)
        for value in tile.query_selector_all(".value, .meta"):
            box = box_of(value)
            assert box["x"] + box["width"] <= outer["x"] + outer["width"] + 0.5, value.inner_text()
            assert value.evaluate("(v) => v.scrollWidth <= v.clientWidth"), value.inner_text()


def test_the_create_form_speaks_in_words_and_offers_what_will_run(
    open_page: Callable[..., Tab], world: World
) -> None:
    page = open_page().page
    show(page, "#/create/image")
    # The provider the API will use: it runs offline, whatever a form would name.
    assert [o.get_attribute("value") for o in page.query_selector_all("#f-provider option")] == ["offline"]
    assert "fal" not in page.inner_text("#f-provider")
    # Only LoRAs with a version to use.
    offered = [o.get_attribute("value") for o in page.query_selector_all("#f-lora option")]
    assert offered[0] == "" and sorted(offered[1:]) == ["demo-avatar", "live-avatar"]  # not broken-avatar
    page.fill("#f-prompt", "A lighthouse")
    page.fill("#f-name", "Bad_Name!")
    page.click("#create-submit")
    page.wait_for_selector("#create-form .field-error[data-field='metadata.name']")
    said = page.inner_text("#create-form .field-error")
    assert "lowercase letters, digits" in said and "[a-z" not in said and "pattern" not in said
    assert page.evaluate("location.hash") == "#/create/image"  # nothing was made


def test_search_results_are_cards_with_their_pictures_and_add_to_a_collection(
    open_page: Callable[..., Tab], world: World
) -> None:
    page = open_page().page
    page.fill("#search-q", "lighthouse")
    page.press("#search-q", "Enter")
    ready(page, "search")
    until(page, "[...document.images].every((i) => i.complete)")
    uid = world.ids["demo-landscape"]
    card = page.query_selector(f"#results .asset-card[data-id='{uid}']")
    assert card is not None
    doc = world.catalog.get(uid)
    assert doc is not None
    thumb = card.query_selector("img.thumb")
    assert thumb.evaluate("(i) => i.naturalWidth") > 0
    assert thumb.get_attribute("src").endswith(f"version={doc['versions'][-1]['version']}")
    shot = cv2.imdecode(np.frombuffer(page.screenshot(), np.uint8), cv2.IMREAD_COLOR)
    image = doc["versions"][-1]["images"][0]
    # object-fit: contain: the whole picture, centred in the box
    box = box_of(thumb)
    picture = cv2.imdecode(
        np.frombuffer(world.store.get_bytes(world.store.key_of(image["thumbnailUri"])), np.uint8),
        cv2.IMREAD_COLOR,
    )
    scale = min(box["width"] / picture.shape[1], box["height"] / picture.shape[0])
    width, height = picture.shape[1] * scale, picture.shape[0] * scale
    drawn = {
        "x": box["x"] + (box["width"] - width) / 2 + 1,
        "y": box["y"] + (box["height"] - height) / 2 + 1,
        "width": width - 2,
        "height": height - 2,
    }
    assert difference(shot, drawn, cv2.imencode(".png", picture)[1].tobytes()) < 14
    card.query_selector("button.collect").click()
    page.wait_for_selector("#collect-dialog button.add-to")
    page.click(f"#collect-dialog button.add-to[data-collection='{world.ids['collection']}']")
    page.wait_for_selector("#collect-done")
    assert "Added to campaign" in page.inner_text("#collect-done")
    page.click("#collect-done a")
    ready(page, "collection")
    assert page.query_selector(f"#members .asset-card[data-id='{uid}']") is not None


def test_a_collection_page_shows_cards_shares_and_adds_from_search(
    open_page: Callable[..., Tab], world: World
) -> None:
    page = open_page().page
    cid = _collection(world, "to-share", [world.ids["demo-waves"]])
    show(page, f"#/collection/{cid}")
    card = page.query_selector(f"#members .asset-card[data-id='{world.ids['demo-waves']}']")
    assert card is not None and card.query_selector("img.thumb").evaluate("(i) => i.naturalWidth") > 0
    # Share it from its page.
    assert page.inner_text("#collection-shares") == "nobody"
    page.fill("#collection-share-form input[name=to]", "owner:bob")
    page.click("#collection-share-form button[type=submit]")
    until(page, "document.getElementById('collection-shares')?.textContent === 'owner:bob (read)'")
    # Add an asset found by its words, not typed by its id.
    page.fill("#add-member input[name=q]", "dmavatar")
    page.click("#add-member button[type=submit]")
    add = f"#add-candidates .asset-card[data-id='{world.ids['demo-avatar']}'] button.add"
    page.wait_for_selector(add)
    page.evaluate("document.getElementById('main').removeAttribute('data-ready')")
    page.click(add)
    ready(page, "collection")
    assert page.inner_text("#member-count") == "2"
    assert (
        page.query_selector(f"#members .asset-card[data-id='{world.ids['demo-avatar']}'] img.thumb")
        is not None
    )


def test_every_version_is_reachable_from_the_gallery(open_page: Callable[..., Tab], world: World) -> None:
    page = open_page().page
    uid = world.ids["demo-waves"]
    cards = page.query_selector_all(f"#gallery .video-card[data-id='{uid}']")
    assert [c.get_attribute("data-version") for c in cards] == ["2", "1"]
    page.click(f"#gallery .video-card[data-id='{uid}'][data-version='1'] a.open")
    ready(page, "video")
    assert page.query_selector("section.version.asked").get_attribute("data-version") == "1"
    # its likeness over time wears the verdict badge (white on the verdict's colour; axe-core checks
    # its contrast on every page), not a brown word on brown
    badge = page.query_selector("section.version.asked .video-likeness h3 .badge")
    assert "verdict" in (badge.get_attribute("class") or "").split() and badge.inner_text() == "no-faces"
    # every image version too, each card opening its own version's page
    images = world.catalog.find(Filters(type="image-generation"), page=Page(50)).docs
    wanted = {(d["_id"], v["version"]) for d in images if d["owner"] == "demo-user" for v in d["versions"]}
    show(page, "#/gallery")
    shown = {
        (c.get_attribute("data-id"), int(c.get_attribute("data-version")))
        for c in page.query_selector_all("#gallery .image-card")
    }
    assert wanted <= shown


def test_a_failed_lora_says_why_once_and_offers_nothing_to_generate(
    open_page: Callable[..., Tab], world: World
) -> None:
    page = open_page().page
    show(page, f"#/lora/{world.ids['broken-avatar']}")
    status = page.inner_text("dl.facts dt:text-is('status') + dd")
    assert "run Failed: InvalidInput" in status
    assert status.count(MISSING) == 1 and status.count("InvalidInput") == 1  # each said once
    assert page.query_selector("main a:text-is('Generate with it')") is None  # no version to use
