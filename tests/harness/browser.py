"""The browser for the web UI's tests: Debian's chromium, headless, driven by Playwright (its own
browser download is not used; `make browser` installs chromium), pages that may load only from
the server under test, waits that are hang guards, and screenshots checked for what they show."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A hang guard, not a measurement: at load 6.5 on two cores a first page load took over 20 s
# (make test at 04:05, tests/httpapi/test_ui_studio.py); every wait with it is for a page to get
# somewhere, so a longer guard only makes a hang fail later.
WAIT_MS = 60_000
WHITE = cv2.imencode(".png", np.full((10, 10, 3), 255, np.uint8))[1].tobytes()


@contextmanager
def launch() -> Iterator[Any]:
    """Debian's chromium under Playwright; fails in one line when it is not installed."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="pip install playwright (the dev extra has it)"
    )
    if not Path(CHROMIUM).is_file():
        pytest.fail("chromium is not installed: `make browser` installs Debian's (apt-get install chromium)")
    with sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


def local_page(context: Any, base: str) -> tuple[Any, list[str]]:
    """A page of `context` that may load only from `base` (no CDN): every request elsewhere is
    refused and listed in the second item."""
    outside: list[str] = []

    def only_local(route: Any) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    _follow(page)
    return page, outside


# What each page said and asked for, for the message of a wait that timed out (keyed by id(page)).
_TRAILS: dict[int, Trail] = {}


@dataclass
class Trail:
    said: list[str] = field(default_factory=list)  # console errors, page errors, failed requests
    pending: dict[int, tuple[str, float]] = field(default_factory=dict)  # id(request) -> url, since


def _follow(page: Any) -> None:
    trail = _TRAILS[id(page)] = Trail()

    def console(message: Any) -> None:
        if message.type in ("error", "warning"):
            trail.said.append(f"console {message.type}: {message.text}")

    def answered(response: Any) -> None:
        if response.status >= 400:
            trail.said.append(f"{response.status} {response.request.method} {response.url}")

    def finished(request: Any) -> None:
        trail.pending.pop(id(request), None)

    def failed(request: Any) -> None:
        finished(request)
        trail.said.append(f"failed {request.method} {request.url}: {request.failure}")

    page.on("console", console)
    page.on("pageerror", lambda error: trail.said.append(f"page error: {error}"))
    page.on("crash", lambda _page: trail.said.append("the page crashed"))

    def asked(request: Any) -> None:
        trail.pending[id(request)] = (request.url, time.monotonic())

    page.on("request", asked)
    page.on("requestfinished", finished)
    page.on("requestfailed", failed)
    page.on("response", answered)
    page.on("close", lambda _page: _TRAILS.pop(id(page), None))


def _cut(trail: Trail) -> bool:
    """Whether chromium cut a load of the page as the host's interfaces changed (see `ready`)."""
    return any("ERR_NETWORK_CHANGED" in line for line in trail.said)


def _reloaded(page: Any, trail: Trail, reloads: int) -> bool:
    """Whether the page was loaded again, as chromium cut its load (see `ready`) and fewer than
    RELOADS reloads were made; its trail starts afresh."""
    if reloads >= RELOADS or not _cut(trail):
        return False
    trail.said.clear()
    page.reload()
    return True


def what_it_shows(page: Any) -> str:
    """Where a page is, for a wait's failure: the view, what it shows, what it said, what it still
    waits for."""
    trail = _TRAILS.get(id(page), Trail())
    now = time.monotonic()
    try:
        view, text = page.evaluate(
            "[document.getElementById('main')?.dataset.view, document.getElementById('main')?.innerText]"
        )
    except Exception as exc:
        view, text = "?", f"(the page did not answer: {exc})"
    waiting = [f"{url} ({now - since:.0f} s)" for url, since in trail.pending.values()]
    return (
        f"at {page.url} view {view!r} showing {str(text)[:300]!r}; said {trail.said[-8:]}; "
        f"still waiting for {waiting[:8]}"
    )


# How many times a load chromium cut as the host's interfaces changed is made again: the real
# node's tests make and remove pods' interfaces in bursts, and CI stop 90 had the one reload cut
# too (tests/httpapi/test_ui_studio.py, lorapick.js).
RELOADS = 5


def ready(page: Any, view: str) -> None:
    """Wait until the page has drawn `view` (its main element's data-ready). A page whose load
    chromium cut with ERR_NETWORK_CHANGED (the host's interfaces changed: another test's bridge or
    network namespace, as make test at 07:45 showed for one of the UI's module scripts) is loaded
    again as soon as the cut shows, as a person would reload it, up to RELOADS times: that is the
    machine's event, not the page's."""
    from playwright.sync_api import TimeoutError as NotInTime

    trail = _TRAILS.get(id(page), Trail())
    deadline, reloads = time.monotonic() + WAIT_MS / 1000, 0
    while True:
        try:
            page.wait_for_selector(f"main[data-ready={view}]", timeout=1_000)
            return
        except NotInTime:
            pass
        if _reloaded(page, trail, reloads):
            reloads += 1
            deadline = time.monotonic() + WAIT_MS / 1000
        elif time.monotonic() >= deadline:
            waited = f"{WAIT_MS / 1000:.0f} s ({reloads} reloads)"
            raise AssertionError(f"view {view!r} not drawn in {waited}: {what_it_shows(page)}")


def load(page: Any, url: str) -> None:
    """Go to `url`; a load chromium cut with ERR_NETWORK_CHANGED (see `ready`) is made again, up to
    RELOADS times."""
    from playwright.sync_api import Error

    if id(page) not in _TRAILS:  # a test's own page: followed, so a wait that fails says why
        _follow(page)
    for tries_left in range(RELOADS, -1, -1):
        try:
            page.goto(url)
            return
        except Error as exc:
            if "ERR_NETWORK_CHANGED" not in str(exc) or not tries_left:
                raise
            time.sleep(0.5)


def sign_in(page: Any, base: str, token: str) -> None:
    """Open the UI at `base`, sign in with `token` and wait for the gallery. Each step waits with
    `ready`, so a page that never shows the login form says where it is (make test's CI run on
    11-26 timed out at the token field twice with nothing else to go on)."""
    load(page, base + "/")
    ready(page, "login")
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")
    ready(page, "gallery")


def until(page: Any, expression: str) -> None:
    """Wait for a JavaScript expression to be true. (Playwright's wait_for_function evaluates
    strings with eval, which the page's Content-Security-Policy rightly forbids.)"""
    deadline, reloads = time.monotonic() + WAIT_MS / 1000, 0
    trail = _TRAILS.get(id(page), Trail())
    while not page.evaluate(expression):
        # pictures chromium cut as the host's interfaces changed (see `ready`): loaded again
        if "document.images" in expression and _reloaded(page, trail, reloads):
            reloads += 1
            deadline = time.monotonic() + WAIT_MS / 1000
        assert time.monotonic() < deadline, f"still false: {expression}: {what_it_shows(page)}"
        time.sleep(0.05)


def show(page: Any, hash_: str) -> None:
    """Go to a view by its hash and wait until it is drawn with every picture arrived."""
    view = hash_.split("/")[1].split("?")[0]
    page.evaluate("document.getElementById('main').removeAttribute('data-ready')")
    page.evaluate(f"location.hash = {hash_!r}")
    ready(page, view)
    until(page, "[...document.images].every((i) => i.complete)")


def no_stray_text(page: Any) -> None:
    """No value the page failed to fill shows as text (null, undefined, NaN, [object Object])."""
    stray = page.evaluate(
        r"""() => {
            const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
            const found = [];
            while (walk.nextNode()) {
                const text = walk.currentNode.textContent;
                if (/\b(null|undefined|NaN)\b|\[object /.test(text)) found.push(text);
            }
            return found.slice(0, 5);
        }"""
    )
    assert stray == [], f"stray text on the page: {stray}"


def show_checked(page: Any, hash_: str) -> None:
    """`show`, then no value the page failed to fill shows as text."""
    show(page, hash_)
    no_stray_text(page)


def screenshot(page: Any) -> np.ndarray:
    """A full-page screenshot; kept in $CONTENTGEN_UI_SHOTS (when set) for a person to look at."""
    picture = cv2.imdecode(np.frombuffer(page.screenshot(full_page=True), np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None
    keep = os.environ.get("CONTENTGEN_UI_SHOTS")
    if keep:
        name = re.sub(r"[^a-zA-Z0-9]+", "-", os.environ.get("PYTEST_CURRENT_TEST", "shot").split(" ")[0])
        Path(keep).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(Path(keep) / f"{name}-{time.monotonic_ns()}.png"), picture)
    return picture


PICTURES_DRAWN = "[...document.images].every((i) => i.complete && i.naturalWidth > 0)"
MARK_PICTURES = "[...document.images].forEach((i) => { i.dataset.shot = '1'; })"
SAME_PICTURES = "[...document.images].every((i) => i.dataset.shot === '1' && i.naturalWidth > 0)"


def settled_screenshot(page: Any, tries: int = 5) -> np.ndarray:
    """A full-page screenshot in which every picture is drawn: taken again when the page replaced
    a picture while it was taken (a view redraws as runs move; its new <img> is not loaded yet)."""
    for _ in range(tries):
        until(page, PICTURES_DRAWN)
        page.evaluate(MARK_PICTURES)
        shot = screenshot(page)
        if page.evaluate(SAME_PICTURES):
            return shot
    shows = what_it_shows(page)
    raise AssertionError(f"the page kept replacing its pictures over {tries} screenshots: {shows}")


def region(shot: np.ndarray, box: dict[str, float]) -> np.ndarray:
    x, y, w, h = (round(box[k]) for k in ("x", "y", "width", "height"))
    return shot[y : y + h, x : x + w]


def difference(shot: np.ndarray, box: dict[str, float], stored: bytes) -> float:
    """Mean absolute difference (0-255) between the screenshot where an image is drawn and the
    stored picture scaled to that size."""
    drawn = region(shot, box).astype(np.float32)
    expected = cv2.imdecode(np.frombuffer(stored, np.uint8), cv2.IMREAD_COLOR)
    assert expected is not None and drawn.size
    expected = cv2.resize(expected, (drawn.shape[1], drawn.shape[0]), interpolation=cv2.INTER_AREA)
    return float(np.abs(drawn - expected.astype(np.float32)).mean())


def box_of(element: Any) -> dict[str, float]:
    box = element.bounding_box()
    assert box is not None
    return box


@dataclass
class Tab:
    """A page opened at a width in a colour scheme; `outside`: the requests refused (see local_page)."""

    page: Any
    outside: list[str]
    width: int
    scheme: str = "light"


def fits(tab: Tab, within: str = "main *, #lightbox *, header *") -> None:
    """Nothing is wider than the window: no horizontal scrolling, no element (of the `within`
    selector) past its right edge."""
    page = tab.page
    assert page.evaluate("document.documentElement.scrollWidth") <= tab.width
    past = page.evaluate(
        """([w, within]) => [...document.querySelectorAll(within)]
            .filter((e) => e.offsetParent !== null && e.getBoundingClientRect().right > w + 1)
            .map((e) => e.tagName + '#' + e.id + '.' + e.className).slice(0, 5)""",
        [tab.width, within],
    )
    assert past == [], f"past the right edge at {tab.width} px: {past}"


def pbox(page: Any, element: Any) -> dict[str, float]:
    """An element's box in a full-page screenshot (bounding boxes are the viewport's)."""
    box = dict(box_of(element))
    scroll_x, scroll_y = page.evaluate("[window.scrollX, window.scrollY]")
    box["x"] += scroll_x
    box["y"] += scroll_y
    return box


def background(shot: np.ndarray) -> float:
    """The page's background brightness (0-255), from its bottom-left corner."""
    return float(shot[-6:-2, 2:6].mean())


def check_scheme(tab: Tab, shot: np.ndarray) -> None:
    if tab.scheme == "dark":
        assert background(shot) < 60, "dark mode asked for, a light page drawn"
    else:
        assert background(shot) > 200, "light mode asked for, a dark page drawn"


SEVERE = ("serious", "critical")


def axe_source() -> str:
    """axe-core's script, as `make axe` fetched it from npm (never from a CDN)."""
    root = Path(__file__).resolve().parents[2]
    found = sorted((root / ".tools").glob("axe-core-*/axe.min.js"))
    if not found:
        pytest.fail("axe-core is missing: `make axe` fetches it from npm (npm pack axe-core)")
    return found[-1].read_text()


# The axe-core rules whose outcome depends on the window's width or the colour scheme: the rest
# read the document's structure, names and roles, which neither changes (issue 71).
LOOK_RULES = (
    "color-contrast",
    "link-in-text-block",
    "scrollable-region-focusable",
    "target-size",
    "meta-viewport",
    "region",
)


def violations(page: Any, rules: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is (WCAG 2.x A and AA rules
    and axe's best practices, colour contrast included), or of `rules` only."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(axe_source())  # evaluated by the driver: the page's CSP is not loosened
    options: dict[str, Any] = {"resultTypes": ["violations"]}
    if rules is not None:
        options["runOnly"] = {"type": "rule", "values": list(rules)}
    found: list[dict[str, Any]] = page.evaluate(
        """async (options) => (await axe.run(document, options)).violations
            .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 4)
                .map((n) => `${n.target.join(" ")}: ${n.failureSummary}`) }))""",
        options,
    )
    return [v for v in found if v["impact"] in SEVERE]


def keep_screenshot(page: Any, name: str, full_page: bool = True) -> None:
    """The page (or, `full_page` False, the window: what is fixed over it) in $CONTENTGEN_UI_SHOTS."""
    keep = os.environ.get("CONTENTGEN_UI_SHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^a-zA-Z0-9]+", "-", name).strip("-")
        page.screenshot(path=str(Path(keep) / f"{name}.png"), full_page=full_page)
