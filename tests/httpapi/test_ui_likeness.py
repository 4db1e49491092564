"""The web UI's likeness pages, in Debian's chromium (Playwright), against `contentgen api --local`
as a laptop runs it (creates made as local runs, offline provider), and a second API on the same
catalog that does not create (CONTENTGEN_API_CREATE=off):

- verdicts everywhere: LoRA cards and version tabs carry the version's verdict and median as a
  badge of its colour, its reasons on hover and opened;
- the checkpoints side by side (likeness-checkpoints.jpg) drawn as stored, opened large in the
  lightbox beside the curve; the training loss per step as a curve; promoting a checkpoint;
- the evaluation history, "Evaluate again" (the estimate first, then the evaluation, recorded) and
  "Score your own pictures" (an upload scored and recorded; refused with its reason where the API
  does not store scores);
- a LoraEvaluation's own page: its LoRA version, its score on its scale with both ends named, its
  grid and its cost;
- Compare with 12 versions at 420 px: a picker, and the numbers in a box that scrolls sideways
  while the page does not.

Every screenshot is checked for what it shows (pixels where a picture or a colour is drawn, element
geometry elsewhere); `CONTENTGEN_UI_SHOTS=DIR` keeps them for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
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
    until,
    violations,
)
from tests.harness.browser import show_checked as show
from tests.harness.records import record
from tests.harness.servers import serve_app

SIZES = {"wide": {"width": 1400, "height": 1000}, "narrow": {"width": 420, "height": 900}}
SAMPLE = EXAMPLES / "media" / "sample.mp4"
# style.css's verdict colours (--ok, --bad) as BGR, light and dark.
VERDICT_BGR = {
    "light": {"good": (55, 127, 26), "poor": (40, 40, 198)},
    "dark": {"good": (127, 208, 95), "poor": (123, 123, 255)},
}
# gpu-avatar's scored checkpoints: (step, verdict, median, its grid's colour, BGR); step 68 the
# automatic choice.
CHECKPOINTS = (
    (34, "poor", 0.13, (40, 40, 200)),
    (68, "good", 0.70, (40, 160, 40)),
    (100, "no-faces", None, (200, 90, 30)),
)
# many-avatar: 12 versions, each with a verdict and a median (None: no face).
MANY = [
    ("poor", 0.21),
    ("good", 0.48),
    ("no-faces", None),
    ("good", 0.55),
    ("poor", 0.29),
    ("good", 0.61),
    ("unmeasured", None),
    ("good", 0.66),
    ("skipped", None),
    ("poor", 0.83),
    ("good", 0.69),
    ("good", 0.72),
]
LOSS = [(step, round(0.9 * np.exp(-step / 40) + 0.1, 4)) for step in range(1, 101)]


@dataclass
class Lab:
    base: str  # the laptop's API: creates on
    off: str  # the same catalog and store, creates off
    root: Path
    store: LocalStore
    catalog: Catalog
    ids: dict[str, str] = field(default_factory=dict)


def _run(*args: str) -> None:
    assert main(["run", "--offline", *args]) == 0


def _jpeg(picture: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return data.tobytes()


def _side_by_side() -> np.ndarray:
    """A stand-in for likeness-checkpoints.jpg: a row per checkpoint under a row without the LoRA,
    each its own colour, so that a screenshot shows whether it is drawn and the right way up."""
    rows = [(128, 128, 128), *(colour for *_, colour in CHECKPOINTS)]
    return np.concatenate([np.full((150, 1200, 3), colour, np.uint8) for colour in rows])


def _likeness(verdict: str, median: float | None, **more: Any) -> dict[str, Any]:
    reasons = {
        "good": [f"the generated faces' median similarity {median} is over the threshold 0.31"],
        "poor": [
            f"the generated faces' median similarity {median} is under the threshold 0.31: they do not "
            "look like the subject",
            "the LoRA raises the median similarity by +0.03 over the base model alone: it changes little",
        ],
    }.get(verdict, [f"{verdict}: nothing was compared"])
    report: dict[str, Any] = {
        "verdict": verdict,
        "reasons": reasons,
        "median": median,
        "threshold": 0.313,
        "images": 12,
        "faces": 0 if median is None else 12,
        "promptSet": "likeness-v1",
        "seeds": [1, 2],
    }
    if median is not None:
        report.update(
            baselineMedian=0.1, upperBound=0.7, percent=round((median - 0.1) / 0.6 * 100, 1), noFaceRate=0.0
        )
    return report | more


def _gpu_avatar(catalog: Catalog, store: LocalStore, uid: str, name: str, origin: str) -> str:
    """A LoRA trained with the cluster provider: three checkpoints scored (each its grid), the
    checkpoints side by side, its training loss, and two re-evaluations after its run's (one by
    fal, paid; one of pictures made elsewhere, the newest). `origin`: local, a laptop's run (its
    checkpoints can be promoted here), or operator (a cluster's: promoted with kubectl)."""
    from contentgen.api import CheckpointLikeness, Likeness
    from tests.catalog.factory import lora_doc

    doc = lora_doc(uid, owner="demo-user", name=name, uri_of=store.uri)
    doc["origin"] = origin
    version = doc["versions"][-1]
    prefix = f"loras/demo-user/{uid}/v1/"
    points = []
    for step, verdict, median, colour in CHECKPOINTS:
        grid = store.put_bytes(
            f"{prefix}likeness/step-{step:06d}/likeness-grid.jpg",
            _jpeg(np.full((90, 160, 3), colour, np.uint8)),
            "image/jpeg",
        )
        version["artifacts"].append(grid.wire())
        points.append(
            CheckpointLikeness(
                step=step,
                model_uri=store.uri(f"{prefix}checkpoints/step-{step:06d}.safetensors"),
                verdict=verdict,
                median=median,
                grid_uri=grid.uri,
                chosen=step == 68,
                reasons=[f"step {step}: {verdict}"],
            )
        )
    side = store.put_bytes(f"{prefix}likeness-checkpoints.jpg", _jpeg(_side_by_side()), "image/jpeg")
    main_grid = store.put_bytes(
        f"{prefix}likeness-grid.jpg", _jpeg(np.full((90, 160, 3), 90, np.uint8)), "image/jpeg"
    )
    version["artifacts"] += [side.wire(), main_grid.wire()]
    choice = "step 68 scored best of 3 checkpoints (good, median 0.70; the last step, 100: no-faces)"
    likeness = Likeness(
        verdict="good",
        median=0.7,
        threshold=0.313,
        baseline_median=0.1,
        upper_bound=0.7,
        percent=100.0,
        reasons=["the generated faces' median similarity 0.70 is over the threshold 0.31"],
        checkpoints=points,
        chosen_step=68,
        final_step=100,
        choice=choice,
        grid_uri=main_grid.uri,
    ).wire()
    likeness["checkpointsGridUri"] = side.uri
    evaluations = []
    for number, (verdict, median, extra) in enumerate(
        [
            ("poor", 0.22, {"by": "api", "provider": "fal", "costUsd": 0.42}),
            (
                "good",
                0.64,
                {"by": "cli", "source": "pictures", "costUsd": 0.0, "pictures": [{"name": "a.png"}] * 3},
            ),
        ],
        start=1,
    ):
        grid = store.put_bytes(
            f"{prefix}likeness/e{number}/likeness-grid.jpg",
            _jpeg(np.full((90, 160, 3), 60 * number, np.uint8)),
            "image/jpeg",
        )
        version["artifacts"].append(grid.wire())
        evaluations.append(
            {
                "evaluation": number,
                "version": 1,
                "at": doc["createdAt"] + timedelta(days=number),
                "promptSet": "likeness-v1",
                "seeds": [1, 2],
                "likeness": _likeness(verdict, median, gridUri=grid.uri),
                **extra,
            }
        )
    version.update(
        likeness=likeness,
        evaluations=evaluations,
        chosenStep=68,
        finalModelUri=store.uri(f"{prefix}checkpoints/step-000100.safetensors"),
        provider="cluster",
        trainingLoss=[{"step": s, "loss": loss} for s, loss in LOSS],
    )
    catalog.upsert(doc)
    return uid


def _many_avatar(catalog: Catalog, store: LocalStore) -> str:
    from tests.catalog.factory import lora_doc

    uid = "many-0000-lora"
    doc = lora_doc(uid, owner="demo-user", name="many-avatar", versions=len(MANY), uri_of=store.uri)
    for version, (verdict, median) in zip(doc["versions"], MANY, strict=True):
        version["likeness"] = _likeness(verdict, median)
    catalog.upsert(doc)
    return uid


def _scored_evaluation(catalog: Catalog, uid: str) -> None:
    """The LoraEvaluation the offline provider ran has no face to score (placeholders): give its
    record a measured report and a cost, as a fal evaluation's would have (its grid stays the one
    it stored)."""
    doc = catalog.get(uid)
    assert doc is not None
    for holder in (doc, doc["versions"][-1]):
        report = holder["likeness"]
        holder["likeness"] = report | _likeness("good", 0.52) | {"gridUri": report["gridUri"]}
    doc["versions"][-1]["costUsd"] = 0.42
    doc["cost"] = {**(doc.get("cost") or {}), "estimatedUsd": 0.84, "actualUsd": 0.42}
    catalog.upsert(doc)


def _fill(root: Path) -> tuple[LocalStore, dict[str, str]]:
    store_dir, catalog_dir = root / "store", root / "catalog"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CONTENTGEN_STORE", str(store_dir))
        env.setenv("CONTENTGEN_CATALOG", str(catalog_dir))
        env.chdir(root)
        _run("--source", str(SAMPLE), str(EXAMPLES / "loratraining.yaml"))
        evaluation = yaml.safe_load((EXAMPLES / "loraevaluation.yaml").read_text())
        (root / "evaluation.yaml").write_text(yaml.safe_dump(evaluation))
        _run(str(root / "evaluation.yaml"))
    store = LocalStore(store_dir)
    catalog = EmbeddedCatalog(catalog_dir)
    ids = {doc["name"]: doc["_id"] for doc in catalog.find(Filters(), page=Page(500)).docs}
    _scored_evaluation(catalog, ids["demo-avatar-again"])
    ids["gpu-avatar"] = _gpu_avatar(catalog, store, "gpu-0000-lora", "gpu-avatar", "local")
    ids["cloud-avatar"] = _gpu_avatar(catalog, store, "cloud-0000-lora", "cloud-avatar", "operator")
    ids["many-avatar"] = _many_avatar(catalog, store)
    catalog.close()
    return store, ids


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    root = Path(tempfile.mkdtemp(prefix="contentgen-likeness-ui-"))
    try:
        store, ids = _fill(root)
        catalog = EmbeddedCatalog(root / "catalog")
        common = dict(
            catalog="unused://",
            store=str(store.root),
            api_auth=["local"],
            api_offline=True,
            stream_poll_seconds=0.1,
        )
        laptop = create_app(
            ApiSettings(**common, api_create="local"),  # type: ignore[arg-type]
            catalog=catalog,
            store=lambda: store,
        )
        off = create_app(ApiSettings(**common, api_create="off"), catalog=catalog, store=lambda: store)  # type: ignore[arg-type]
        with serve_app(laptop) as base, serve_app(off) as off_base:
            yield Lab(base, off_base, root, store, catalog, ids)
        laptop.state.services.creator.close()
        catalog.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def open_page(chromium: Any, lab: Lab) -> Iterator[Callable[..., Tab]]:
    contexts: list[Any] = []

    def start(size: str = "wide", scheme: str = "light", base: str | None = None) -> Tab:
        context = chromium.new_context(viewport=SIZES[size], device_scale_factor=1, color_scheme=scheme)
        contexts.append(context)
        page, outside = local_page(context, base or lab.base)
        load(page, (base or lab.base) + "/")
        ready(page, "gallery")
        return Tab(page, outside, SIZES[size]["width"], scheme)

    yield start
    for context in contexts:
        context.close()


def stored(lab: Lab, uri: str) -> bytes:
    return lab.store.get_bytes(lab.store.key_of(uri))


def wire(lab: Lab, uid: str) -> dict[str, Any]:
    """The record as the API gives it (the newest evaluation's report, its history, promotions)."""
    from contentgen.catalog import to_record

    return to_record(record(lab, uid)).wire()  # type: ignore[arg-type]


def coloured(shot: np.ndarray, box: dict[str, float], bgr: tuple[int, int, int]) -> float:
    """The share of a box's pixels within a small distance of a colour."""
    part = region(shot, box).astype(np.int32)
    return float((np.abs(part - np.array(bgr)).sum(axis=2) < 45).mean())


def curve_points(page: Any, scope: str) -> list[dict[str, Any]]:
    return page.evaluate(
        f"""[...document.querySelectorAll("{scope} svg.likeness-curve .point")].map((c) => ({{
            step: Number(c.dataset.step), model: c.classList.contains('chosen'),
            automatic: c.classList.contains('automatic') }}))"""
    )


# --- verdicts on LoRA cards and version tabs -----------------------------------------------------


@pytest.mark.parametrize(("size", "scheme"), [("wide", "light"), ("narrow", "dark")])
def test_lora_cards_and_version_tabs_show_each_versions_verdict_with_its_median_and_reasons(
    open_page: Callable[..., Tab], lab: Lab, size: str, scheme: str
) -> None:
    tab = open_page(size, scheme)
    page = tab.page
    show(page, "#/loras")
    for name in ("gpu-avatar", "many-avatar", "demo-avatar"):
        latest = wire(lab, lab.ids[name])["versions"][-1]["likeness"]
        card = f"#loras .lora-card[data-id='{lab.ids[name]}']"
        badge = page.query_selector(f"{card} .verdict-line .badge.verdict")
        assert badge.get_attribute("data-verdict") == latest["verdict"]
        text = badge.inner_text()
        assert text.startswith(latest["verdict"])
        if latest.get("median") is not None:
            assert f"{latest['median']:.2f}" in text
        title = page.get_attribute(f"{card} .verdict-line summary", "title") or badge.get_attribute("title")
        assert all(reason in title for reason in latest["reasons"])  # on hover
        page.click(f"{card} .verdict-line summary")  # opened: every reason, one line each
        shown = [li.inner_text() for li in page.query_selector_all(f"{card} .verdict-line li")]
        assert shown == latest["reasons"]
    shot = screenshot(page)
    check_scheme(tab, shot)
    # gpu-avatar's newest report (pictures made elsewhere) is good: its badge is drawn in --ok
    good = pbox(
        page, page.query_selector(f"#loras .lora-card[data-id='{lab.ids['gpu-avatar']}'] .badge.verdict")
    )
    assert coloured(shot, good, VERDICT_BGR[scheme]["good"]) > 0.4
    if size == "narrow":
        fits(tab)

    # the version tabs of a LoRA with 12 versions: the newest four as tabs, each with its badge,
    # the older ones in a list that opens them
    show(page, f"#/lora/{lab.ids['many-avatar']}")
    tabs = page.query_selector_all("#version-tabs [role=tab]")
    assert [t.get_attribute("data-tab") for t in tabs] == ["v12", "v11", "v10", "v9", "compare"]
    for t in tabs[:4]:
        number = int(t.get_attribute("data-tab")[1:])
        verdict, median = MANY[number - 1]
        badge = t.query_selector(".badge.verdict")
        assert badge.get_attribute("data-verdict") == verdict
        assert badge.inner_text() == verdict + ("" if median is None else f" {median:.2f}")
        assert _likeness(verdict, median)["reasons"][0] in badge.get_attribute("title")
    shot = screenshot(page)
    assert coloured(shot, pbox(page, tabs[0].query_selector(".badge")), VERDICT_BGR[scheme]["good"]) > 0.4
    assert coloured(shot, pbox(page, tabs[2].query_selector(".badge")), VERDICT_BGR[scheme]["poor"]) > 0.4
    options = page.eval_on_selector_all("#older-versions option[value^=v]", "(os) => os.map((o) => o.value)")
    assert options == [f"v{n}" for n in range(8, 0, -1)]
    page.evaluate("document.getElementById('main').removeAttribute('data-ready')")
    page.select_option("#older-versions", "v2")
    ready(page, "lora")
    assert page.is_visible("section.version[data-version='2']")
    assert page.get_attribute("#version-tabs [data-tab=v2]", "aria-selected") == "true"
    assert page.inner_text("#verdict-v2").startswith("good 0.48")
    if size == "narrow":
        fits(tab)
    no_stray_text(page)
    assert tab.outside == []


# --- the checkpoints side by side, the training loss, promoting a checkpoint --------------------


def test_the_checkpoints_side_by_side_open_large_beside_the_curve_and_the_loss_is_drawn(
    open_page: Callable[..., Tab], lab: Lab
) -> None:
    tab = open_page("wide", "light")
    page = tab.page
    uid = lab.ids["gpu-avatar"]
    version = wire(lab, uid)["versions"][0]
    reports = [version["likeness"], *(h["likeness"] for h in version["likenessHistory"])]
    side = next(r["checkpointsGridUri"] for r in reports if r.get("checkpointsGridUri"))
    show(page, f"#/lora/{uid}")
    image = page.query_selector("#checkpoints-grid-v1 img.checkpoints-grid")
    until(page, "document.querySelector('#checkpoints-grid-v1 img').naturalWidth === 1200")
    shot = screenshot(page)
    drawn = pbox(page, image)
    assert drawn["width"] > 300
    assert difference(shot, drawn, stored(lab, side)) < 12  # the stored picture, the right way up
    # opened large in the lightbox, with the curve beside it
    image.click()
    page.wait_for_selector("#lightbox[data-picture=checkpoints]")
    until(
        page,
        "(() => { const i = document.getElementById('lb-image'); "
        "return i.complete && i.naturalWidth > 0; })()",
    )
    big = box_of(page.query_selector("#lb-image"))
    assert big["width"] > drawn["width"]
    shot = viewport(page)  # the lightbox is fixed over the window
    assert difference(shot, big, stored(lab, side)) < 12
    assert [p["step"] for p in curve_points(page, "#lb-meta")] == [34, 68, 100]
    aside = box_of(page.query_selector("#lb-meta svg.likeness-curve"))
    assert aside["x"] >= big["x"] + big["width"] - 1  # beside the picture
    page.keyboard.press("Escape")
    until(page, "!document.getElementById('lightbox')")
    # each checkpoint's own grid opens too, and the main grid
    page.click("#checkpoints-v1 tr[data-step='34'] a.open-grid")
    page.wait_for_selector("#lightbox[data-picture=grid]")
    until(page, "document.getElementById('lb-image').naturalWidth > 0")
    assert "step 34" in page.inner_text("#lb-title")
    page.keyboard.press("Escape")

    # the training loss per step: a point per logged step, falling as the loss falls, the scored
    # checkpoints dashed across it
    loss = page.evaluate(
        """(() => { const line = document.querySelector('#loss-v1 polyline.loss');
            return { points: line.getAttribute('points').split(' ').map((p) => p.split(',').map(Number)),
              steps: [...document.querySelectorAll('#loss-v1 line.checkpoint')].map((l) => +l.dataset.step),
              model: [...document.querySelectorAll('#loss-v1 line.model')].map((l) => +l.dataset.step),
            }; })()"""
    )
    assert len(loss["points"]) == len(LOSS)
    xs = [x for x, _ in loss["points"]]
    ys = [y for _, y in loss["points"]]
    assert xs == sorted(xs) and ys == sorted(ys)  # the loss falls: the line goes down the screen
    assert ys[-1] - ys[0] > 80
    assert loss["steps"] == [34, 68, 100] and loss["model"] == [68]
    assert (
        f"Training loss per step: {LOSS[0][1]:.3f} at step 1, {LOSS[-1][1]:.3f} at step 100"
        in page.inner_text("#loss-v1")
    )
    # a LoRA without a logged loss or scored checkpoints draws neither (many-avatar; the offline
    # demo-avatar simulates checkpoints since issue 45)
    show(page, f"#/lora/{lab.ids['many-avatar']}")
    assert (
        page.query_selector("svg.loss-curve") is None and page.query_selector("img.checkpoints-grid") is None
    )
    assert tab.outside == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_promote_dialog_fits_a_phone_and_is_accessible(
    open_page: Callable[..., Tab], lab: Lab, scheme: str
) -> None:
    tab = open_page("narrow", scheme)
    page = tab.page
    show(page, f"#/lora/{lab.ids['gpu-avatar']}")
    page.click("#checkpoints-v1 tr[data-step='100'] button.promote")
    page.wait_for_selector("#promote-dialog")
    assert "Its likeness: no-faces, nothing measured." in page.inner_text("#promote-what")
    fits(tab, "main *, .dialog *")
    assert violations(page) == []
    viewport(page)
    page.click("#promote-cancel")
    until(page, "!document.getElementById('promote-dialog')")
    assert wire(lab, lab.ids["gpu-avatar"])["versions"][0].get("promotion") is None


def test_using_a_checkpoint_makes_it_the_model_and_says_who_chose_it(
    open_page: Callable[..., Tab], lab: Lab
) -> None:
    page = open_page("wide", "light").page
    uid = lab.ids["gpu-avatar"]
    show(page, f"#/lora/{uid}")
    assert page.inner_text("#model-v1") == "step 68, the automatic choice"
    assert [(p["step"], p["model"]) for p in curve_points(page, "#panel-v1")] == [
        (34, False),
        (68, True),
        (100, False),
    ]
    assert page.query_selector("#checkpoints-v1 tr[data-step='68'] button.promote") is None  # in use
    # "Use this checkpoint" asks in a dialog that says what it does and takes a note, as the CLI's
    # --note; Escape (or Cancel) leaves everything as it was
    page.click("#checkpoints-v1 tr[data-step='34'] button.promote")
    page.wait_for_selector("#promote-dialog[role=dialog][aria-modal=true]")
    assert page.evaluate("document.activeElement.id") == "promote-note"
    assert page.inner_text("#promote-title") == "Use checkpoint step 34 as version 1's model?"
    assert "Its likeness: poor, median 0.13." in page.inner_text("#promote-what")
    assert violations(page) == []
    viewport(page)
    page.keyboard.press("Escape")
    until(page, "!document.getElementById('promote-dialog')")
    assert wire(lab, uid)["versions"][0].get("promotion") is None
    page.click("#checkpoints-v1 tr[data-step='34'] button.promote")
    page.fill("#promote-note", "sharper eyes")
    page.evaluate("document.getElementById('main').removeAttribute('data-ready')")
    page.click("#promote-confirm")
    ready(page, "lora")
    until(page, "document.getElementById('model-v1')?.textContent.startsWith('step 34')")
    assert page.query_selector("#promote-dialog") is None
    said = page.inner_text("#model-v1")
    assert re.match(r"step 34, chosen by \S+ at 20\d\d-\d\d-\d\d \d\d:\d\d UTC", said) and said.endswith(
        "(automatic choice: step 68) — “sharper eyes”"
    )
    assert wire(lab, uid)["versions"][0]["promotion"]["note"] == "sharper eyes"
    points = curve_points(page, "#panel-v1")
    assert [(p["step"], p["model"], p["automatic"]) for p in points] == [
        (34, True, False),
        (68, False, True),
        (100, False, False),
    ]
    version = wire(lab, uid)["versions"][0]
    assert version["promotion"]["step"] == 34 and version["promotion"]["automaticStep"] == 68
    assert version["modelUri"].endswith("step-000034.safetensors")
    # going back is choosing the automatic step again (without a note)
    page.click("#checkpoints-v1 tr[data-step='68'] button.promote")
    page.wait_for_selector("#promote-dialog")
    page.evaluate("document.getElementById('main').removeAttribute('data-ready')")
    page.click("#promote-confirm")
    ready(page, "lora")
    until(page, "document.getElementById('model-v1')?.textContent.startsWith('step 68, chosen by')")
    assert wire(lab, uid)["versions"][0]["promotion"]["step"] == 68
    no_stray_text(page)
    # a cluster's LoRA: the API refuses, and the page says why in the server's words
    show(page, f"#/lora/{lab.ids['cloud-avatar']}")
    page.click("#checkpoints-v1 tr[data-step='34'] button.promote")
    page.click("#promote-confirm")
    page.wait_for_selector("#promote-status-v1 .notice.error")
    refused = page.query_selector("#promote-status-v1 .notice")
    assert refused.get_attribute("data-code") == "invalid"
    assert "kubectl annotate" in refused.inner_text()
    assert wire(lab, lab.ids["cloud-avatar"])["versions"][0].get("promotion") is None


# --- the evaluation history, Evaluate again, scoring your own pictures ------------------------------


def test_the_history_lists_every_evaluation_with_who_when_what_and_its_cost(
    open_page: Callable[..., Tab], lab: Lab
) -> None:
    page = open_page("wide", "light").page
    show(page, f"#/lora/{lab.ids['gpu-avatar']}")
    rows = page.query_selector_all("#evaluations-v1 tr[data-evaluation]")
    assert [r.get_attribute("data-evaluation") for r in rows] == ["2", "1", "0"]  # newest first
    cells = [[c.inner_text() for c in r.query_selector_all("td")] for r in rows]
    newest, paid, own = cells
    # the one the version's report is (the API's choice, docs/likeness.md) is marked
    version = wire(lab, lab.ids["gpu-avatar"])["versions"][0]
    shown = version.get("likenessEvaluation") or 0
    assert [c[0].endswith("(shown above)") for c in cells] == [n == shown for n in (2, 1, 0)]
    assert (
        newest[0].startswith("e2")
        and newest[2] == "cli"
        and newest[3] == "source: pictures (3 made elsewhere)"
    )
    assert newest[4] == "good 0.64" and newest[5] == "0.64" and newest[6] == "$0.00"
    assert paid[0].startswith("e1") and paid[2:7] == ["api", "fal", "poor 0.22", "0.22", "$0.42"]
    assert (
        own[0].startswith("e0")
        and own[2] == "its training run"
        and own[3] == "cluster"
        and own[6] == "in its run's"
    )
    assert all(re_when(c[1]) for c in cells)
    # the version's badge is its report's, whichever evaluation the API says that is
    median = version["likeness"].get("median")
    assert page.inner_text("#verdict-v1") == f"{version['likeness']['verdict']}" + (
        "" if median is None else f" {median:.2f}"
    )
    # each grid opens in the lightbox
    rows[1].query_selector("button.open-grid").click()
    page.wait_for_selector("#lightbox[data-picture=grid]")
    until(page, "document.getElementById('lb-image').naturalWidth > 0")
    assert "evaluation e1" in page.inner_text("#lb-title")


def top_rows(picture: bytes, box: dict[str, float]) -> bytes:
    """What a thumbnail of a picture's top rows shows in `box` (object-fit: cover, object-position:
    top): its whole width and as many of its top rows as the box's shape holds."""
    image = cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_COLOR)
    rows = min(image.shape[0], round(image.shape[1] * box["height"] / box["width"]))
    return cv2.imencode(".png", image[:rows])[1].tobytes()


def viewport(page: Any) -> np.ndarray:
    """What the window shows (a dialog or the lightbox, fixed over the page); kept in
    $CONTENTGEN_UI_SHOTS (when set) as `screenshot` keeps a page."""
    shot = cv2.imdecode(np.frombuffer(page.screenshot(), np.uint8), cv2.IMREAD_COLOR)
    assert shot is not None
    if keep := os.environ.get("CONTENTGEN_UI_SHOTS"):
        name = re.sub(r"[^a-zA-Z0-9]+", "-", os.environ.get("PYTEST_CURRENT_TEST", "shot").split(" ")[0])
        Path(keep).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(Path(keep) / f"{name}-window-{time.monotonic_ns()}.png"), shot)
    return shot


def re_when(text: str) -> bool:
    return re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", text) is not None


def test_evaluate_again_shows_the_estimate_then_evaluates_and_scoring_pictures_records_them(
    open_page: Callable[..., Tab], lab: Lab
) -> None:
    page = open_page("wide", "light").page
    uid = lab.ids["demo-avatar"]
    show(page, f"#/lora/{uid}")
    before = [
        r.get_attribute("data-evaluation")
        for r in page.query_selector_all("#evaluations-v1 tr[data-evaluation]")
    ]
    assert before == ["1", "0"]  # the LoraEvaluation's, then the training run's
    made_by = page.query_selector("#evaluations-v1 tr[data-evaluation='1'] td[data-label=by] a")
    assert made_by.get_attribute("href") == f"#/evaluation/{lab.ids['demo-avatar-again']}"
    page.fill("#evaluate-seeds-v1", "5, 6")
    page.click("#evaluate-v1")
    page.wait_for_selector("#evaluate-estimate-v1")
    estimate = page.inner_text("#evaluate-estimate-v1")
    assert "offline, likeness-v1, seeds 5, 6: estimated $0.00" in estimate
    assert record(lab, uid)["versions"][0].get("evaluations", [])[-1]["evaluation"] == 1  # nothing ran yet
    page.evaluate("document.getElementById('main').removeAttribute('data-ready')")
    page.click("#evaluate-confirm-v1")
    ready(page, "lora")
    until(page, "document.querySelector('#evaluations-v1 tr[data-evaluation]')?.dataset.evaluation === '2'")
    newest = [c.inner_text() for c in page.query_selector_all("#evaluations-v1 tr[data-evaluation='2'] td")]
    # the offline provider's pictures of the LoRA's subject (its simulated likeness), measured
    assert newest[2] == "api" and newest[3] == "offline" and re.fullmatch(r"(good|poor) 0\.\d\d", newest[4])
    version = wire(lab, uid)["versions"][0]
    reports = {version.get("likenessEvaluation") or 0: version["likeness"]} | {
        h["evaluation"]: h["likeness"] for h in version.get("likenessHistory", [])
    }
    assert reports[2]["seeds"] == [5, 6]  # recorded, shown or in the history as the API decides

    # score pictures made elsewhere: two pictures without a face, recorded as e3 (source: pictures)
    pictures = []
    for n, colour in enumerate(((30, 120, 200), (200, 200, 40)), start=1):
        path = lab.root / f"elsewhere-{n}.png"
        cv2.imwrite(str(path), np.full((256, 256, 3), colour, np.uint8))
        pictures.append(str(path))
    page.click("#score-v1 summary")
    page.set_input_files("#score-pictures-v1", pictures)
    page.evaluate("document.getElementById('main').removeAttribute('data-ready')")
    page.click("#score-submit-v1")
    ready(page, "lora")
    until(page, "document.querySelector('#evaluations-v1 tr[data-evaluation]')?.dataset.evaluation === '3'")
    scored = [c.inner_text() for c in page.query_selector_all("#evaluations-v1 tr[data-evaluation='3'] td")]
    assert scored[3] == "source: pictures (2 made elsewhere)" and scored[4] == "no-faces"
    version = wire(lab, uid)["versions"][0]
    sources = {version.get("likenessEvaluation") or 0: version.get("likenessSource")} | {
        h["evaluation"]: h.get("source") for h in version.get("likenessHistory", [])
    }
    assert sources[3] == "pictures"
    no_stray_text(page)


def test_where_the_api_does_not_create_evaluate_again_is_off_with_the_reason_and_a_score_says_why(
    open_page: Callable[..., Tab], lab: Lab
) -> None:
    tab = open_page("wide", "light", base=lab.off)
    page = tab.page
    show(page, f"#/lora/{lab.ids['gpu-avatar']}")
    assert page.is_disabled("#evaluate-v1")
    assert "Evaluate again is off: this API does not create" in page.inner_text("#evaluate-off-v1")
    buttons = page.query_selector_all("#checkpoints-v1 button.promote")
    assert buttons and all(b.is_disabled() for b in buttons)
    uid = lab.ids["demo-avatar"]  # a version with its dataset: scored where an API stores scores
    show(page, f"#/lora/{uid}")
    before = len(record(lab, uid)["versions"][0].get("evaluations") or [])
    path = lab.root / "refused.png"
    cv2.imwrite(str(path), np.full((64, 64, 3), 128, np.uint8))
    page.click("#score-v1 summary")
    page.set_input_files("#score-pictures-v1", [str(path)])
    page.click("#score-submit-v1")
    page.wait_for_selector("#score-status-v1 .notice.error")
    refused = page.query_selector("#score-status-v1 .notice")
    assert refused.get_attribute("data-code") == "create_disabled"
    assert "contentgen api --local" in refused.inner_text()  # the server's reason, in its words
    assert len(record(lab, uid)["versions"][0].get("evaluations") or []) == before
    assert tab.outside == []


# --- a LoraEvaluation's own page ----------------------------------------------------------------------


@pytest.mark.parametrize(("size", "scheme"), [("wide", "light"), ("narrow", "dark")])
def test_a_lora_evaluation_has_its_own_page_with_its_score_on_its_scale_its_grid_and_cost(
    open_page: Callable[..., Tab], lab: Lab, size: str, scheme: str
) -> None:
    tab = open_page(size, scheme)
    page = tab.page
    uid = lab.ids["demo-avatar-again"]
    doc = wire(lab, uid)
    likeness = doc["likeness"]
    # the job page's outputs and search lead here
    show(page, f"#/job/{uid}")
    assert page.get_attribute("#outputs", "href") == f"#/evaluation/{uid}"
    show(page, f"#/evaluation/{uid}")
    link = page.query_selector("#evaluation-lora")
    assert link.get_attribute("href") == f"#/lora/{lab.ids['demo-avatar']}?tab=v1"
    assert link.inner_text() == "default/demo-avatar version 1"
    assert page.inner_text("#evaluation-number").startswith("e1 of version 1")
    assert page.inner_text("#evaluation-verdict") == "good 0.52"
    assert [li.inner_text() for li in page.query_selector_all("#evaluation-reasons li")] == likeness[
        "reasons"
    ]
    assert page.inner_text("#evaluation-cost").startswith("$0.42")
    ends = page.inner_text("#evaluation-scale .scale-ends")
    assert "0 % without the LoRA (0.10)" in ends and "100 % the subject's own photographs (0.70)" in ends
    assert "median 0.52 is 70 % of the way" in page.inner_text("#evaluation-scale")
    until(page, "document.getElementById('evaluation-grid').naturalWidth > 0")
    shot = screenshot(page)
    check_scheme(tab, shot)
    # the mark stands at 70 % of the bar, the fill drawn in --ok up to it
    bar = pbox(page, page.query_selector("#evaluation-scale .scale-bar"))
    mark = pbox(page, page.query_selector("#evaluation-scale .mark"))
    at = (mark["x"] + mark["width"] / 2 - bar["x"]) / bar["width"]
    assert abs(at - 0.7) < 0.02, at
    filled = {
        **bar,
        "x": bar["x"] + 3,
        "width": bar["width"] * 0.6,
        "y": bar["y"] + 3,
        "height": bar["height"] - 6,
    }
    assert coloured(shot, filled, VERDICT_BGR[scheme]["good"]) > 0.8
    empty = {**filled, "x": bar["x"] + bar["width"] * 0.78, "width": bar["width"] * 0.18}
    assert coloured(shot, empty, VERDICT_BGR[scheme]["good"]) < 0.05
    # the grid is the one the evaluation stored beside the LoRA version: its top rows as a
    # thumbnail (issue 45: a tall grid drawn whole made the page thousands of pixels tall)
    drawn = pbox(page, page.query_selector("#evaluation-grid"))
    assert drawn["height"] <= 322
    grid = {
        "x": drawn["x"] + 1,
        "y": drawn["y"] + 1,
        "width": drawn["width"] - 2,
        "height": drawn["height"] - 2,
    }
    assert difference(shot, grid, top_rows(stored(lab, likeness["gridUri"]), grid)) < 14  # inside its border
    if size == "narrow":
        fits(tab)
    page.click("#evaluation-grid")
    page.wait_for_selector("#lightbox[data-picture=grid]")
    page.keyboard.press("Escape")
    page.click("#evaluation-lora")
    ready(page, "lora")
    assert page.is_visible("section.version[data-version='1']")
    no_stray_text(page)
    assert tab.outside == []


# --- Compare with many versions, at 420 px ------------------------------------------------------------


@pytest.mark.parametrize(("size", "scheme"), [("narrow", "dark"), ("wide", "light")])
def test_compare_picks_among_12_versions_and_fits_420_px(
    open_page: Callable[..., Tab], lab: Lab, size: str, scheme: str
) -> None:
    tab = open_page(size, scheme)
    page = tab.page
    uid = lab.ids["many-avatar"]
    show(page, f"#/lora/{uid}?tab=compare")
    boxes = page.query_selector_all("#compare-pick input[name=version]")
    assert [int(b.get_attribute("value")) for b in boxes] == list(range(12, 0, -1))
    assert [int(b.get_attribute("value")) for b in boxes if b.is_checked()] == [12, 11, 10, 9]

    def columns() -> list[int]:
        heads = page.query_selector_all("#likeness-table tr.head th[data-version]")
        return [int(h.get_attribute("data-version")) for h in heads if h.is_visible()]

    assert columns() == [12, 11, 10, 9]
    page_fits(tab)
    shot = screenshot(page)
    check_scheme(tab, shot)
    # pick two: the table shows those, and Compare draws with those
    page.click("#compare-pick label:has(input[value='9'])")
    page.click("#compare-pick label:has(input[value='10'])")
    page.click("#compare-pick label:has(input[value='2'])")
    assert columns() == [12, 11, 2]
    for number in (12, 11, 2):
        verdict, _ = MANY[number - 1]
        assert page.inner_text(f"#likeness-table td[data-version='{number}']") == verdict
    # all 12: the numbers scroll sideways in their box, the page does not
    page.click("#pick-all")
    assert columns() == list(range(12, 0, -1))
    page_fits(tab)
    scroller = page.query_selector("#likeness-scroll")
    wide = page.evaluate(
        "(() => { const s = document.getElementById('likeness-scroll'); "
        "return [s.scrollWidth, s.clientWidth]; })()"
    )
    assert wide[0] > wide[1] and wide[0] >= 12 * 100
    page.evaluate("document.getElementById('likeness-scroll').scrollLeft = 1e6")
    last = box_of(page.query_selector("#likeness-table tr.head th[data-version='1']"))
    frame = box_of(scroller)
    assert frame["x"] <= last["x"] and last["x"] + last["width"] <= frame["x"] + frame["width"] + 1
    label = box_of(page.query_selector("#likeness-table tr:nth-child(2) > th"))
    assert abs(label["x"] - frame["x"]) <= 2  # the row names stay in view
    shot = screenshot(page)
    check_scheme(tab, shot)
    page.click("#pick-newest")
    assert columns() == [12, 11, 10, 9]
    page_fits(tab)
    assert tab.outside == []


def test_compare_draws_with_the_versions_picked(open_page: Callable[..., Tab], lab: Lab) -> None:
    """One ImageGeneration per version picked, loraRef pinned to it (on the LoRA trained here,
    whose versions a laptop's run can load)."""
    page = open_page("wide", "light").page
    uid = lab.ids["demo-avatar"]
    if len(record(lab, uid)["versions"]) < 2:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("CONTENTGEN_STORE", str(lab.store.root))
            env.setenv("CONTENTGEN_CATALOG", str(lab.root / "catalog"))
            env.chdir(lab.root)
            again = yaml.safe_load((EXAMPLES / "loratraining.yaml").read_text())
            again["spec"]["training"]["steps"] = 1200
            (lab.root / "lora-v2.yaml").write_text(yaml.safe_dump(again))
            _run("--source", str(SAMPLE), str(lab.root / "lora-v2.yaml"))
    show(page, f"#/lora/{uid}?tab=compare")
    checked = page.eval_on_selector_all(
        "#compare-pick input:checked", "(bs) => bs.map((b) => Number(b.value))"
    )
    assert checked == [2, 1]
    page.click("#compare-pick label:has(input[value='1'])")
    prompt = "dmavatar on a bridge at dawn"
    page.fill("#compare-prompt", prompt)
    page.click("#compare-form button[type=submit]")
    page.wait_for_selector("#compare-status .notice")
    said = page.inner_text("#compare-status")
    assert "Started 1 image generation," in said, said
    made = [d for d in lab.catalog.find(Filters(), page=Page(500)).docs if d.get("prompt") == prompt]
    assert [record(lab, d["_id"])["spec"]["loras"][0]["loraRef"]["version"] for d in made] == [2]


def page_fits(tab: Tab) -> None:
    """Nothing but the scrolling box is wider than the window, and the page does not scroll
    sideways; what is in the box may be, scrolled into view inside it."""
    page = tab.page
    assert page.evaluate("document.documentElement.scrollWidth") <= tab.width
    past = page.evaluate(
        """(w) => [...document.querySelectorAll('main *, header *')]
            .filter((e) => e.offsetParent !== null && !e.closest('.table-scroll table')
              && e.getBoundingClientRect().right > w + 1)
            .map((e) => e.tagName + '#' + e.id + '.' + e.className).slice(0, 5)""",
        tab.width,
    )
    assert past == [], f"past the right edge at {tab.width} px: {past}"
