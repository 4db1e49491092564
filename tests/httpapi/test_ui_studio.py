"""The web UI as a tool, in Debian's chromium (Playwright), against `contentgen api --local` as a
laptop runs it: auth local (one owner, no login), creates made as local runs with the offline
provider. The catalog holds a LoRA with two versions, an image generation and a two-speaker
transcription whose audio the page can play.

Every screenshot is checked for what it shows, at 1400 px and 420 px, light and dark: the
lightbox draws the stored image, a comparison cell draws the image its version made, the turn
being spoken is highlighted, nothing is wider than the window. A manifest copied from the page is
applied with the real kubectl against the real kube-apiserver (tests/apiserver.py), server-side
dry run: the CRDs' schema and CEL rules judge it, and a tampered one is refused.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    WHITE,
    Tab,
    box_of,
    check_scheme,
    difference,
    fits,
    load,
    local_page,
    no_stray_text,
    pbox,
    ready,
    region,
    screenshot,
    settled_screenshot,
    until,
)
from tests.harness.browser import show_checked as show
from tests.harness.records import record
from tests.harness.servers import serve_app

SAMPLE = EXAMPLES / "media" / "sample.mp4"
SIZES = {"wide": {"width": 1400, "height": 1000}, "narrow": {"width": 420, "height": 900}}
# The highlighted transcript turn (style.css --active), as BGR, light and dark.
ACTIVE_BGR = {"light": (196, 243, 255), "dark": (18, 63, 74)}
TURNS = [  # (speaker, start s, end s, words): a two-speaker call, as AssemblyAI returns it
    ("A", 0.0, 2.8, "Welcome back to the studio call everyone."),
    ("B", 3.0, 5.6, "Thanks, the new avatar LoRA is ready to test."),
    ("A", 5.8, 8.4, "Great, compare its versions on the same prompt."),
    ("B", 8.6, 11.5, "Will do, and I will export the subtitles."),
]


@dataclass
class Studio:
    base: str
    root: Path
    store: LocalStore
    catalog: Catalog
    ids: dict[str, str] = field(default_factory=dict)


def _run(*args: str) -> None:
    assert main(["run", "--offline", *args]) == 0


def _wav(path: Path, seconds: float = 12.0) -> None:
    rate = 8000
    t = np.arange(int(rate * seconds)) / rate
    tone = (0.2 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(tone.tobytes())


def _response() -> dict[str, Any]:
    """A provider response with speaker turns and word times (milliseconds), as AssemblyAI's
    documentation describes it."""
    utterances: list[dict[str, Any]] = []
    for speaker, start, end, text in TURNS:
        words = text.split()
        step = (end - start) / len(words)
        utterances.append(
            {
                "speaker": speaker,
                "start": round(start * 1000),
                "end": round(end * 1000),
                "text": text,
                "confidence": 0.93,
                "words": [
                    {
                        "text": w,
                        "start": round((start + n * step) * 1000),
                        "end": round((start + (n + 1) * step) * 1000),
                        "speaker": speaker,
                        "confidence": 0.9,
                    }
                    for n, w in enumerate(words)
                ],
            }
        )
    return {
        "id": "tr-fake",
        "status": "completed",
        "text": " ".join(t[3] for t in TURNS),
        "audio_duration": 12,
        "utterances": utterances,
        "words": [w for u in utterances for w in u["words"]],
    }


def _transcript(catalog: Catalog, store: LocalStore, audio: Path) -> str:
    from tests.catalog.factory import transcript_doc

    uid = "call-0000-transcript"
    doc = transcript_doc(uid, owner="demo-user", name="team-call", text=_response()["text"], uri_of=store.uri)
    version = doc["versions"][-1]
    json_key = store.key_of(version["transcript"]["jsonUri"])
    store.put_bytes(json_key, json.dumps(_response()).encode(), "application/json")
    store.put_bytes(
        store.key_of(version["transcript"]["textUri"]), _response()["text"].encode(), "text/plain"
    )
    for holder in (doc, version):
        holder["sourceUrl"] = str(audio)
    doc["spec"]["source"]["url"] = str(audio)
    version["spec"] = dict(doc["spec"])
    for holder in (doc["transcript"], version["transcript"]):
        holder["durationSeconds"] = 12.0
    catalog.upsert(doc)
    return uid


# A LoRA trained on the cluster's GPUs whose three checkpoints were scored (docs/likeness.md):
# (step, verdict, median, its grid's colour, BGR); step 68 is the version's model.
CHECKPOINTS = (
    (34, "poor", 0.13, (40, 40, 200)),
    (68, "good", 0.70, (40, 160, 40)),
    (100, "no-faces", None, (200, 90, 30)),
)


def _checkpointed_lora(catalog: Catalog, store: LocalStore) -> str:
    """gpu-avatar: its version's likeness curve, each checkpoint's grid stored (a picture of its
    own colour) and listed among the version's files, as the pipeline stores them."""
    import cv2

    from contentgen.api import CheckpointLikeness, Likeness
    from tests.catalog.factory import lora_doc

    uid = "gpu-0000-lora"
    doc = lora_doc(uid, owner="demo-user", name="gpu-avatar", uri_of=store.uri)
    version = doc["versions"][-1]
    prefix = f"loras/demo-user/{uid}/v1/"
    points = []
    for step, verdict, median, colour in CHECKPOINTS:
        ok, grid = cv2.imencode(".jpg", np.full((90, 160, 3), colour, np.uint8))
        assert ok
        stored = store.put_bytes(
            f"{prefix}likeness/step-{step:06d}/likeness-grid.jpg", grid.tobytes(), "image/jpeg"
        )
        version["artifacts"].append(stored.wire())
        points.append(
            CheckpointLikeness(
                step=step,
                model_uri=store.uri(f"{prefix}checkpoints/step-{step:06d}.safetensors"),
                verdict=verdict,
                median=median,
                grid_uri=stored.uri,
                chosen=step == 68,
            )
        )
    choice = "step 68 scored best of 3 checkpoints (good, median 0.70; the last step, 100: no-faces)"
    likeness = Likeness(
        verdict="good",
        median=0.7,
        threshold=0.313,
        checkpoints=points,
        chosen_step=68,
        final_step=100,
        choice=choice,
    )
    version.update(
        likeness=likeness.wire(),
        chosenStep=68,
        finalModelUri=store.uri(f"{prefix}checkpoints/step-000100.safetensors"),
        provider="cluster",
    )
    catalog.upsert(doc)
    return uid


def _fill(root: Path) -> tuple[LocalStore, dict[str, str]]:
    store_dir, catalog_dir = root / "store", root / "catalog"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CONTENTGEN_STORE", str(store_dir))
        env.setenv("CONTENTGEN_CATALOG", str(catalog_dir))
        env.chdir(root)
        _run("--source", str(SAMPLE), str(EXAMPLES / "loratraining.yaml"))
        again = yaml.safe_load((EXAMPLES / "loratraining.yaml").read_text())
        again["spec"]["training"]["steps"] = 1200  # a changed spec: the LoRA's version 2
        (root / "lora-v2.yaml").write_text(yaml.safe_dump(again))
        _run("--source", str(SAMPLE), str(root / "lora-v2.yaml"))
        _run(str(EXAMPLES / "imagegeneration.yaml"))
    store = LocalStore(store_dir)
    catalog = EmbeddedCatalog(catalog_dir)
    ids = {doc["name"]: doc["_id"] for doc in catalog.find(Filters(), page=Page(500)).docs}
    lora = catalog.get(ids["demo-avatar"])
    assert lora is not None and [v["version"] for v in lora["versions"]] == [1, 2]
    from tests.catalog.factory import lora_doc, transcript_doc

    # Two records as a cluster made them: their sources are URLs, not this machine's files.
    catalog.upsert(
        lora_doc("cloud-0000-lora", owner="demo-user", name="cloud-avatar", versions=2, uri_of=store.uri)
    )
    catalog.upsert(transcript_doc("cloud-0000-call", owner="demo-user", name="cloud-call", uri_of=store.uri))
    ids.update({"cloud-avatar": "cloud-0000-lora", "cloud-call": "cloud-0000-call"})
    ids["gpu-avatar"] = _checkpointed_lora(catalog, store)
    _wav(root / "call.wav")
    ids["team-call"] = _transcript(catalog, store, root / "call.wav")
    catalog.close()
    return store, ids


@pytest.fixture(scope="module")
def studio() -> Iterator[Studio]:
    root = Path(tempfile.mkdtemp(prefix="contentgen-studio-"))
    try:
        store, ids = _fill(root)
        catalog = EmbeddedCatalog(root / "catalog")
        settings = ApiSettings(
            catalog="unused://",
            store=str(store.root),
            api_auth=["local"],
            api_create="local",
            api_offline=True,
            stream_poll_seconds=0.1,
        )
        app = create_app(settings, catalog=catalog, store=lambda: store)
        with serve_app(app) as base:
            yield Studio(base, root, store, catalog, ids)
        app.state.services.creator.close()
        catalog.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def open_page(chromium: Any, studio: Studio) -> Iterator[Callable[..., Tab]]:
    contexts: list[Any] = []

    def start(size: str = "wide", scheme: str = "light") -> Tab:
        context = chromium.new_context(
            viewport=SIZES[size],
            device_scale_factor=1,
            color_scheme=scheme,
            permissions=["clipboard-read", "clipboard-write"],
        )
        contexts.append(context)
        page, outside = local_page(context, studio.base)
        page.on("dialog", lambda dialog: dialog.accept())  # confirm() of cancel and delete
        load(page, studio.base + "/")
        ready(page, "gallery")  # auth local: no login
        until(page, "[...document.images].every((i) => i.complete)")
        return Tab(page, outside, SIZES[size]["width"], scheme)

    yield start
    for context in contexts:
        context.close()


def luminance(shot: np.ndarray, box: dict[str, float]) -> float:
    return float(region(shot, box).mean())


def stored(studio: Studio, uri: str) -> bytes:
    return studio.store.get_bytes(studio.store.key_of(uri))


def wait_done(page: Any) -> None:
    until(page, "document.querySelector('#job-run .badge')?.dataset.run === 'Succeeded'")


# --- the lightbox ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "scheme"), [("wide", "light"), ("narrow", "dark")])
def test_the_lightbox_shows_the_image_with_how_it_was_made(
    open_page: Callable[..., Tab], studio: Studio, size: str, scheme: str
) -> None:
    tab = open_page(size, scheme)
    page = tab.page
    doc = record(studio, studio.ids["demo-landscape"])
    version = doc["versions"][-1]
    images = version["images"]
    assert len(images) == 2
    cards = page.query_selector_all(f"#gallery .image-card[data-id='{doc['_id']}']")
    assert len(cards) == 2
    cards[0].query_selector("img.thumb").click()
    page.wait_for_selector("#lightbox[data-spec=loaded]")
    until(page, "document.getElementById('lb-image').complete")
    no_stray_text(page)
    meta = page.inner_text("#lb-meta")
    for shown in (
        doc["spec"]["prompt"],
        "seed",
        "42",
        f"{images[0]['width']}×{images[0]['height']} (landscape_4_3)",
        "flux-dev",
        "offline",
        "demo",
        "landscape",
        version["createdAt"].strftime("%Y-%m-%d") if hasattr(version["createdAt"], "strftime") else "",
    ):
        assert shown in meta, f"{shown!r} not in the lightbox"
    assert page.inner_text("#lb-negative") == "-" and page.inner_text("#lb-counter") == "1 / 2"
    shot = screenshot(page)
    drawn = box_of(page.query_selector("#lb-image"))
    own = difference(shot, drawn, stored(studio, images[0]["uri"]))
    assert own < 14, f"the lightbox does not draw {images[0]['uri']} ({own:.1f})"
    assert difference(shot, drawn, WHITE) > 3 * own + 10
    aside = luminance(shot, box_of(page.query_selector("#lb-meta")))
    assert (aside < 90) if scheme == "dark" else (aside > 170)
    if size == "narrow":
        fits(tab)
    # The keyboard: → the next image (drawn), ← back, Esc closes.
    page.keyboard.press("ArrowRight")
    until(page, "document.getElementById('lightbox').dataset.n === '2'")
    until(page, "document.getElementById('lb-image').complete")
    assert page.inner_text("#lb-counter") == "2 / 2"
    shot = screenshot(page)
    second = difference(shot, box_of(page.query_selector("#lb-image")), stored(studio, images[1]["uri"]))
    assert second < 14
    page.keyboard.press("ArrowLeft")
    until(page, "document.getElementById('lightbox').dataset.n === '1'")
    # Copy the prompt: it is on the clipboard.
    page.click("#lb-copy-prompt")
    until(page, "document.getElementById('lb-copy-prompt').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == doc["spec"]["prompt"]
    page.keyboard.press("Escape")
    until(page, "document.getElementById('lightbox') === null")
    assert tab.outside == []


def test_the_lightbox_of_a_lora_image_offers_its_trigger_word(
    open_page: Callable[..., Tab], studio: Studio
) -> None:
    """An image made with a LoRA (made here, through the create form's API, pinned to v1)."""
    page = open_page().page
    made = page.evaluate(
        """async () => (await fetch('/api/resources', {method: 'POST',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({kind: 'ImageGeneration', metadata: {name: 'with-avatar'}, spec: {
              prompt: 'dmavatar on a beach', model: 'flux-lora', numImages: 1, imageSize: 'square',
              loras: [{loraRef: {name: 'demo-avatar', version: 1}, scale: 0.7}]}})})).json()"""
    )
    show(page, f"#/job/{made['jobId']}")
    wait_done(page)
    show(page, f"#/image/{made['jobId']}")
    page.click("section.version img")
    page.wait_for_selector("#lb-copy-trigger")
    assert "demo-avatar v1 × 0.7" in page.inner_text("#lb-loras")
    page.click("#lb-copy-trigger")
    until(page, "document.getElementById('lb-copy-trigger').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == "dmavatar"


# --- create, re-run, new seed ---------------------------------------------------------------------


@pytest.mark.parametrize(("size", "scheme"), [("wide", "dark"), ("narrow", "light")])
def test_create_an_image_generation_from_the_form(
    open_page: Callable[..., Tab], studio: Studio, size: str, scheme: str
) -> None:
    tab = open_page(size, scheme)
    page = tab.page
    show(page, "#/create/image")
    if size == "narrow":
        fits(tab)
    # A bad request first: the server's message lands next to the field it names.
    page.fill("#f-numImages", "20")
    page.fill("#f-prompt", "a lighthouse in fog, charcoal")
    page.click("#create-submit")
    page.wait_for_selector(".field-error[data-field='spec.numImages']")
    assert "spec.numImages" in page.inner_text("#create-error")
    assert page.evaluate("document.getElementById('f-numImages').classList.contains('invalid')")
    name = f"fog-{size}-{scheme}"
    page.fill("#f-numImages", "1")
    page.fill("#f-name", name)
    page.fill("#f-seed", "777")
    page.fill("#f-negativePrompt", "people, text")
    page.select_option("#f-imageSize", "square")
    page.fill("#f-tags", "fog, studio")
    page.click("#create-submit")
    ready(page, "job")
    wait_done(page)
    uid = page.evaluate("decodeURIComponent(location.hash.split('/')[2])")
    doc = record(studio, uid)
    assert doc["name"] == name and doc["owner"] == "demo-user"
    spec = doc["versions"][-1]["spec"]
    assert (spec["seed"], spec["negativePrompt"], spec["imageSize"], spec["tags"]) == (
        777,
        "people, text",
        "square",
        ["fog", "studio"],
    )
    page.click("#outputs")
    ready(page, "image")
    until(page, "[...document.images].every((i) => i.complete)")
    shot = screenshot(page)
    check_scheme(tab, shot)
    drawn = pbox(page, page.query_selector("section.version img"))
    assert difference(shot, drawn, stored(studio, doc["versions"][-1]["images"][0]["uri"])) < 14
    if size == "narrow":
        fits(tab)


def test_rerun_with_a_new_seed_makes_a_new_image_with_the_same_settings(
    open_page: Callable[..., Tab], studio: Studio
) -> None:
    page = open_page().page
    original = record(studio, studio.ids["demo-landscape"])
    page.query_selector(f"#gallery .image-card[data-id='{original['_id']}'] img.thumb").click()
    page.wait_for_selector("#lightbox")
    page.click("#lb-new-seed")
    ready(page, "job")
    assert page.query_selector("#lightbox") is None
    wait_done(page)
    uid = page.evaluate("decodeURIComponent(location.hash.split('/')[2])")
    assert uid != original["_id"]
    again = record(studio, uid)
    before, after = original["versions"][-1]["spec"], again["versions"][-1]["spec"]
    assert after["seed"] != before["seed"]
    assert {k: v for k, v in after.items() if k != "seed"} == {k: v for k, v in before.items() if k != "seed"}
    assert again["versions"][-1]["images"][0]["seed"] == after["seed"]
    # Its image is drawn, and it is not the old picture.
    page.click("#outputs")
    ready(page, "image")
    until(page, "[...document.images].every((i) => i.complete)")
    shot = screenshot(page)
    drawn = pbox(page, page.query_selector("section.version img"))
    new = difference(shot, drawn, stored(studio, again["versions"][-1]["images"][0]["uri"]))
    old = difference(shot, drawn, stored(studio, original["versions"][-1]["images"][0]["uri"]))
    assert new < 14 and old > new + 5
    # Re-run (same seed) from the record's page: the same settings exactly.
    page.click("#rerun")
    ready(page, "job")
    wait_done(page)
    third = record(studio, page.evaluate("decodeURIComponent(location.hash.split('/')[2])"))
    assert third["versions"][-1]["spec"] == after


# --- copy as manifest, applied by the real kubectl --------------------------------------------------


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from contentgen.api.crd import rendered_crds
    from tests import apiserver
    from tests.kubectl import Kubectl

    client = apiserver.admin()
    names = []
    for text in rendered_crds().values():
        crd = yaml.safe_load(text)
        client.apply(crd)
        names.append(crd["metadata"]["name"])
    deadline = time.monotonic() + 60
    for name in names:
        while True:
            got = client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conditions = {c["type"]: c["status"] for c in (got.get("status") or {}).get("conditions") or []}
            if conditions.get("Established") == "True":
                break
            assert time.monotonic() < deadline, f"{name} not established"
            time.sleep(0.05)
    return Kubectl(apiserver.admin_kubeconfig(), tmp_path_factory.mktemp("kubectl-home"))


def copied_manifest(page: Any) -> str:
    page.wait_for_selector("#manifest-dialog")
    until(page, "!document.getElementById('manifest-yaml').textContent.startsWith('loading')")
    until(page, "document.getElementById('manifest-copy').textContent === 'Copied'")
    text = page.evaluate("navigator.clipboard.readText()")
    assert text == page.text_content("#manifest-yaml")
    return str(text)


@pytest.mark.parametrize("which", ["demo-landscape", "cloud-avatar", "cloud-call"])
def test_copy_as_manifest_is_applied_by_kubectl_as_it_is(
    open_page: Callable[..., Tab], studio: Studio, kubectl: Any, which: str
) -> None:
    page = open_page().page
    uid = studio.ids[which]
    doc = record(studio, uid)
    show(page, f"#/job/{uid}")
    page.click("#copy-manifest")
    text = copied_manifest(page)
    manifest = yaml.safe_load(text)
    assert manifest["kind"] == doc["kind"] and manifest["metadata"]["name"] != doc["name"]  # a new one
    assert manifest["spec"]["owner"] == "demo-user"
    done = kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=text)
    assert "created (server dry run)" in done.stdout, done.stdout
    # The check can fail: the same manifest with a value admission refuses.
    broken = yaml.safe_load(text)
    if doc["kind"] == "ImageGeneration":
        broken["spec"]["numImages"] = 99
    elif doc["kind"] == "LoraTraining":
        broken["spec"]["triggerWord"] = "two words"
    else:
        broken["spec"]["source"] = {}
    refused = kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(broken), check=False)
    assert refused.returncode != 0 and "spec." in refused.stderr
    # Keeping the name: the record's own name, for a new version of it.
    page.check("#manifest-keep-name")
    until(page, f"document.getElementById('manifest-yaml').textContent.includes('name: {doc['name']}\\n')")
    kept = yaml.safe_load(page.text_content("#manifest-yaml") or "")
    assert kept["metadata"]["name"] == doc["name"] and kept["spec"] == manifest["spec"]
    assert page.is_hidden("#manifest-warning")


def test_a_manifest_of_a_laptop_run_from_a_local_file_says_what_a_cluster_needs(
    open_page: Callable[..., Tab], studio: Studio, kubectl: Any
) -> None:
    """The LoRA was trained here from a file on this machine: kubectl would refuse its path, and
    the dialog says so before anyone tries."""
    page = open_page().page
    show(page, f"#/lora/{studio.ids['demo-avatar']}")
    page.click("#copy-manifest")
    text = copied_manifest(page)
    assert yaml.safe_load(text)["spec"]["training"]["steps"] == 1200  # the latest version's settings
    assert page.is_visible("#manifest-warning")
    assert str(SAMPLE) in page.inner_text("#manifest-warning")
    refused = kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=text, check=False)
    assert refused.returncode != 0 and "spec.source.url" in refused.stderr
    fixed = text.replace(str(SAMPLE), "https://example.com/videos/sample.mp4")
    assert (
        "created (server dry run)" in kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=fixed).stdout
    )


# --- LoRA versions and their comparison ------------------------------------------------------------


@pytest.mark.parametrize(("size", "scheme"), [("wide", "light"), ("narrow", "dark")])
def test_compare_a_loras_versions_on_the_same_prompt(
    open_page: Callable[..., Tab], studio: Studio, size: str, scheme: str
) -> None:
    tab = open_page(size, scheme)
    page = tab.page
    lora_id = studio.ids["demo-avatar"]
    show(page, f"#/lora/{lora_id}")
    tabs = [t.get_attribute("data-tab") for t in page.query_selector_all("#version-tabs [role=tab]")]
    assert tabs == ["v2", "v1", "compare"]
    assert page.is_visible("section.version[data-version='2']")
    assert not page.is_visible("section.version[data-version='1']")
    assert "1200 steps" in page.inner_text("section.version[data-version='2']")
    page.click("#version-tabs [data-tab=v1]")
    ready(page, "lora")
    until(page, "document.querySelector(\"section.version[data-version='1']\")?.hidden === false")
    assert "1000 steps" in page.inner_text("section.version[data-version='1']")
    page.click("#copy-trigger")
    until(page, "document.getElementById('copy-trigger').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == "dmavatar"
    page.click("#version-tabs [data-tab=compare]")
    page.wait_for_selector("#compare-form")
    prompt = f"dmavatar as a knight, {size} {scheme}"
    page.fill("#compare-prompt", prompt)
    page.fill("#compare-seed", "4242")
    page.click("#compare-form button[type=submit]")
    page.wait_for_selector("#compare-status .notice")
    said = page.inner_text("#compare-status")
    assert "Started 2 image generations," in said
    found = re.search(r"tagged (compare-[0-9a-f]+)", said)
    assert found
    section = f"document.querySelector('.comparison[data-tag={found[1]}]')"
    until(page, f"{section} && {section}.querySelectorAll('.compare-cell img').length === 2")
    until(page, "[...document.images].every((i) => i.complete && i.naturalWidth > 0)")
    comparison = page.query_selector(f".comparison[data-tag={found[1]}]")
    assert prompt in comparison.inner_text() and "seed 4242" in comparison.inner_text()
    shot = screenshot(page)
    check_scheme(tab, shot)
    seen = {}
    for cell in comparison.query_selector_all(".compare-cell"):
        number = int(cell.get_attribute("data-version"))
        doc = record(studio, cell.get_attribute("data-id"))
        assert doc["loras"][0]["version"] == number and doc["loras"][0]["uid"] == lora_id
        assert doc["versions"][-1]["spec"]["seed"] == 4242 and doc["prompt"] == prompt
        image = doc["versions"][-1]["images"][0]
        drawn = pbox(page, cell.query_selector("img"))
        own = difference(shot, drawn, stored(studio, image["thumbnailUri"]))
        assert own < 14, f"the v{number} cell does not draw its image ({own:.1f})"
        seen[number] = drawn
    assert sorted(seen) == [1, 2]
    if size == "narrow":
        fits(tab)


def test_the_lora_page_shows_each_versions_likeness_and_its_grid_side_by_side(
    open_page: Callable[..., Tab], studio: Studio
) -> None:
    """Issue 30: the LoRA page shows every version's likeness report with its grid, and the
    Compare tab puts the versions' numbers side by side (the studio's LoRA is trained offline: its
    placeholders give an honest no-faces report, never a made-up score)."""
    page = open_page("wide", "light").page
    lora_id = studio.ids["demo-avatar"]
    doc = record(studio, lora_id)
    reports = {v["version"]: v["likeness"] for v in doc["versions"]}
    assert sorted(reports) == [1, 2] and all(r and r["gridUri"] for r in reports.values())
    show(page, f"#/lora/{lora_id}")
    panel = "section.version[data-version='2']"
    page.wait_for_selector(f"{panel} .likeness")
    text = page.inner_text(f"{panel} .likeness")
    assert f"verdict\n{reports[2]['verdict']}" in text.replace("\t", "\n")
    assert all(reason in text for reason in reports[2]["reasons"])
    until(page, f'document.querySelector("{panel} img.likeness-grid")?.naturalWidth > 0')
    page.click("#version-tabs [data-tab=compare]")
    page.wait_for_selector("#likeness-table")
    heads = [h.inner_text() for h in page.query_selector_all("#likeness-table tr.head th[data-version]")]
    assert heads == ["Version 2", "Version 1"]
    for number, report in reports.items():
        cells = page.query_selector_all(f"#likeness-table td[data-version='{number}']")
        assert cells[0].inner_text() == report["verdict"]
    until(page, "[...document.querySelectorAll('#likeness-table img')].every((i) => i.naturalWidth > 0)")
    assert len(page.query_selector_all("#likeness-table img.likeness-grid")) == 2


def test_the_lora_page_draws_the_likeness_of_each_checkpoint_and_marks_the_versions_model(
    open_page: Callable[..., Tab], studio: Studio
) -> None:
    """The curve of a version whose checkpoints were scored: a point per checkpoint at its median,
    the threshold dashed across, the version's model marked, each point a link to its checkpoint's
    own grid. The one without a face has no median: a gap, never a point at zero (a dashed mark
    across the plot at its step, "no median" under it, the line not drawn to it)."""
    page = open_page("wide", "light").page
    uid = studio.ids["gpu-avatar"]
    show(page, f"#/lora/{uid}")
    curve = "section.version[data-version='1'] svg.likeness-curve"
    page.wait_for_selector(curve)
    drawn = page.evaluate(
        f"""[...document.querySelectorAll("{curve} .point")].map((c) => ({{
            step: Number(c.dataset.step), verdict: c.dataset.verdict, chosen: c.classList.contains('chosen'),
            shape: c.tagName, gap: c.classList.contains('gap'),
            y: c.getBBox().y + c.getBBox().height / 2, x: c.getBBox().x + c.getBBox().width / 2,
            top: c.getBBox().y, bottom: c.getBBox().y + c.getBBox().height,
            href: c.closest('a')?.getAttribute('href') }}))"""
    )
    assert [(p["step"], p["verdict"], p["chosen"], p["shape"], p["gap"]) for p in drawn] == [
        (34, "poor", False, "circle", False),
        (68, "good", True, "circle", False),
        (100, "no-faces", False, "line", True),
    ]
    threshold = page.evaluate(f'document.querySelector("{curve} line.threshold").getBBox().y')
    axis = page.evaluate(f'document.querySelector("{curve} line.axis").getBBox().y')
    low, chosen, none = drawn
    assert chosen["y"] < threshold < low["y"] < axis  # 0.70 over 0.31 over 0.13
    assert low["x"] < chosen["x"] < none["x"]
    assert none["bottom"] == axis and none["top"] < chosen["y"]  # across the plot: no value of its own
    line = page.evaluate(
        f"""[...document.querySelectorAll("{curve} polyline.median")].map((l) =>
            l.getAttribute('points').split(' ').map((p) => Number(p.split(',')[0])))"""
    )
    assert [[round(x, 2) for x in run] for run in line] == [[round(low["x"], 2), round(chosen["x"], 2)]]
    # (the line stops where the measurements do)
    said = page.evaluate(
        f'[...document.querySelectorAll("{curve} text.gap-label")].map((t) => t.textContent)'
    )
    assert said == ["no median"]
    assert "step 68 scored best of 3 checkpoints" in page.inner_text(
        "section.version[data-version='1'] figure"
    )
    doc = record(studio, uid)
    for point, (step, *_) in zip(drawn, CHECKPOINTS, strict=True):
        grid = next(p for p in doc["versions"][0]["likeness"]["checkpoints"] if p["step"] == step)["gridUri"]
        assert point["href"].endswith(f"file=step-{step:06d}%2Flikeness-grid.jpg&version=1")
        # the link serves that checkpoint's own grid
        answer = page.evaluate(
            "async (href) => { const r = await fetch(href); "
            "return [r.status, [...new Uint8Array(await r.arrayBuffer())]]; }",
            point["href"],
        )
        assert answer[0] == 200 and bytes(answer[1]) == stored(studio, grid)
    # a LoRA whose reports have no checkpoints draws no curve (the offline demo-avatar simulates
    # checkpoints since issue 45; cloud-avatar's versions have none)
    show(page, f"#/lora/{studio.ids['cloud-avatar']}")
    page.wait_for_selector("section.version[data-version='2'] .likeness")
    assert page.query_selector("svg.likeness-curve") is None


# --- transcripts ------------------------------------------------------------------------------------


def srt_cues(text: str) -> list[tuple[float, float, str]]:
    def seconds(stamp: str) -> float:
        h, m, rest = stamp.replace(",", ".").split(":")
        return int(h) * 3600 + int(m) * 60 + float(rest)

    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.strip().splitlines()
        assert lines[0].isdigit(), block
        start, end = lines[1].split(" --> ")
        cues.append((seconds(start), seconds(end), " ".join(lines[2:])))
    return cues


@pytest.mark.parametrize(("size", "scheme"), [("wide", "light"), ("narrow", "dark")])
def test_a_transcript_with_times_speakers_a_following_player_and_export(
    open_page: Callable[..., Tab], studio: Studio, size: str, scheme: str
) -> None:
    tab = open_page(size, scheme)
    page = tab.page
    show(page, f"#/transcript/{studio.ids['team-call']}")
    page.wait_for_selector("#segments .segment")
    rows = page.query_selector_all("#segments .segment")
    assert len(rows) == len(TURNS)
    no_stray_text(page)
    for row, (speaker, start, _end, words) in zip(rows, TURNS, strict=True):
        assert abs(float(row.get_attribute("data-start")) - start) < 0.01
        text = row.inner_text()
        assert f"Speaker {speaker}" in text and words in text
        assert row.query_selector(".time").inner_text() == f"00:{int(start):02d}"
    # The player plays the recording (served by the laptop's API) and the text follows it.
    until(page, "document.getElementById('player').readyState >= 1")
    assert abs(page.evaluate("document.getElementById('player').duration") - 12) < 0.1
    page.evaluate("document.getElementById('player').currentTime = 6.5")
    until(page, "document.getElementById('segments').dataset.active === '2'")
    assert page.evaluate("document.querySelectorAll('.segment.active').length") == 1
    shot = screenshot(page)
    check_scheme(tab, shot)
    active = region(shot, pbox(page, rows[2]))
    marked = (np.abs(active.astype(np.int32) - np.array(ACTIVE_BGR[scheme])).sum(axis=2) < 40).mean()
    other = region(shot, pbox(page, rows[1]))
    unmarked = (np.abs(other.astype(np.int32) - np.array(ACTIVE_BGR[scheme])).sum(axis=2) < 40).mean()
    assert marked > 0.5 and unmarked < 0.05, (marked, unmarked)
    # A click on a time plays from there.
    rows[3].query_selector(".time").click()
    until(page, "Math.abs(document.getElementById('player').currentTime - 8.6) < 0.5")
    page.evaluate("document.getElementById('player').pause()")
    until(page, "document.getElementById('segments').dataset.active === '3'")
    # Export: SRT and WebVTT files with the same turns and times.
    with page.expect_download() as download:
        page.click("#export-srt")
    assert download.value.suggested_filename == "team-call-v1.srt"
    cues = srt_cues(Path(download.value.path()).read_text())
    assert abs(cues[0][0] - 0.0) < 0.01 and abs(cues[-1][1] - TURNS[-1][2]) < 0.01
    joined = " ".join(c[2] for c in cues)
    for _speaker, _s, _e, words in TURNS:
        assert words.split()[0] in joined
    assert "Speaker A" in joined and "Speaker B" in joined
    with page.expect_download() as download:
        page.click("#export-vtt")
    vtt = Path(download.value.path()).read_text()
    assert vtt.startswith("WEBVTT") and "00:00:03.000 -->" in vtt and "<v Speaker B>" in vtt
    if size == "narrow":
        fits(tab)
    assert tab.outside == []


# --- 420 px, every view ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_view_fits_420_px(open_page: Callable[..., Tab], studio: Studio, scheme: str) -> None:
    tab = open_page("narrow", scheme)
    page = tab.page
    for hash_ in (
        "#/gallery",
        "#/jobs",
        "#/loras",
        f"#/lora/{studio.ids['demo-avatar']}",
        f"#/image/{studio.ids['demo-landscape']}",
        "#/transcripts",
        f"#/job/{studio.ids['demo-avatar']}",
        "#/spend",
        "#/create/lora",
        "#/create/transcript",
    ):
        show(page, hash_)
        fits(tab)
    show(page, "#/jobs")
    shot = screenshot(page)
    check_scheme(tab, shot)
    row = page.query_selector(f"#jobs tr[data-id='{studio.ids['demo-avatar']}']")
    box = box_of(row)
    assert box["width"] <= 420 and box["height"] > 120  # a stacked card, not a 764 px row
    text = row.inner_text()
    assert "demo-avatar" in text and "v2 (2)" in text
    label = 'getComputedStyle(document.querySelector("#jobs td[data-label]"), "::before").content'
    assert page.evaluate(label).startswith('"name')  # the cells say what they are
    bar = box_of(row.query_selector(".progress"))
    assert bar["x"] + bar["width"] <= 420


# --- dark mode ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["wide", "narrow"])
def test_dark_mode_follows_the_browser(open_page: Callable[..., Tab], studio: Studio, size: str) -> None:
    """The same gallery, asked for light and for dark: the page, the cards and the text change;
    the pictures do not."""
    drawn: dict[str, dict[str, float]] = {}
    for scheme in ("light", "dark"):
        tab = open_page(size, scheme)
        page = tab.page
        shot = settled_screenshot(page)  # the card asked for after: the shot's, not a replaced one
        card = page.query_selector(f"#gallery .image-card[data-id='{studio.ids['demo-landscape']}']")
        assert card is not None
        check_scheme(tab, shot)
        title = pbox(page, card.query_selector(".title"))
        text = region(shot, title).astype(np.float32).mean(axis=2)
        # The title's ink: the darkest pixels in light mode, the brightest in dark mode.
        ink = float(text.min()) if scheme == "light" else float(text.max())
        paper = float(np.median(text))
        assert (ink < 80 and paper > 200) if scheme == "light" else (ink > 180 and paper < 60), (ink, paper)
        doc = record(studio, studio.ids["demo-landscape"])
        thumb = pbox(page, card.query_selector("img.thumb"))
        image = doc["versions"][-1]["images"][0]
        assert difference(shot, thumb, stored(studio, image["thumbnailUri"])) < 14
        drawn[scheme] = {"ink": ink, "paper": paper}
        if size == "narrow":
            fits(tab)
    assert drawn["dark"]["paper"] < drawn["light"]["paper"] - 150


def test_edit_and_run_starts_from_a_versions_settings_and_delete_removes_it(
    open_page: Callable[..., Tab], studio: Studio
) -> None:
    page = open_page().page
    original = record(studio, studio.ids["demo-landscape"])
    show(page, f"#/image/{original['_id']}")
    page.click("#record-actions a:has-text('Edit and run')")
    ready(page, "create")
    before = original["versions"][-1]["spec"]
    assert page.input_value("#f-prompt") == before["prompt"]
    assert page.input_value("#f-imageSize") == before["imageSize"]
    assert page.input_value("#f-model") == before["model"]
    assert page.input_value("#f-numImages") == str(before["numImages"])
    assert page.input_value("#f-seed") == ""  # a new seed unless one is given
    page.fill("#f-prompt", "A lighthouse on a cliff at dusk, watercolor")
    page.fill("#f-numImages", "1")
    page.click("#create-submit")
    ready(page, "job")
    wait_done(page)
    uid = page.evaluate("decodeURIComponent(location.hash.split('/')[2])")
    spec = record(studio, uid)["versions"][-1]["spec"]
    assert spec["prompt"].endswith("at dusk, watercolor") and spec["imageSize"] == before["imageSize"]
    assert spec["model"] == before["model"] and spec["tags"] == before["tags"]
    page.click("#delete")  # confirm() is accepted by the fixture
    page.wait_for_selector("#action-status .notice")
    assert "deleted" in page.inner_text("#action-status")
    assert record(studio, uid).get("deleted")
