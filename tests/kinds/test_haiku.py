"""A kind defined only in the tests (tests/kinds/haiku/: one module per layer) goes through every
layer as the product's kinds do: validation, a laptop run (`contentgen run`: the pipeline's runner,
the store, the catalog), its estimate, the operator's decisions and watches, and the HTTP API (a
create that runs, its record, the OpenAPI document). Nothing in operator/ names it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import kopf
import mongomock
import pytest
import pytest_asyncio

from contentgen.api import KINDS, Artifact, RunResult, SpecSnapshot
from contentgen.api.registry import UnknownKind
from contentgen.catalog import open_catalog
from contentgen.catalog.mongo import MongoCatalog
from contentgen.cli.main import main
from contentgen.controller.decide import Observed, World, decide
from contentgen.controller.handlers import register_kinds
from contentgen.controller.jobs import render_job
from contentgen.controller.kinds import CONTROLLER_KINDS
from contentgen.controller.observe import JobState
from contentgen.controller.settings import OperatorSettings
from contentgen.httpapi import create_app
from contentgen.httpapi.creators import LocalCreator
from contentgen.pipeline.settings import PipelineSettings
from contentgen.pricing import PRICING_KINDS, PriceTable, estimated, expected_usage
from contentgen.store import LocalStore
from tests.conftest import ROOT
from tests.harness.creators import LOCAL, laptop_settings
from tests.kinds import haiku

MANIFEST = """\
apiVersion: contentgen.io/v1alpha1
kind: Haiku
metadata: {name: pond}
spec: {owner: alice, season: spring}
"""
POEM = "an old silent pond\na frog jumps into the pond\nsplash! silence again\n"


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    haiku.register(monkeypatch)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "CONTENTGEN_ALLOW_PRIVATE_SOURCES"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def test_no_product_file_names_the_test_kind() -> None:
    named = [p for p in (ROOT / "operator").rglob("*.py") if "Haiku" in p.read_text(encoding="utf-8")]
    assert named == []


def test_validate_judges_it_by_its_spec(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("pond.yaml").write_text(MANIFEST)
    assert main(["validate", "pond.yaml"]) == 0
    Path("bad.yaml").write_text(MANIFEST.replace("spring", "monsoon").replace("owner: alice, ", ""))
    assert main(["validate", "bad.yaml"]) == 1
    said = capsys.readouterr()
    problems = [line for line in said.out.splitlines() if line.startswith("bad.yaml")]
    assert [line.split(": ")[2] for line in problems] == ["spec.owner", "spec.season"], said
    assert problems[1].endswith('spec.season: must be one of spring, summer, autumn or winter, got "monsoon"')


def test_a_laptop_run_stores_it_and_the_catalog_records_it(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("pond.yaml").write_text(MANIFEST)
    assert main(["run", "pond.yaml", "--result", "r.json"]) == 0, capsys.readouterr().err
    result = RunResult.model_validate_json(Path("r.json").read_text())
    assert (result.kind, result.provider, result.version, result.placeholder) == ("Haiku", "offline", 1, True)
    [poem] = [a for a in result.artifacts if a.uri.endswith("/haiku.txt")]
    store = workspace / "contentgen-data" / "store"
    assert poem.uri == f"file://{store}/haiku/alice/{result.uid}/v1/haiku.txt"
    assert Path(poem.uri.removeprefix("file://")).read_text() == POEM
    capsys.readouterr()
    assert main(["assets", "get", result.uid, "-o", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    # its record: the common one with its own fields, as its catalog declaration's model says
    assert (record["kind"], record["type"], record["status"]) == ("Haiku", "haiku", "Succeeded")
    assert record["season"] == "spring" and [v["version"] for v in record["versions"]] == [1]
    assert main(["assets", "list", "--type", "haiku", "-o", "table"]) == 0
    [row] = capsys.readouterr().out.splitlines()[1:]
    assert row.startswith(result.uid) and row.endswith("a haiku of spring")  # its declared DETAIL
    catalog = open_catalog()
    try:  # what its catalog declaration summarizes, in the stored document
        assert (catalog.get(result.uid) or {})["season"] == "spring"
    finally:
        catalog.close()
    assert record["latestVersion"] == 1 and poem.uri in [a["uri"] for a in record["artifacts"]]
    # its primary output is what `assets url` names without a file name
    assert main(["assets", "url", result.uid]) == 0
    assert json.loads(capsys.readouterr().out)["uri"] == poem.uri
    # a second run is its next version, beside the first
    assert main(["run", "pond.yaml", "--result", "r2.json"]) == 0
    assert RunResult.model_validate_json(Path("r2.json").read_text()).version == 2


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
UID = "0b7f1f3e-aaaa-4bbb-8ccc-123456789abc"


def test_the_operator_runs_it_and_records_its_version() -> None:
    res = Observed(KINDS["Haiku"], "pond", "ns", UID, 1, {"owner": "alice", "season": "winter"}, {})
    started = decide(res, World(now=NOW))
    assert started.job is not None and (started.job.kind, started.job.version) == ("Haiku", 1)
    assert (started.status["phase"], started.waiting) == ("Pending", "")
    running = replace(res, status=started.status)
    job = JobState(
        name=started.status["jobName"], namespace="ns", uid=UID, generation=1, version=1, complete=True
    )
    assert decide(running, World(now=NOW, jobs=(job,))).needs_outcome == job
    poem = Artifact(uri=f"s3://b/haiku/alice/{UID}/v1/haiku.txt", size_bytes=68, sha256="ab" * 32)
    outcome = RunResult(
        kind="Haiku", provider="offline", placeholder=True, version=1, generation=1, artifacts=[poem]
    )
    done = decide(running, World(now=NOW, jobs=(job,), outcome=outcome))
    assert (done.status["phase"], done.status["latestVersion"]) == ("Succeeded", 1)
    assert [v["version"] for v in done.status["versions"]] == [1]
    assert done.outcome_recorded == outcome
    # no LoRA's conditions: its controller declaration asks for none
    assert not [c for c in done.status["conditions"] if c["type"].startswith("Likeness")]


def test_its_job_runs_as_its_own_declaration_says() -> None:
    """Its Job's resources and deadline are what its controller module declares (the operator's
    settings hold the kinds' declarations), never another kind's; a kind without a controller
    declaration is refused in one line."""
    settings = OperatorSettings(s3_uri="s3://b", image="contentgen-worker:test")
    snapshot = SpecSnapshot(
        kind="Haiku", name="pond", namespace="ns", uid=UID, generation=1, version=1,
        spec={"owner": "alice", "season": "winter", "provider": "offline"},
    )  # fmt: skip
    job = render_job(snapshot, settings)
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"] == {"cpu": "50m", "memory": "64Mi"}
    assert job["spec"]["activeDeadlineSeconds"] == 120
    assert settings.kinds["Haiku"] == haiku.controller.KIND.job
    del CONTROLLER_KINDS["Haiku"]  # the fixture's monkeypatch puts it back
    with pytest.raises(UnknownKind) as refused:
        render_job(snapshot, OperatorSettings(s3_uri="s3://b", image="contentgen-worker:test"))
    assert "Haiku" in str(refused.value) and "\n" not in str(refused.value)


def test_its_estimate_is_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Priced as its pricing declaration says (tests/kinds/haiku/pricing.py), not as a transcript."""
    prices = PriceTable(items={"offline": {"haiku": {"request": 0.25}}})  # the offline provider, priced
    spec = {"owner": "alice", "season": "spring", "provider": "offline"}
    cost = estimated("Haiku", spec, prices, None)
    assert (cost.estimated_usd, cost.detail) == (
        0.25,
        f"estimate: 1 request of haiku x $0.25 (table, as of {prices.as_of})",
    )
    # on a provider's own GPUs: the weights' loading and its second of writing, as its own item
    [line] = expected_usage("Haiku", {**spec, "provider": "cluster"}, prices)
    loading = prices.cluster.startup_seconds
    assert (line.item, line.unit, line.quantity) == ("haiku-writing", "gpu-hour", (loading + 1) / 3600)
    # a kind without a pricing declaration is refused, never priced as another kind
    monkeypatch.delitem(PRICING_KINDS, "Haiku")
    with pytest.raises(UnknownKind, match="kind 'Haiku' has no pricing"):
        estimated("Haiku", spec, prices, None)


def test_the_operator_watches_it_when_it_starts() -> None:
    """The operator's watches are made when it starts, over the kinds registered by then
    (controller/handlers.register_kinds): Haiku, registered after the handlers' import, has its
    index and its event handler as every kind has, each once."""
    registry = kopf.OperatorRegistry()
    names = register_kinds(registry)
    assert names[0] == "loras_by_name" and "haikus_by_uid" in names
    indexes = {h.id: h.selector.any_name for h in registry._indexing.get_all_handlers() if h.selector}
    events = {h.id: h.selector.any_name for h in registry._watching.get_all_handlers() if h.selector}
    assert indexes["haikus_by_uid"] == events["haiku-event"] == "haikus"
    assert set(indexes) == set(names)
    assert set(events) == {f"{k.singular}-event" for k in KINDS.values()}
    register_kinds(registry)  # again: nothing watched twice
    assert len(registry._watching.get_all_handlers()) == len(KINDS)
    assert len(registry._indexing.get_all_handlers()) == len(names)


@pytest_asyncio.fixture
async def http(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, MongoCatalog]]:
    catalog = MongoCatalog(mongomock.MongoClient(), "contentgen")
    store = LocalStore(tmp_path / "store")
    creator = LocalCreator(
        catalog, lambda: store, offline=True, settings=PipelineSettings(work_dir=tmp_path / "work")
    )
    settings = laptop_settings(store)
    app = create_app(settings, catalog=catalog, store=lambda: store, creator=creator)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080", headers=LOCAL) as c:
        yield c, catalog
    creator.close()


async def _finished(catalog: MongoCatalog, uid: str) -> dict[str, Any]:
    """The run's catalog document once it has ended (a hang guard, not a measurement)."""
    for _ in range(1200):
        doc = catalog.get(uid)
        if doc is not None and (doc.get("latestRun") or {}).get("phase") in ("Succeeded", "Failed"):
            return doc
        await asyncio.sleep(0.1)
    raise AssertionError(f"the local run {uid} did not end")


@pytest.mark.asyncio
async def test_the_http_api_creates_and_runs_it(http: tuple[httpx.AsyncClient, MongoCatalog]) -> None:
    client, catalog = http
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert (
        schemas["ResourceRequest"]["discriminator"]["mapping"]["Haiku"] == "#/components/schemas/HaikuRequest"
    )
    assert schemas["HaikuRequestSpec"]["properties"]["season"]["enum"] == [
        "spring",
        "summer",
        "autumn",
        "winter",
    ]
    # its record, and the type that filters for it, as the catalog's registry says
    read = document["paths"]["/api/jobs/{ref}"]["get"]
    answer = read["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["discriminator"]["mapping"]["Haiku"] == "#/components/schemas/HaikuRecord"
    assert schemas["HaikuRecord"]["properties"]["season"]["type"] == "string"
    [type_] = [p for p in read["parameters"] if p["name"] == "type"]
    assert "haiku" in type_["schema"]["anyOf"][0]["enum"] and type_["description"].endswith(", haiku")
    assert schemas["HaikuRecord"]["properties"]["type"]["description"].endswith(" or haiku.")

    refused = await client.post("/api/resources", json={"kind": "Haiku", "spec": {"season": "monsoon"}})
    assert refused.status_code == 400, refused.text
    assert [f["field"] for f in refused.json()["error"]["fields"]] == ["spec.season"]

    made = await client.post("/api/resources", json={"kind": "Haiku", "spec": {"season": "autumn"}})
    assert made.status_code == 201, made.text
    uid = made.json()["jobId"]
    assert made.json()["name"].startswith("haiku-")  # its declared prefix
    doc = await _finished(catalog, uid)
    assert (doc["latestRun"]["phase"], doc["owner"], doc["season"]) == ("Succeeded", "demo-user", "autumn")
    assert [v["version"] for v in doc["versions"]] == [1]
    read_back = await client.get(f"/api/jobs/{uid}")  # its record, as its declared model says
    assert read_back.status_code == 200, read_back.text
    record = read_back.json()
    assert (record["kind"], record["season"], record["latestVersion"]) == ("Haiku", "autumn", 1)
    listed = await client.get("/api/jobs", params={"type": "haiku"})
    assert listed.status_code == 200, listed.text
    assert [(r["id"], r["season"]) for r in listed.json()["items"]] == [(uid, "autumn")]
    assert (await client.get("/api/jobs", params={"type": "image-generation"})).json()["items"] == []
    content = await client.get(f"/api/assets/{uid}/content")  # its primary output
    assert content.status_code == 200, content.text
    assert content.text == "on a withered branch\na crow has alighted\nnightfall in autumn\n"
    # a re-run takes no seed: its HTTP declaration says it has none
    rerun = await client.post(f"/api/jobs/{uid}/rerun", json={"newSeed": True})
    assert (rerun.status_code, rerun.json()["error"]["code"]) == (400, "not_applicable"), rerun.text
    said = "a Haiku has no seed; only an ImageGeneration or a VideoGeneration does"
    assert rerun.json()["error"]["fields"] == [{"field": "seed", "message": said}]
