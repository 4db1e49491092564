"""`contentgen api`, the probes and docs, and a real server streaming over a socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from contentgen.catalog import Catalog
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.cli.main import main
from contentgen.httpapi import ApiSettings, create_app
from tests.catalog.factory import transcript_doc
from tests.harness.servers import serve_app
from tests.httpapi.conftest import MakeApp, auth


@pytest.fixture
def api_env(tmp_path: Path, tokens_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    EmbeddedCatalog(tmp_path / "catalog").close()  # a catalog `contentgen run` made
    monkeypatch.setenv("CONTENTGEN_CATALOG", f"file://{tmp_path}/catalog")
    monkeypatch.setenv("CONTENTGEN_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("CONTENTGEN_API_TOKENS_FILE", str(tokens_file))


def test_the_command_serves_the_app_from_the_environment(
    api_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(app=app, **options))
    monkeypatch.setenv("CONTENTGEN_PRICE_PER_GB_MONTH", "0.5")
    assert main(["api", "--host", "0.0.0.0", "--port", "9000"]) == 0
    assert (served["host"], served["port"]) == ("0.0.0.0", 9000)
    app = served["app"]
    assert isinstance(app, FastAPI)
    settings = app.state.services.settings
    assert settings.price_per_gb_month == 0.5 and settings.store == str(tmp_path / "store")
    assert isinstance(app.state.services.catalog, EmbeddedCatalog)
    app.state.services.catalog.close()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CONTENTGEN_API_TOKENS_FILE": ""}, "CONTENTGEN_API_TOKENS_FILE is not set"),
        ({"CONTENTGEN_API_TOKENS_FILE": "/nonexistent/tokens.yaml"}, "cannot read the tokens file"),
        ({"CONTENTGEN_API_AUTH": "local,tokens"}, "CONTENTGEN_API_AUTH: Value error, local stands alone"),
        ({"CONTENTGEN_API_AUTH": "proxy"}, "auth proxy needs CONTENTGEN_API_TRUSTED_PROXIES"),
        ({"CONTENTGEN_PRICE_PER_GB_MONTH": "-1"}, "CONTENTGEN_PRICE_PER_GB_MONTH: Input should be greater"),
        ({"CONTENTGEN_CATALOG": "redis://x"}, "unsupported catalog URL"),
        ({"CONTENTGEN_CATALOG": "/nonexistent/catalog"}, "there is no catalog at /nonexistent/catalog"),
    ],
)
def test_the_command_reports_bad_settings(
    api_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    message: str,
) -> None:
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not serve"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["api"]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.asyncio
async def test_probes_and_docs(make_app: MakeApp, catalog: Catalog) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app()), base_url="http://api"
    ) as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
        assert (await client.get("/health/ready")).json() == {"status": "ok", "catalog": "ok"}
        openapi = (await client.get("/openapi.json")).json()
        assert (await client.get("/docs")).status_code == 200
    assert set(openapi["paths"]) == {
        "/api/jobs", "/api/jobs/{ref}", "/api/assets/loras", "/api/assets/images", "/api/assets/transcripts",
        "/api/assets/search", "/api/assets/stats", "/api/assets/{ref}/download", "/api/stream/job/{ref}",
        "/api/stream/jobs", "/api/assets/{ref}/lineage", "/api/assets/{ref}/content",
        "/api/assets/{ref}/versions/{version}", "/api/assets/{ref}/prune", "/ui/session", "/health",
        "/health/ready", "/ui/config", "/api/resources", "/api/lora/train", "/api/images/generate",
        "/api/transcribe", "/api/jobs/{ref}/rerun", "/api/jobs/{ref}/compare", "/api/jobs/{ref}/cancel",
        "/api/assets/{ref}/transcript", "/api/assets/{ref}/manifest", "/api/assets/{ref}/source",
        "/ui/budget", "/api/assets/{ref}/versions/{version}/evaluate",
        "/api/assets/{ref}/versions/{version}/score", "/api/assets/{ref}/versions/{version}/promote",
        "/api/shared", "/api/assets/{ref}/shares", "/api/assets/{ref}/shares/{grantee_}",
        "/api/assets/{ref}/usage", "/api/collections", "/api/collections/{cid}",
        "/api/collections/{cid}/members", "/api/collections/{cid}/members/{member}",
        "/api/collections/{cid}/shares", "/api/collections/{cid}/shares/{grantee_}",
        "/api/collections/{cid}/search", "/api/collections/{cid}/archive", "/api/notifications/deliveries",
        "/api/notifications/deliveries/{delivery_id}/replay", "/api/uploads", "/api/jobs/{ref}/stop",
        "/api/assets/{ref}/versions/{version}/continue", "/api/assets/{ref}/versions/{version}/verdict",
        "/api/base-models",
    }  # fmt: skip
    assert set(openapi["paths"]["/api/assets/{ref}/versions/{version}"]) == {"delete"}
    removal = openapi["components"]["schemas"]["RemovalPlan"]["properties"]
    assert {"versions", "kept", "objects", "usedBy", "dryRun", "removed"} <= set(removal)
    status = openapi["components"]["schemas"]["LoraTrainingRecord"]["properties"]["status"]["description"]
    assert status.startswith("The record's state: Succeeded when it has a usable version")
    schemes = openapi["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schemes["APIKeyCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "contentgen_session",
        "description": schemes["APIKeyCookie"]["description"],
    }
    # Bad parameters are answered with 400 and {"error"}, and documented so.
    assert all("422" not in op["responses"] for ops in openapi["paths"].values() for op in ops.values())
    assert openapi["paths"]["/api/jobs"]["get"]["responses"]["400"]["content"]["application/json"][
        "schema"
    ] == {"$ref": "#/components/schemas/ErrorResponse"}
    record = openapi["components"]["schemas"]["LoraTrainingRecord"]["properties"]
    assert "latestModelUri" in record and "triggerWord" in record


@pytest.mark.asyncio
async def test_readiness_fails_when_the_catalog_cannot_be_read(make_app: MakeApp, catalog: Catalog) -> None:
    def broken() -> None:
        raise ConnectionError("down")

    catalog.ping = broken  # type: ignore[method-assign]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app()), base_url="http://api"
    ) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503 and response.json()["status"] == "unavailable"


@pytest.fixture
def server(tmp_path: Path, settings: ApiSettings) -> Iterator[tuple[str, Catalog]]:
    """The app on a real socket (uvicorn in a thread), on the embedded catalog, polling every 5 ms."""
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    app = create_app(settings.model_copy(update={"stream_poll_seconds": 0.005}), catalog=catalog)
    with serve_app(app, lifespan="auto") as base:
        yield base, catalog
    catalog.close()


def next_event(lines: Iterator[str]) -> tuple[str, Any]:
    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            return name, json.loads(line.removeprefix("data: "))
    raise AssertionError("the stream ended")


def test_a_real_server_delivers_changes_while_the_stream_is_open(server: tuple[str, Catalog]) -> None:
    url, catalog = server
    catalog.upsert(transcript_doc("job", phase="Running", progress=10))
    with httpx.stream("GET", f"{url}/api/stream/job/job", headers=auth("alice"), timeout=10) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next_event(lines)[1]["latestRun"]["progress"] == 10
        # Only now, with the stream open, does the job move on.
        catalog.upsert(transcript_doc("job", phase="Running", progress=60))
        assert next_event(lines)[1]["latestRun"]["progress"] == 60
        catalog.upsert(transcript_doc("job"))
        assert next_event(lines)[1]["status"] == "Succeeded"
        assert next_event(lines) == ("end", {"id": "job", "status": "Succeeded", "phase": "Succeeded"})
        assert list(lines) == [""]  # closed after the end event
    listing = httpx.get(f"{url}/api/jobs", headers=auth("alice")).json()
    assert [item["id"] for item in listing["items"]] == ["job"]


def test_one_stream_follows_a_whole_list_of_the_callers_jobs(server: tuple[str, Catalog]) -> None:
    """/api/stream/jobs: after `ready`, a job event per change of any of the caller's records,
    new ones included; another owner's never."""
    url, catalog = server
    catalog.upsert(transcript_doc("first", phase="Running", progress=10))
    with httpx.stream("GET", f"{url}/api/stream/jobs", headers=auth("alice"), timeout=10) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/event-stream"
        )
        lines = response.iter_lines()
        assert next_event(lines)[0] == "ready"
        catalog.upsert(transcript_doc("bobs", owner="bob", phase="Running", progress=1))
        catalog.upsert(transcript_doc("first", phase="Running", progress=30))
        name, data = next_event(lines)
        assert (name, data["id"], data["latestRun"]["progress"]) == ("job", "first", 30)
        catalog.upsert(transcript_doc("second", phase="Pending"))  # created after the page loaded
        name, data = next_event(lines)
        assert (name, data["id"], data["latestRun"]["phase"], data["status"]) == (
            "job",
            "second",
            "Pending",
            "Pending",
        )
        catalog.upsert(transcript_doc("first"))
        name, data = next_event(lines)
        assert (data["id"], data["status"], data["versionCount"]) == ("first", "Succeeded", 1)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("tokens: [{owner: alice, token: short}]", "tokens.0.token: String should have at least 16"),
        ("- alice: a-token-of-enough-length", "file: Input should be a valid dictionary"),
        ("tokens: [{owner: alice, token: 'x", "not valid YAML or JSON (line 1)"),
    ],
)
def test_a_bad_tokens_file_is_named_with_the_format(
    api_env: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: str,
    problem: str,
) -> None:
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not serve"))
    bad = tmp_path / "bad-tokens.yaml"
    bad.write_text(content)
    monkeypatch.setenv("CONTENTGEN_API_TOKENS_FILE", str(bad))
    assert main(["api"]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: {problem}" in err
    assert "tokens: [{owner: alice, token: <16+ random characters>}" in err and len(err.splitlines()) == 1
    assert "short" not in err.replace("should", "")  # never the token itself


def test_a_laptop_starts_without_a_tokens_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`contentgen api --local` on a fresh machine: no tokens file, no catalog yet (made, as
    `contentgen run` makes it), one owner, creates run here; it listens on this machine only."""
    from contentgen.httpapi.creators import LocalCreator

    monkeypatch.chdir(tmp_path)
    for key in (
        "CONTENTGEN_API_TOKENS_FILE",
        "CONTENTGEN_CATALOG",
        "CONTENTGEN_STORE",
        "CONTENTGEN_API_AUTH",
    ):
        monkeypatch.delenv(key, raising=False)
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(app=app, **options))
    assert main(["api", "--local", "--owner", "maria", "--offline"]) == 0
    assert "local mode, owner maria: http://127.0.0.1:8080/" in capsys.readouterr().out
    services = served["app"].state.services
    assert services.settings.api_auth == ["local"] and services.identities.local_caller().owner == "maria"
    assert isinstance(services.creator, LocalCreator) and services.creator.offline
    services.creator.close()
    services.catalog.close()
    assert (tmp_path / "contentgen-data" / "catalog").is_dir()
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not serve"))
    assert main(["api", "--local", "--host", "0.0.0.0"]) == 1
    assert "local mode has no login, so it listens on this machine only" in capsys.readouterr().err
    assert main(["api", "--local", "--owner", "Maria"]) == 1
    assert "--owner 'Maria': use lowercase letters" in capsys.readouterr().err
