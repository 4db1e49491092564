"""A provider defined only in the tests (tests/providers/echo/: its entry and its transcriber, one
package) goes through every layer as the product's providers do: validation and the CRD's schema,
a laptop run billed at the price its row declares, its key's refusal in one line, its estimate, the
operator's Job with its key by reference from the Secret the operator's setting names, the
operator's wait for a Secret it lacks, and the HTTP API's schema and the web UI's choices. Nothing
in operator/ names it."""

from __future__ import annotations

import json
import re
import wave
from datetime import UTC, datetime
from pathlib import Path

import httpx
import mongomock
import pytest
import yaml

from contentgen.api import KINDS, RunResult, SpecSnapshot
from contentgen.catalog.mongo import MongoCatalog
from contentgen.cli.main import main
from contentgen.controller.decide import Observed, World, decide
from contentgen.controller.jobs import missing_credentials, render_job
from contentgen.controller.settings import OperatorSettings
from contentgen.httpapi import create_app
from contentgen.pricing import PriceTable, estimated
from contentgen.store import LocalStore
from tests.conftest import ROOT
from tests.harness.creators import LOCAL, laptop_settings
from tests.providers import echo

MANIFEST = """\
apiVersion: contentgen.io/v1alpha1
kind: Transcription
metadata: {name: talk}
spec: {owner: alice, provider: echo, source: {url: "https://example.com/talk.wav"}}
"""


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    echo.register(monkeypatch)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in (
        "CONTENTGEN_STORE",
        "CONTENTGEN_CATALOG",
        "CONTENTGEN_ALLOW_PRIVATE_SOURCES",
        "ECHO_API_KEY",
    ):
        monkeypatch.delenv(variable, raising=False)
    Path("talk.yaml").write_text(MANIFEST)
    with wave.open("talk.wav", "wb") as audio:  # ten seconds of silence
        audio.setnchannels(1), audio.setsampwidth(2), audio.setframerate(8000)
        audio.writeframes(b"\0\0" * 80_000)
    return tmp_path


def test_no_product_file_names_the_test_provider() -> None:
    named = [
        p
        for p in (ROOT / "operator").rglob("*.py")
        if re.search(r"['\"]echo['\"]|ECHO_API_KEY|CONTENTGEN_ECHO", p.read_text(encoding="utf-8"))
    ]
    assert named == []


def test_validate_takes_it_and_the_crd_lists_it(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "talk.yaml"]) == 0
    Path("other.yaml").write_text(MANIFEST.replace("provider: echo", "provider: ekko"))
    assert main(["validate", "other.yaml"]) == 1
    [problem] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("other.yaml")]
    assert problem.endswith('spec.provider: must be one of assemblyai, offline, cluster or echo, got "ekko"')
    assert main(["crds", "--out", "crds"]) == 0
    crd = yaml.safe_load(Path("crds/contentgen.io_transcriptions.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["provider"]["enum"] == ["assemblyai", "offline", "cluster", "echo"]


def test_a_laptop_run_transcribes_with_its_key_and_bills_its_price(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONTENTGEN_PRICES", raising=False)  # its prices are its row's
    # its key unset: refused before any work, in one line naming the key and the chart's value
    assert main(["run", "--source", "talk.wav", "talk.yaml"]) != 0
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said == (
        "contentgen run: MissingCredentials: ECHO_API_KEY is not set: set it (in the cluster, through "
        "the chart's echo.existingSecret) or run with --offline"
    )
    monkeypatch.setenv("ECHO_API_KEY", "sk-echo-0123")
    assert main(["run", "--source", "talk.wav", "talk.yaml", "--result", "r.json"]) == 0, (
        capsys.readouterr().err
    )
    result = RunResult.model_validate_json(Path("r.json").read_text())
    assert (result.kind, result.provider, result.placeholder) == ("Transcription", "echo", False)
    [text] = [a for a in result.artifacts if a.uri.endswith("/transcript.txt")]
    assert Path(text.uri.removeprefix("file://")).read_text().startswith("echo of ")
    assert "for key sk-e" in Path(text.uri.removeprefix("file://")).read_text()
    capsys.readouterr()
    assert main(["assets", "get", result.uid, "-o", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["provider"] == "echo" and record["cost"]["actualUsd"] == pytest.approx(0.02), record["cost"]


def test_its_estimate_is_its_rows_price_unless_the_chart_sets_another() -> None:
    spec = {"owner": "alice", "provider": "echo", "source": {"url": "https://example.com/talk.wav"}}
    assert PriceTable().items["echo"] == {"echo-1": {"audio-hour": 7.2}}
    cost = estimated("Transcription", spec, PriceTable(assumed_audio_hours=0.5), None)
    assert cost.estimated_usd == pytest.approx(3.6)
    chart = PriceTable(items={"echo": {"echo-1": {"audio-hour": 1.0}}}, assumed_audio_hours=0.5)
    assert estimated("Transcription", spec, chart, None).estimated_usd == pytest.approx(0.5)


NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
UID = "0b7f1f3e-aaaa-4bbb-8ccc-123456789abd"
SPEC = {"owner": "alice", "provider": "echo", "source": {"url": "https://example.com/talk.wav"}}


def test_the_operator_hands_its_key_by_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTENTGEN_ECHO_KEY_SECRET__NAME", "echo-credentials")
    settings = OperatorSettings(store="s3://b/contentgen")
    assert missing_credentials("echo", settings) == ""
    snapshot = SpecSnapshot(kind="Transcription", name="talk", namespace="ns", uid=UID, version=1, spec=SPEC)
    [container] = render_job(snapshot, settings)["spec"]["template"]["spec"]["containers"]
    [key] = [e for e in container["env"] if e["name"] == "ECHO_API_KEY"]
    assert key == {
        "name": "ECHO_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "echo-credentials", "key": "ECHO_API_KEY"}},
    }
    # the operator offline: its run is the offline provider's, as any paid provider's
    offline = render_job(snapshot, OperatorSettings(store="s3://b/contentgen", offline=True))
    [container] = offline["spec"]["template"]["spec"]["containers"]
    assert "ECHO_API_KEY" not in [e["name"] for e in container["env"]]


def test_without_its_secret_the_operator_waits_naming_the_chart_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONTENTGEN_ECHO_KEY_SECRET__NAME", raising=False)
    settings = OperatorSettings(store="s3://b/contentgen")
    assert missing_credentials("echo", settings) == "ECHO_API_KEY"
    res = Observed(KINDS["Transcription"], "talk", "ns", UID, 1, SPEC, {})
    waiting = decide(res, World(now=NOW, missing_credentials="ECHO_API_KEY"))
    [ready] = [c for c in waiting.status["conditions"] if c["type"] == "Ready"]
    assert waiting.job is None and ready["reason"] == "MissingCredentials"
    assert ready["message"] == (
        "the operator has no ECHO_API_KEY for provider 'echo': an administrator sets it in the chart "
        "(echo.existingSecret), or use provider: offline"
    )


@pytest.mark.asyncio
async def test_the_http_api_and_the_web_ui_offer_it(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    catalog = MongoCatalog(mongomock.MongoClient(), "contentgen")
    app = create_app(laptop_settings(store), catalog=catalog, store=lambda: store, creator=None)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080", headers=LOCAL) as c:
        schemas = (await c.get("/openapi.json")).json()["components"]["schemas"]
        config = (await c.get("/ui/config")).json()
    assert "echo" in schemas["TranscriptionRequestSpec"]["properties"]["provider"]["enum"]
    assert config["providers"]["echo"] == "the tests' own provider"
