"""Every rule a resource breaks is reported at once (issue 70): a VideoGeneration with a bad fps, a
picture on a text-to-video model and a bad length hears of all three in one `contentgen validate`,
one `contentgen run` and one POST /api/resources, each on a line of its own naming its field, as
the real API server's CEL reports them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import mongomock
import pytest
import yaml

from contentgen.api import KINDS
from contentgen.api.crd import crd
from contentgen.api.manifests import Document
from contentgen.api.validation import validate_document
from contentgen.catalog.mongo import MongoCatalog
from contentgen.cli.main import main
from contentgen.httpapi import ApiSettings, create_app
from contentgen.pipeline.settings import PipelineSettings
from contentgen.store import LocalStore
from tests.admission import admit
from tests.harness.creators import HeldCreator

# (the spec, the fields its rules name): each model's rules broken three at a time
BROKEN: dict[str, tuple[dict[str, Any], set[str]]] = {
    "wan text-to-video": (
        {
            "model": "wan-2.2-t2v",
            "image": {"url": "https://example.com/p.png"},
            "durationSeconds": 99,
            "resolution": "1080p",
        },
        {"spec.image", "spec.durationSeconds", "spec.resolution"},
    ),
    "kling": (
        {
            "model": "kling-2.5-turbo",
            "provider": "fal",
            "durationSeconds": 7,
            "fps": 16,
            "resolution": "720p",
        },
        {"spec.durationSeconds", "spec.fps", "spec.resolution"},
    ),
    # a field's own limit (fps at most 60) does not hide the model's rules (issue 80)
    "a field's limit beside the rules": (
        {"model": "wan-2.2-t2v", "fps": 99, "numFrames": 1000, "image": {"url": "https://example.com/p.png"}},
        {"spec.fps", "spec.numFrames", "spec.image"},
    ),
}


def video(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "VideoGeneration",
        "metadata": {"name": "many-faults"},
        "spec": {"owner": "alice", "prompt": "waves", **spec},
    }


@pytest.mark.parametrize("case", list(BROKEN))
def test_validate_names_every_broken_rule_as_admission_does(case: str) -> None:
    spec, fields = BROKEN[case]
    outcome = validate_document(Document("v.yaml", 1, video(spec)))
    assert {p.path for p in outcome.problems} == fields, [p.line() for p in outcome.problems]
    assert all("\n" not in p.line() for p in outcome.problems)
    _, errors = admit(crd(KINDS["VideoGeneration"]), video(spec))
    assert sorted(p.path for p in outcome.problems) == sorted(path for path, _ in errors), errors


def test_validate_and_run_print_a_line_per_broken_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    spec, fields = BROKEN["kling"]
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(video(spec)))
    assert main(["validate", "v.yaml"]) == 1
    said = capsys.readouterr()
    lines = [line for line in said.out.splitlines() if line.startswith("v.yaml")]
    assert sorted(line.split(": ")[2] for line in lines) == sorted(fields), said.out
    assert "3 problems in 1 of 1 document" in said.out + said.err
    assert main(["run", "--offline", "v.yaml"]) == 1
    err = capsys.readouterr().err
    assert sorted(line.split(": ")[2] for line in err.splitlines() if line.startswith("v.yaml")) == sorted(
        fields
    ), err
    assert "(3 problems above)" in err


def test_the_http_api_lists_every_broken_rule(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens: [{owner: alice, token: alice-token-0123456789}]")
    catalog = MongoCatalog(mongomock.MongoClient(), "contentgen")
    store = LocalStore(tmp_path / "store")
    creator = HeldCreator(
        catalog, lambda: store, offline=True, settings=PipelineSettings(work_dir=tmp_path / "w")
    )
    app = create_app(
        ApiSettings(catalog="unused://", store=str(store.root), api_tokens_file=tokens),
        catalog=catalog,
        store=lambda: store,
        creator=creator,
    )
    spec, fields = BROKEN["wan text-to-video"]

    async def create() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            headers = {"Authorization": "Bearer alice-token-0123456789"}
            return await http.post("/api/resources", json=video(spec), headers=headers)

    try:
        answer = asyncio.run(create())
    finally:
        creator.close()
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid"
    assert {f["field"] for f in error["fields"]} == fields, error
