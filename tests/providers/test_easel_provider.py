"""A picture provider defined only in the tests (tests/providers/easel/: its row, with the models it
draws and the pictures a request makes, and its painter, one package) goes through every layer as
the product's providers do, with no edit of the model tables: validation judging a model it does not
draw and a request larger than it makes (both at once), the CRD's rules, a laptop run billed at its
app's price, its estimate, the operator's Job with its key by reference, and the HTTP API's schemas
and the web UI's choices. Nothing in operator/ names it; once it is gone, its rules are too."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import mongomock
import pytest
import yaml
from PIL import Image

from contentgen.api import RunResult, SpecSnapshot
from contentgen.api.image import ImageGenerationSpec
from contentgen.catalog.mongo import MongoCatalog
from contentgen.cli.main import main
from contentgen.controller.jobs import render_job
from contentgen.controller.settings import OperatorSettings
from contentgen.errors import InvalidInput
from contentgen.httpapi import create_app
from contentgen.httpapi.creators import LocalCreator
from contentgen.pipeline.settings import PipelineSettings
from contentgen.pricing import PriceTable, estimated
from contentgen.providers import add
from contentgen.store import LocalStore
from tests.conftest import ROOT
from tests.harness.creators import LOCAL, laptop_settings
from tests.providers import easel

MANIFEST = """\
apiVersion: contentgen.io/v1alpha1
kind: ImageGeneration
metadata: {name: dawn}
spec: {owner: alice, provider: easel, prompt: a dawn, numImages: 2, imageSize: square_hd, seed: 7}
"""
SPEC = {"owner": "alice", "provider": "easel", "prompt": "a dawn", "numImages": 2, "imageSize": "square_hd"}
DRAWS = (
    "easel draws flux-dev, flux-schnell only (the only models Easel serves): use provider offline for "
    "this model"
)
AT_MOST = (
    "easel's apps make at most 2 images per request: ask for 2 or fewer (create another "
    "ImageGeneration for more), or use provider offline"
)


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    easel.register(monkeypatch)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registered: None) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "CONTENTGEN_PRICES", "EASEL_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    Path("dawn.yaml").write_text(MANIFEST)
    return tmp_path


def test_no_product_file_names_the_test_provider() -> None:
    pattern = re.compile(r"['\"]easel|EASEL_API_KEY|CONTENTGEN_EASEL", re.IGNORECASE)
    assert [
        p for p in (ROOT / "operator").rglob("*.py") if pattern.search(p.read_text(encoding="utf-8"))
    ] == []


def test_validate_judges_it_by_its_row_and_the_crd_says_the_same(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "dawn.yaml"]) == 0
    Path("big.yaml").write_text(
        MANIFEST.replace("numImages: 2", "numImages: 3").replace("a dawn", "a dusk, model: z-image")
    )
    assert main(["validate", "big.yaml"]) == 1
    said = [
        line.split(": ", 3)[2:]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("big.yaml")
    ]
    assert sorted(said) == [["spec.model", DRAWS], ["spec.numImages", AT_MOST]]
    assert main(["crds", "--out", "crds"]) == 0
    crd = yaml.safe_load(Path("crds/contentgen.io_imagegenerations.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["provider"]["enum"] == ["fal", "offline", "cluster", "easel"]
    rules = {r["message"]: r["rule"] for r in spec["x-kubernetes-validations"]}
    assert (
        rules[DRAWS] == "self.provider != 'easel' || self.model == 'flux-dev' || self.model == 'flux-schnell'"
    )
    assert rules[AT_MOST] == "self.provider != 'easel' || self.numImages <= 2"


def test_its_rules_go_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as during:
        easel.register(during)
        assert DRAWS in [r.message for r in ImageGenerationSpec.cel_rules]
        with pytest.raises(InvalidInput, match="provider 'easel' is declared already"):
            add(easel.REGISTERED, during.setitem)
    assert DRAWS not in [r.message for r in ImageGenerationSpec.cel_rules]
    # fal's own, from its row as before
    assert any(
        r.message.startswith("fal draws flux-dev, flux-schnell, flux-pro")
        for r in ImageGenerationSpec.cel_rules
    )


def test_a_laptop_run_paints_with_its_key_and_bills_its_apps_price(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["run", "dawn.yaml"]) != 0
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "contentgen run: MissingCredentials: EASEL_API_KEY is not set: set it (in the cluster, through "
        "the chart's easel.existingSecret) or run with --offline"
    )
    monkeypatch.setenv("EASEL_API_KEY", "sk-easel-42")
    assert main(["run", "dawn.yaml", "--result", "r.json"]) == 0, capsys.readouterr().err
    result = RunResult.model_validate_json(Path("r.json").read_text())
    assert (result.kind, result.provider, result.placeholder) == ("ImageGeneration", "easel", False)
    pictures = [a for a in result.artifacts if a.uri.endswith(".png")]
    assert len(pictures) == 2
    sizes = {Image.open(a.uri.removeprefix("file://")).size for a in pictures}
    assert sizes == {(1024, 1024)}
    capsys.readouterr()
    assert main(["assets", "get", result.uid, "-o", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    # two pictures of 1,048,576 pixels: 2 megapixels each, at easel/flux-dev's $0.05
    assert record["cost"]["actualUsd"] == pytest.approx(0.20), record["cost"]


def test_its_estimate_is_its_apps_price(registered: None) -> None:
    assert PriceTable().items["easel"]["easel/flux-schnell"] == {"megapixel": 0.01}
    assert estimated("ImageGeneration", SPEC, PriceTable(), None).estimated_usd == pytest.approx(0.20)
    fast = {**SPEC, "model": "flux-schnell"}
    assert estimated("ImageGeneration", fast, PriceTable(), None).estimated_usd == pytest.approx(0.04)


def test_the_operator_hands_its_key_by_reference(registered: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTENTGEN_EASEL_KEY_SECRET__NAME", "easel-credentials")
    snapshot = SpecSnapshot(
        kind="ImageGeneration", name="dawn", namespace="ns", uid="0b7f1f3e-aaaa-4bbb-8ccc-123456789abe",
        version=1, spec=SPEC,
    )  # fmt: skip
    [container] = render_job(snapshot, OperatorSettings(store="s3://b/contentgen"))["spec"]["template"][
        "spec"
    ]["containers"]
    [key] = [e for e in container["env"] if e["name"] == "EASEL_API_KEY"]
    assert key["valueFrom"] == {"secretKeyRef": {"name": "easel-credentials", "key": "EASEL_API_KEY"}}


@pytest.mark.asyncio
async def test_the_http_api_and_the_web_ui_offer_it(tmp_path: Path, registered: None) -> None:
    store = LocalStore(tmp_path / "store")
    catalog = MongoCatalog(mongomock.MongoClient(), "contentgen")
    creator = LocalCreator(
        catalog, lambda: store, offline=True, settings=PipelineSettings(work_dir=tmp_path / "work")
    )
    app = create_app(laptop_settings(store), catalog=catalog, store=lambda: store, creator=creator)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080", headers=LOCAL) as c:
        schemas = (await c.get("/openapi.json")).json()["components"]["schemas"]
        config = (await c.get("/ui/config")).json()
        refused = await c.post(
            "/api/resources",
            json={"kind": "ImageGeneration", "spec": {**SPEC, "owner": "demo-user", "model": "z-image"}},
        )
    assert "easel" in schemas["ImageGenerationRequestSpec"]["properties"]["provider"]["enum"]
    rules = json.dumps(schemas["ImagesGenerateRequest"]["allOf"])
    assert '"maximum": 2' in rules and '"easel/flux-dev"' not in rules and '"const": "easel"' in rules
    assert config["providers"]["easel"] == "the tests' own painter"
    assert refused.status_code == 400, refused.text
    assert [(f["field"], f["message"]) for f in refused.json()["error"]["fields"]] == [("spec.model", DRAWS)]
