"""The web UI's usage panel and collection pages in Debian's headless chromium (Playwright), against
`contentgen api` serving factory records: alice's LoRA page shows its downloads, storage cost and
the image made with it; bob sees the collection alice shared with him and downloads its zip; carol
sees neither."""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.api import ResolvedLora
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.store import LocalStore
from tests.catalog.factory import image_doc, lora_doc
from tests.harness.browser import local_page, ready, show, sign_in, until
from tests.harness.servers import serve_app

TOKENS = {o: f"{o}-token-0123456789" for o in ("alice", "bob", "carol")}


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="contentgen-sharing-ui-"))
    store = LocalStore(root / "store")
    catalog = EmbeddedCatalog(root / "catalog")
    catalog.upsert({**lora_doc("a-lora-1", name="avatar", uri_of=store.uri), "origin": "local"})
    used = ResolvedLora(uri=store.uri("loras/alice/a-lora-1/v1/model.safetensors"), uid="a-lora-1", version=1)
    catalog.upsert(image_doc("a-img-1", prompt="avatar in a suit", loras=(used,), uri_of=store.uri))
    for key in ("loras/alice/a-lora-1/v1/model.safetensors", "generated-images/alice/a-img-1/v1/image_1.png"):
        store.put_bytes(key, f"bytes of {key}".encode(), "application/octet-stream")
    tokens = root / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"tokens": [{"owner": o, "token": t} for o, t in TOKENS.items()]}))
    settings = ApiSettings(catalog="unused://", store=str(store.root), api_tokens_file=tokens)
    with serve_app(create_app(settings, catalog=catalog, store=lambda: store)) as url:
        yield url
    catalog.close()
    shutil.rmtree(root, ignore_errors=True)


def login(chromium: Any, base: str, owner: str) -> Any:
    context = chromium.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    page, _outside = local_page(context, base)
    sign_in(page, base, TOKENS[owner])
    return page


def test_usage_and_a_shared_collection(chromium: Any, base: str) -> None:
    alice = login(chromium, base, "alice")
    alice.request.get(base + "/api/assets/a-lora-1/download")  # one download, with alice's cookie
    show(alice, "#/lora/a-lora-1")
    until(alice, "!!document.getElementById('usage-downloads')")
    assert alice.inner_text("#usage-downloads") == "1"
    assert "a month" in alice.inner_text("#usage-storage")
    assert alice.inner_text("#usage-used").startswith("default/portrait with v1")
    assert alice.inner_text("#usage-shares") == "nobody"
    alice.fill("#share-form input[name=to]", "owner:bob")
    alice.select_option("#share-form select[name=access]", "use")
    alice.click("#share-form button[type=submit]")
    until(alice, "(document.getElementById('usage-shares') || {}).textContent === 'owner:bob (use)'")

    show(alice, "#/collections")
    alice.fill("#new-collection input[name=name]", "campaign")
    alice.click("#new-collection button[type=submit]")
    ready(alice, "collection")
    # added as found by its words (issue 45: not by typing its id)
    alice.fill("#add-member input[name=q]", "suit")
    alice.click("#add-member button[type=submit]")
    alice.click("#add-candidates .asset-card[data-id='a-img-1'] button.add")
    until(
        alice,
        "(document.getElementById('member-count') || {}).textContent === '1'",
    )
    cid = alice.evaluate("location.hash").split("/")[2]
    shared = alice.request.put(
        f"{base}/api/collections/{cid}/shares",
        data={"to": "owner:bob", "access": "read"},
        headers={"Origin": base},
    )
    assert shared.status == 200, shared.text()

    bob = login(chromium, base, "bob")
    show(bob, "#/job/a-lora-1")  # alice's LoRA, shared with bob for use: its record, not who else has it
    until(bob, "!!document.getElementById('usage-facts')")
    assert "alice (shared with you)" in bob.inner_text("#usage-facts")
    assert bob.query_selector("#share-form") is None
    show(bob, "#/collections")
    assert "campaign" in bob.inner_text("#collections") and "shared with you (read)" in bob.inner_text(
        "#collections"
    )
    show(bob, f"#/collection/{cid}")
    assert "default/portrait" in bob.inner_text("#members .asset-card[data-id='a-img-1']")
    with bob.expect_download() as download:
        bob.click("#archive")
    names = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())).namelist()
    assert "default_portrait-v1/image_1.png" in names
    bob.fill("#collection-search input[name=q]", "nothing-like-it")
    bob.click("#collection-search button[type=submit]")
    until(bob, "!!document.getElementById('empty')")

    carol = login(chromium, base, "carol")
    carol.evaluate("location.hash = '#/job/a-lora-1'")
    until(carol, "document.querySelector('main').textContent.includes('no record')")
    show(carol, "#/collections")
    assert carol.query_selector("#collections") is None
    carol.evaluate(f"location.hash = '#/collection/{cid}'")
    until(carol, "document.querySelector('main').textContent.includes('no collection')")
