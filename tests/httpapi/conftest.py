from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import mongomock
import pytest
import pytest_asyncio
import yaml
from fastapi import FastAPI

from contentgen.catalog import Catalog
from contentgen.catalog.mongo import MongoCatalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.pipeline.settings import PipelineSettings
from contentgen.store import LocalStore, ObjectStore
from tests.catalog.factory import T0, image_doc, lora_doc, transcript_doc
from tests.harness.cli import offline_lora
from tests.harness.creators import HeldCreator
from tests.httpapi.documented import Answers

TOKENS = {
    "alice": "alice-token-0123456789",
    "bob": "bob-token-0123456789",
    "ops": "ops-admin-token-0123456789",
}
HOUR = timedelta(hours=1)
ALICE_IDS = ["a-tr-fail", "a-tr-1", "a-img-2", "a-img-1", "a-lora-1"]  # newest first
BOB_IDS = ["b-tr-1", "b-img-1", "b-lora-1"]


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[who]}"}


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    """alice by token, bob by the token's SHA-256, ops an admin."""
    path = tmp_path / "tokens.yaml"
    entries = [
        {"owner": "alice", "token": TOKENS["alice"]},
        {"owner": "bob", "sha256": hashlib.sha256(TOKENS["bob"].encode()).hexdigest()},
        {"owner": "ops", "token": TOKENS["ops"], "admin": True},
    ]
    path.write_text(yaml.safe_dump({"tokens": entries}))
    return path


@pytest.fixture
def catalog() -> Catalog:
    return MongoCatalog(mongomock.MongoClient(), "contentgen")


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def fill(catalog: Catalog, store: ObjectStore) -> None:
    """Five live records of alice's and one deleted; three of bob's. Outputs exist in `store`
    for both owners' LoRAs and alice's first image run."""
    uri = store.uri
    docs = [
        lora_doc("a-lora-1", name="jesse-avatar", versions=2, tags=("headshot",), uri_of=uri),
        image_doc("a-img-1", prompt="jesse in a suit", model="flux-lora", created=T0 + HOUR, uri_of=uri),
        image_doc("a-img-2", prompt="a red fox", model="flux-pro", created=T0 + 2 * HOUR, uri_of=uri),
        transcript_doc("a-tr-1", text="wildfires in the forest", created=T0 + 3 * HOUR, uri_of=uri),
        transcript_doc("a-tr-fail", phase="Failed", created=T0 + 4 * HOUR, uri_of=uri),
        image_doc("a-img-del", prompt="a red fox", created=T0 + 5 * HOUR, uri_of=uri),
        lora_doc("b-lora-1", owner="bob", name="jesse-avatar", created=T0 + 6 * HOUR, uri_of=uri),
        image_doc("b-img-1", owner="bob", prompt="a red fox", created=T0 + 7 * HOUR, uri_of=uri),
        transcript_doc("b-tr-1", owner="bob", text="wildfires again", created=T0 + 8 * HOUR, uri_of=uri),
    ]
    for doc in docs:
        catalog.upsert(doc)
    catalog.mark_deleted("a-img-del", T0 + 9 * HOUR)
    for key in (
        "loras/alice/a-lora-1/v1/model.safetensors",
        "loras/alice/a-lora-1/v2/model.safetensors",
        "loras/alice/a-lora-1/v2/config.json",
        "generated-images/alice/a-img-1/v1/image_1.png",
        "loras/bob/b-lora-1/v1/model.safetensors",
    ):
        store.put_bytes(key, f"bytes of {key}".encode(), "application/octet-stream")


MakeApp = Callable[..., FastAPI]


@pytest.fixture
def settings(store: LocalStore, tokens_file: Path) -> ApiSettings:
    return ApiSettings(
        catalog="unused://",  # the tests pass their catalog
        store=str(store.root),
        api_tokens_file=tokens_file,
        stream_poll_seconds=0.001,
    )


@pytest.fixture
def make_app(catalog: Catalog, store: LocalStore, settings: ApiSettings) -> MakeApp:
    def make(
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        store_factory: Callable[[], ObjectStore] | None = None,
    ) -> FastAPI:
        return create_app(settings, catalog=catalog, store=store_factory or (lambda: store), sleep=sleep)

    return make


@pytest.fixture
def held() -> Iterator[list[HeldCreator]]:
    """Creators whose runs are held and cancelled at the end: none runs (the HTTP layer is tested)."""
    made: list[HeldCreator] = []
    yield made
    for creator in made:
        creator.close()


@pytest.fixture
def rules_app(catalog: Catalog, store: LocalStore, tmp_path: Path, held: list[HeldCreator]) -> MakeApp:
    """An API on a laptop, alice's: `local`, creates on (runs held, in `work` under tmp_path); else
    creates off, its document as a cluster's reads (no local files)."""

    def make(*, local: bool, work: str = "work") -> FastAPI:
        settings = ApiSettings(
            catalog="unused://",
            store=str(store.root),
            api_auth=["local"],
            api_local_owner="alice",
            api_offline=True,
            api_default_namespace="default",
        )
        creator = None
        if local:
            work_dir = PipelineSettings(work_dir=tmp_path / work)
            creator = HeldCreator(catalog, lambda: store, offline=True, settings=work_dir)
            held.append(creator)
        return create_app(settings, catalog=catalog, store=lambda: store, creator=creator)

    return make


@pytest_asyncio.fixture
async def client(make_app: MakeApp, catalog: Catalog, store: LocalStore) -> AsyncIterator[httpx.AsyncClient]:
    fill(catalog, store)
    answers = Answers(make_app())
    transport = httpx.ASGITransport(app=answers)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http
    # Every status the server answered is one the OpenAPI document lists for that route.
    assert answers.undocumented() == []


@pytest.fixture
def trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Catalog, LocalStore, str]]:
    """For the score and promote routes: alice's offline LoRA of the sample video (its subject: the
    astronaut), by `contentgen run`."""

    def alices_without_evaluation(spec: dict[str, Any]) -> None:
        spec["owner"] = "alice"
        spec["evaluation"] = {"enabled": False}

    yield from offline_lora(tmp_path, monkeypatch, alices_without_evaluation)
