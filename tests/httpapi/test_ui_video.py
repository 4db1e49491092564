"""The web UI's videos, in Debian's chromium (Playwright), against `contentgen api --local` with a
VideoGeneration made by `contentgen run --offline`: the gallery shows its card (poster, duration,
play icon) beside the images and filters to videos; its page plays the video through /content,
and seeking asks for a byte range (206); a clip whose next run waits in a warm pool says its place
there (issue 47)."""

from __future__ import annotations

import copy
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.catalog import Filters, Page
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.cli.main import main
from contentgen.httpapi import ApiSettings, create_app
from tests.conftest import EXAMPLES
from tests.harness.browser import load, local_page, ready, until
from tests.harness.servers import serve_app

LIKENESS = {
    "verdict": "poor",
    "median": 0.41,
    "lowest": 0.12,
    "drift": 0.3,
    "samples": [{"timeSeconds": t / 2, "score": s} for t, s in enumerate((0.6, 0.45, 0.3, 0.12))],
    "reasons": ["the face drifts from the person after 1 s"],
    "threshold": 0.35,
}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str]]:
    root = Path(tempfile.mkdtemp(prefix="contentgen-video-ui-"))
    try:
        waves = next(
            d
            for d in yaml.safe_load_all((EXAMPLES / "videogeneration.yaml").read_text())
            if d and "imageRef" not in d["spec"]
        )
        (root / "waves.yaml").write_text(yaml.safe_dump(waves))
        with pytest.MonkeyPatch.context() as env:
            env.setenv("CONTENTGEN_STORE", str(root / "store"))
            env.setenv("CONTENTGEN_CATALOG", str(root / "catalog"))
            env.chdir(root)
            assert main(["run", "--offline", str(root / "waves.yaml")]) == 0
        catalog = EmbeddedCatalog(root / "catalog")
        uid = next(
            d["_id"] for d in catalog.find(Filters(), page=Page(10)).docs if d["kind"] == "VideoGeneration"
        )
        doc = catalog.get(uid)
        assert doc is not None
        doc["versions"][-1]["video"]["likeness"] = LIKENESS  # as a run with a LoRA measures it
        catalog.upsert(doc)
        catalog.upsert(pooled(doc))
        settings = ApiSettings(
            catalog="unused://",
            store=str(root / "store"),
            api_auth=["local"],
            api_create="local",
            api_offline=True,
        )
        app = create_app(settings, catalog=catalog)
        with serve_app(app) as base:
            yield base, uid
        app.state.services.creator.close()
        catalog.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


POOLED = "u-pooled-clip"


def pooled(doc: dict[str, Any]) -> dict[str, Any]:
    """The clip's record as another VideoGeneration's whose second run waits, second in its warm
    pool's queue (status.pool, as the worker writes it and the catalog keeps it)."""
    again = copy.deepcopy(doc)
    again.update(_id=POOLED, name="pooled-clip")
    run = {**again["latestRun"], "phase": "Running", "version": 2, "stage": "", "progress": 0}
    again["latestRun"] = {**run, "pool": {"state": "queued", "position": 2}}
    return again


def test_a_clip_waiting_in_a_warm_pool_says_its_place(chromium: Any, served: tuple[str, str]) -> None:
    base, _ = served
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page, outside = local_page(context, base)
        load(page, f"{base}/#/video/{POOLED}")
        ready(page, "video")
        place = page.locator(".facts .pool[data-pool=queued]")
        assert place.is_visible() and place.inner_text().strip() == "· queued in the pool: #2"
        assert outside == []
    finally:
        context.close()


def test_the_gallery_lists_the_video_and_its_page_plays_and_seeks(
    chromium: Any,
    served: tuple[str, str],
) -> None:
    base, uid = served
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page, outside = local_page(context, base)
        ranged: list[tuple[str, int]] = []
        page.on(
            "response",
            lambda r: (
                ranged.append((r.request.headers.get("range", ""), r.status))
                if "video.mp4" in r.url
                else None
            ),
        )
        load(page, base + "/")
        ready(page, "gallery")
        card = page.locator(f".video-card[data-id='{uid}']")
        assert card.count() == 1
        assert card.locator(".duration").inner_text() == "00:02"  # 33 frames at 16 fps
        assert card.locator(".play").count() == 1
        until(page, f"document.querySelector(\".video-card[data-id='{uid}'] img.thumb\").naturalWidth > 0")
        # The media filter: videos only, then images only.
        page.select_option("#filter-media", "videos")
        page.click("#filters button[type=submit]")
        until(page, "location.hash.includes('media=videos')")
        ready(page, "gallery")
        # the clip and POOLED
        assert page.locator(".image-card").count() == 0 and page.locator(".video-card").count() == 2

        card = page.locator(f".video-card[data-id='{uid}'] a.open")
        card.click()
        ready(page, "video")
        video = page.locator("video#video-v1")
        assert video.get_attribute("preload") == "metadata" and video.get_attribute("poster")
        assert page.locator("img.strip").count() == 1
        facts = page.locator(".video-facts").inner_text()
        assert "33 frames at 16 fps" in facts and "seed 7" in facts
        assert page.locator("#new-seed").count() == 1
        likeness = page.locator(".video-likeness[data-verdict=poor]")
        assert "median 0.41" in likeness.inner_text() and "drifts from the person" in likeness.inner_text()
        assert len(likeness.locator("polyline").get_attribute("points").split()) == 4
        until(page, "document.querySelector('video#video-v1').readyState >= 1")
        page.evaluate("document.querySelector('video#video-v1').currentTime = 1")
        until(page, "document.querySelector('video#video-v1').readyState >= 2")
        assert any(header.startswith("bytes=") and status == 206 for header, status in ranged), ranged
        assert outside == []
    finally:
        context.close()


_VALUES_AND_WORDS = "(os) => os.map((o) => [o.value, o.textContent])"
_OFFLINE = ["offline", "offline (free, labelled placeholders)"]
_CLUSTER = ["cluster", "cluster (the cluster's own GPUs)"]
_PROVIDERS_OFFERED = {
    "transcript": [["", "default (assemblyai)"], ["assemblyai", "assemblyai"], _OFFLINE, _CLUSTER],
    "image": [["", "default (fal)"], ["fal", "fal"], _OFFLINE, _CLUSTER],
    "video": [["", "default (fal)"], ["fal", "fal"], _OFFLINE, _CLUSTER],
}


def _not_offline(route: Any) -> None:
    """The server's own /ui/config, but for its `offline`."""
    said = route.fetch().json()
    assert said["offline"] is True and said["providers"]["cluster"]
    route.fulfill(json={**said, "offline": False})


def test_the_create_form_makes_a_video_and_names_a_bad_field(
    chromium: Any,
    served: tuple[str, str],
) -> None:
    base, _ = served
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page, outside = local_page(context, base)
        load(page, base + "/#/create/video")
        ready(page, "create")
        assert page.locator("#create-form").get_attribute("data-kind") == "VideoGeneration"
        # This API runs offline: the one provider offered is the offline one.
        assert page.eval_on_selector_all("#f-provider option", _VALUES_AND_WORDS) == [
            ["offline", "offline: free placeholders"]
        ]
        # An API that runs each spec's provider offers the spec's providers, each with the words the
        # server's entry gives it (api/providers.py through /ui/config): its config, told so.
        page.route("**/ui/config", _not_offline)
        page.reload()
        for link, offered in _PROVIDERS_OFFERED.items():
            page.evaluate("document.getElementById('main').removeAttribute('data-ready')")
            page.evaluate(f"location.hash = '#/create/{link}'")
            ready(page, "create")
            assert page.eval_on_selector_all("#f-provider option", _VALUES_AND_WORDS) == offered, link
        page.fill("#f-prompt", "a lighthouse beam sweeping over the sea")
        page.fill("[name=durationSeconds]", "500")
        page.select_option("[name=provider]", "offline")
        page.click("#create-submit")
        page.wait_for_selector(".field-error[data-field='spec.durationSeconds']")
        page.fill("[name=durationSeconds]", "2")
        page.fill("[name=fps]", "16")
        page.click("#create-submit")
        until(page, "location.hash.startsWith('#/job/')")
        assert outside == []
    finally:
        context.close()


def test_a_read_cut_short_is_asked_once_more_then_said_in_words(
    chromium: Any, served: tuple[str, str]
) -> None:
    """A page's read whose answer came 200 but cut short (the LoRA page once showed the parser's
    "Unexpected end of JSON input" for it) is asked again once; cut again, the page says so in
    words, naming what it asked."""
    base, uid = served
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    asked: list[bool] = []  # each read of the record: whether its answer was cut
    cuts = [1]  # how many of the next reads are cut

    def answered(route: Any) -> None:
        # one handler answers every read of the record, whole or cut (the context's own route
        # never sees it: a route handled by two handlers fails under load)
        whole = route.fetch()
        body = whole.body()
        headers = {k: v for k, v in whole.headers.items() if k.lower() != "content-length"}
        cut = cuts[0] > 0
        cuts[0] -= cut
        asked.append(cut)
        route.fulfill(status=whole.status, headers=headers, body=body[: len(body) // 2] if cut else body)

    try:
        page, outside = local_page(context, base)
        context.route(f"**/api/jobs/{uid}", answered)  # tried before local_page's own route
        load(page, f"{base}/#/video/{uid}")
        ready(page, "video")
        # (a page the harness loaded again, see `load`, reads it once more, whole)
        assert asked[:2] == [True, False] and page.locator("#error").count() == 0, asked
        before, cuts[0] = len(asked), 2
        page.reload()
        page.wait_for_selector("#error")
        said = page.inner_text("#error")
        assert asked[before:] == [True, True], asked
        words = r"could not be read \(\d+ characters, not whole JSON\): try again\."
        assert re.fullmatch(rf"The answer to GET /api/jobs/{uid} {words}", said), said
        assert outside == []
    finally:
        context.close()


def test_a_module_the_page_could_not_fetch_is_said_with_a_reload(
    chromium: Any, served: tuple[str, str]
) -> None:
    """A module of the page that cannot be fetched (CI's run saw chromium cut lorapick.js as the
    machine's interfaces changed) stops every module before any runs: the page says so in words
    with a Reload button, not a blank page, and the reload draws it."""
    base, uid = served
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    fetched: list[bool] = []  # each fetch of the module: whether it was cut

    def module(route: Any) -> None:
        fetched.append(not fetched)
        if fetched[-1]:
            route.abort("connectionreset")
        else:
            route.continue_()

    try:
        page, outside = local_page(context, base)
        context.route("**/ui/lorapick.js", module)  # tried before local_page's own route
        load(page, f"{base}/#/video/{uid}")
        ready(page, "unloaded")
        said = page.inner_text("#error")
        assert said.startswith("Part of the page could not be loaded") and "reload" in said, said
        page.click("main button")
        ready(page, "video")
        assert fetched == [True, False] and page.locator("#error").count() == 0
        assert outside == []
    finally:
        context.close()
