"""POST /api/assets/REF/versions/N/score on a laptop's API (`contentgen api --local`): pictures made
elsewhere, uploaded as multipart/form-data, scored against the LoRA version's subject (the sample
video's astronaut) and recorded as one of its evaluations (`source: pictures`), nothing written
over; another owner's LoRA is not found, an admin acts for its owner; refusals name the field
(a part that is not a picture, no picture, a field that does not exist), a body that is not
multipart is 415, an upload over the cap 413; an API that does not create stores nothing. Every
status answered is one the OpenAPI document lists for it (documented.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import httpx
import pytest
import pytest_asyncio

from contentgen.catalog import Catalog
from contentgen.httpapi import create_app
from contentgen.httpapi.creators import LocalCreator
from contentgen.httpapi.routes.evaluate import MAX_UPLOAD_BYTES
from contentgen.pipeline.likeness import pictures as scoring
from contentgen.pipeline.settings import PipelineSettings
from contentgen.store import LocalStore
from scripts.likeness_pictures import pictures as demo_pictures
from tests.harness.scoring import score_client, score_settings
from tests.httpapi.conftest import auth
from tests.httpapi.documented import Answers

SCORE = "/api/assets/{uid}/versions/{version}/score"


def picture(name: str) -> bytes:
    image, params = demo_pictures()[name]
    ok, data = cv2.imencode(Path(name).suffix, image, params)
    assert ok
    return bytes(data.tobytes())


@pytest_asyncio.fixture
async def http(
    trained: tuple[Catalog, LocalStore, str], tokens_file: Path, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, LocalStore, str]]:
    catalog, store, uid = trained
    creator = LocalCreator(
        catalog, lambda: store, offline=True, settings=PipelineSettings(work_dir=tmp_path / "work")
    )
    answers = Answers(
        create_app(
            score_settings(store, tokens_file, "local"), catalog=catalog, store=lambda: store, creator=creator
        )
    )
    async with score_client(answers) as client:
        yield client, store, uid
    creator.close()
    assert answers.undocumented() == []


def _files(*names: str, field: str = "pictures") -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field, (name, picture(name), "application/octet-stream")) for name in names]


@pytest.mark.asyncio
async def test_pictures_are_scored_and_kept_beside_the_version(
    http: tuple[httpx.AsyncClient, LocalStore, str],
) -> None:
    client, store, uid = http
    path = SCORE.format(uid=uid, version=1)
    sent = _files("astronaut-small.jpg", "grace-hopper.jpg", "coffee.png")
    done = await client.post(path, files=sent, headers=auth("alice"))
    assert done.status_code == 201, done.text
    made = done.json()
    assert (made["evaluation"], made["recorded"], made["source"], made["costUsd"]) == (1, True, "pictures", 0)
    by_name = {s["name"]: s for s in made["scores"]}
    assert by_name["astronaut-small.jpg"]["similarity"] > 0.6  # the subject, another view of her
    assert by_name["grace-hopper.jpg"]["similarity"] < 0.313  # another person
    assert (by_name["coffee.png"]["faces"], by_name["coffee.png"]["similarity"]) == (0, None)  # no face
    assert made["likeness"]["images"] == 3 and made["likeness"]["faces"] == 2
    assert [p["name"] for p in made["pictures"]] == ["astronaut-small.jpg", "grace-hopper.jpg", "coffee.png"]
    assert made["pictures"][0]["format"] == "jpeg" and len(made["pictures"][0]["sha256"]) == 64

    prefix = f"loras/alice/{uid}/v1/likeness/e1/"
    stored = {i.key.removeprefix(prefix): i for i in store.list(prefix)}
    assert set(stored) == {"claim.json", "likeness-grid.jpg", "likeness.json", "evaluation.json"}
    kept = json.loads(store.get_bytes(prefix + "evaluation.json"))
    assert kept["source"] == "pictures" and kept["by"] == "api" and kept["costUsd"] == 0
    assert [p["sha256"] for p in kept["pictures"]] == [p["sha256"] for p in made["pictures"]]

    # an admin acts for alice: a second score is e2; e1 stays as it was
    again = await client.post(path, files=_files("astronaut-soft.webp"), headers=auth("ops"))
    assert again.status_code == 201, again.text
    assert again.json()["evaluation"] == 2
    assert {i.key: i.sha256 for i in store.list(prefix)} == {i.key: i.sha256 for i in stored.values()}
    record = (await client.get(f"/api/jobs/{uid}", headers=auth("alice"))).json()
    version = record["versions"][0]
    # outside pictures are not a verdict on the LoRA: its own evaluation's stays, both scorings listed
    assert (version["likenessEvaluation"], version["likenessSource"]) == (0, "")
    first, second = version["likenessHistory"]
    assert (first["evaluation"], first["source"], len(first["pictures"])) == (1, "pictures", 3)
    assert (second["evaluation"], second["source"], second["by"]) == (2, "pictures", "api")
    assert first["likeness"]["verdict"] in ("alike", "unlike")  # what these pictures look like


@pytest.mark.asyncio
async def test_another_owner_cannot_score_against_the_lora(
    http: tuple[httpx.AsyncClient, LocalStore, str],
) -> None:
    client, store, uid = http
    refused = await client.post(
        SCORE.format(uid=uid, version=1), files=_files("astronaut-small.jpg"), headers=auth("bob")
    )
    assert refused.status_code == 404  # not visible to bob, as every route answers
    unauthenticated = await client.post(SCORE.format(uid=uid, version=1), files=_files("astronaut-small.jpg"))
    assert unauthenticated.status_code == 401
    assert not list(store.list(f"loras/alice/{uid}/v1/likeness/e"))


@pytest.mark.asyncio
async def test_refusals_name_the_field(http: tuple[httpx.AsyncClient, LocalStore, str]) -> None:
    client, store, uid = http
    path = SCORE.format(uid=uid, version=1)
    alice = auth("alice")

    text = [("pictures", ("notes.png", b"not a picture at all", "image/png"))]
    bad = await client.post(path, files=[*_files("astronaut-small.jpg"), *text], headers=alice)
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["code"] == "not_a_picture" and error["fields"][0]["field"] == "pictures"
    assert "pictures[1] (notes.png): not a picture" in error["message"]

    baseline = await client.post(
        path,
        files=[*_files("astronaut-small.jpg"), ("baseline", ("b.jpg", b"\xff\xd8\xff", "image/jpeg"))],
        headers=alice,
    )
    assert baseline.status_code == 400 and baseline.json()["error"]["fields"][0]["field"] == "baseline"

    none = await client.post(path, files=_files("grace-hopper.jpg", field="baseline"), headers=alice)
    assert none.status_code == 400 and none.json()["error"]["fields"][0]["field"] == "pictures"

    other = await client.post(path, files=_files("astronaut-small.jpg", field="photos"), headers=alice)
    assert other.status_code == 400 and other.json()["error"]["fields"][0]["field"] == "photos"

    not_multipart = await client.post(path, json={"pictures": []}, headers=alice)
    assert not_multipart.status_code == 415

    declared = {
        **alice,
        "Content-Type": "multipart/form-data; boundary=x",
        "Content-Length": str(MAX_UPLOAD_BYTES + 1),
    }
    too_large = await client.post(path, content=b"--x--\r\n", headers=declared)
    assert too_large.status_code == 413 and too_large.json()["error"]["code"] == "too_large"

    missing = await client.post(
        SCORE.format(uid=uid, version=9), files=_files("astronaut-small.jpg"), headers=alice
    )
    assert missing.status_code == 404 and "no usable version 9" in missing.json()["error"]["message"]
    assert not list(store.list(f"loras/alice/{uid}/v1/likeness/e"))  # nothing stored by a refusal


def test_the_document_states_the_body_and_its_caps(
    trained: tuple[Catalog, LocalStore, str], tokens_file: Path
) -> None:
    catalog, store, _ = trained
    app = create_app(
        score_settings(store, tokens_file, "off"), catalog=catalog, store=lambda: store, creator=None
    )
    operation = app.openapi()["paths"]["/api/assets/{ref}/versions/{version}/score"]["post"]
    body = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["pictures"]
    assert body["properties"]["pictures"]["maxItems"] == scoring.MAX_PICTURES
    assert f"{scoring.MAX_PICTURE_BYTES // 2**20} MiB" in operation["requestBody"]["description"]
    assert {"201", "400", "401", "403", "404", "409", "413", "415", "502", "503"} <= set(
        operation["responses"]
    )


@pytest.mark.asyncio
async def test_an_api_that_does_not_create_stores_nothing(
    trained: tuple[Catalog, LocalStore, str], tokens_file: Path
) -> None:
    catalog, store, uid = trained
    answers = Answers(
        create_app(
            score_settings(store, tokens_file, "off"), catalog=catalog, store=lambda: store, creator=None
        )
    )
    async with score_client(answers) as client:
        refused = await client.post(
            SCORE.format(uid=uid, version=1), files=_files("astronaut-small.jpg"), headers=auth("alice")
        )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "create_disabled"
    assert "contentgen assets evaluate REF --pictures DIR" in refused.json()["error"]["message"]
    assert answers.undocumented() == []
    assert not list(store.list(f"loras/alice/{uid}/v1/likeness/e"))


def test_an_upload_is_checked_without_numpy_or_opencv(tmp_path: Path) -> None:
    """The API's image has neither: what each part is, its size and its dimensions are read in plain
    Python, so a bad upload is refused there."""
    for name in ("astronaut-small.jpg", "astronaut-soft.webp", "coffee.png"):
        (tmp_path / name).write_bytes(picture(name))
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('numpy', 'cv2'):\n"
        "            raise ImportError(f'{name} is not in the API image')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from pathlib import Path\n"
        "from contentgen.httpapi.routes import evaluate\n"
        "from contentgen.pipeline.likeness import pictures\n"
        f"found = pictures.from_folder(Path({str(tmp_path)!r}))\n"
        "print([(p.format, p.width, p.height) for p in found])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", blocker], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('jpeg', 160, 160), ('webp', 512, 512), ('png', 600, 400)]"
