"""The create forms' uploads (issue 70), in Debian's chromium (Playwright) against `contentgen api
--local` (auth local, creates run offline): the LoRA form's source video and the video form's
picture chosen from this machine are sent to POST /api/uploads, the stored file's address fills the
field, and the resource made names it (the LoRA trains from the uploaded video, the video animates
the uploaded picture); a file that is not what it says is refused next to it, in words. Both forms
at 1280 and 420 px, kept in $CONTENTGEN_UI_SHOTS."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from contentgen.catalog import Catalog
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.store import LocalStore
from tests.conftest import EXAMPLES
from tests.harness.browser import keep_screenshot, load, local_page, ready, until
from tests.harness.servers import serve_app
from tests.waiting import wait_for

SIZES = {"wide": {"width": 1280, "height": 1000}, "narrow": {"width": 420, "height": 1000}}


@dataclass
class Served:
    base: str
    catalog: Catalog
    store: LocalStore
    root: Path


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    root = Path(tempfile.mkdtemp(prefix="contentgen-uploads-ui-"))
    catalog = EmbeddedCatalog(root / "catalog")
    store = LocalStore(root / "store")
    try:
        settings = ApiSettings(
            catalog="unused://",
            store=str(store.root),
            api_auth=["local"],
            api_create="local",
            api_offline=True,
        )
        app = create_app(settings, catalog=catalog, store=lambda: store)
        with serve_app(app) as base:
            yield Served(base, catalog, store, root)
        app.state.services.creator.close()
    finally:
        catalog.close()
        shutil.rmtree(root, ignore_errors=True)


def _picture(path: Path) -> Path:
    picture = np.zeros((360, 480, 3), np.uint8)
    picture[:, :, 0] = np.linspace(40, 220, 480, dtype=np.uint8)
    assert cv2.imwrite(str(path), picture)
    return path


def _open(page: Any, base: str, hash_: str) -> None:
    if page.url.startswith(base):
        page.evaluate("document.getElementById('main').removeAttribute('data-ready')")
        page.evaluate(f"location.hash = {hash_!r}")
    else:
        load(page, f"{base}/{hash_}")
    ready(page, "create")


def _made(served: Served, page: Any) -> dict[str, Any]:
    ready(page, "job")
    uid = page.evaluate("decodeURIComponent(location.hash.split('/')[2])")
    found = wait_for(lambda: served.catalog.get(uid), 60, "the created resource's record")
    return dict(found)


@pytest.mark.parametrize("size", ["wide", "narrow"])
def test_the_lora_and_video_forms_upload_their_files(chromium: Any, served: Served, size: str) -> None:
    context = chromium.new_context(viewport=SIZES[size])
    try:
        page, outside = local_page(context, served.base)

        # the LoRA's source video, from this machine
        _open(page, served.base, "#/create/lora")
        page.set_input_files("#f-source-file", str(EXAMPLES / "media" / "sample.mp4"))
        until(
            page,
            "document.getElementById('upload-status-source').textContent.startsWith('uploaded sample.mp4')",
        )
        uri = page.input_value("#f-source")
        assert uri.startswith("file://") and "/uploads/demo-user/" in uri and uri.endswith("/sample.mp4")
        assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"]
        keep_screenshot(page, f"create-lora-uploaded-{size}")
        page.fill("#f-name", f"uploaded-avatar-{size}")
        page.fill("#f-triggerWord", "dmavatar")
        page.click("#create-submit")
        lora = _made(served, page)
        assert lora["spec"]["source"]["url"] == uri

        # the picture a video animates; a file that is not a picture first
        _open(page, served.base, "#/create/video")
        page.set_input_files(
            "#f-image-file", {"name": "notes.png", "mimeType": "image/png", "buffer": b"plain text"}
        )
        refused = page.locator("#upload-status-image .notice.error")
        refused.wait_for()
        assert refused.inner_text() == (
            "notes.png: the file is not a picture of type image/png: its first bytes are not that format's"
        )
        assert page.input_value("#f-image") == ""
        picture = _picture(served.root / f"lighthouse-{size}.png")
        page.set_input_files("#f-image-file", str(picture))
        until(
            page,
            "document.getElementById('upload-status-image').textContent.startsWith('uploaded lighthouse')",
        )
        keep_screenshot(page, f"create-video-uploaded-{size}")
        assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"]
        page.fill("#f-prompt", "the lighthouse's light turns, slow")
        page.select_option("#f-model", "wan-2.2-i2v")
        page.fill("#f-durationSeconds", "2")
        page.select_option("#f-resolution", "480p")
        page.click("#create-submit")
        video = _made(served, page)
        stored = video["spec"]["image"]["url"]
        assert stored.startswith("file://") and stored.endswith(f"/lighthouse-{size}.png")
        assert served.store.get_bytes(served.store.key_of(stored)) == picture.read_bytes()
        assert outside == []
    finally:
        context.close()
