"""`contentgen assets evaluate REF --pictures DIR`: pictures made elsewhere scored against a LoRA
version's subject, without generating or paying for anything (pipeline/likeness/pictures.py). The
LoRA is trained by `contentgen run --offline` on the sample video, whose subject is scikit-image's
astronaut photograph; the pictures are real packaged photographs (scripts/likeness_pictures.py):
other views of her, another person (matplotlib's Grace Hopper), a picture without a face."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import pytest
import yaml

from contentgen.catalog import open_catalog, to_record
from contentgen.cli.main import main
from contentgen.pipeline.likeness import pictures as scoring
from contentgen.pipeline.likeness import score
from contentgen.store import DEFAULT_LOCAL_STORE, ObjectStore, open_store
from scripts.likeness_pictures import pictures as demo_pictures
from scripts.likeness_pictures import write
from tests.conftest import EXAMPLES

SAMPLE = EXAMPLES / "media" / "sample.mp4"
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "CONTENTGEN_PRICES", "CONTENTGEN_BUDGETS"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def uid(cli: Cli, workspace: Path) -> str:
    """The example LoRA of the sample video, trained offline (its own evaluation off)."""
    manifest = yaml.safe_load((EXAMPLES / "loratraining.yaml").read_text())
    manifest["spec"]["evaluation"] = {"enabled": False}
    manifest["spec"]["dataset"]["captioning"] = "template"
    (workspace / "lora.yaml").write_text(yaml.safe_dump(manifest))
    code, _, err = cli("run", "--offline", "--source", str(SAMPLE), str(workspace / "lora.yaml"))
    assert code == 0, err
    catalog = open_catalog()
    [doc] = catalog.find_raw({"kind": "LoraTraining"})
    catalog.close()
    return str(doc["_id"])


def folder(workspace: Path, name: str, *pictures: str) -> Path:
    """A folder holding the named pictures of scripts/likeness_pictures.py."""
    made = workspace / name
    made.mkdir()
    every = demo_pictures()
    for picture in pictures:
        image, params = every[picture]
        ok, data = cv2.imencode(Path(picture).suffix, image, params)
        assert ok
        (made / picture).write_bytes(data.tobytes())
    return made


def the_store() -> ObjectStore:
    return open_store(os.environ.get("CONTENTGEN_STORE") or DEFAULT_LOCAL_STORE)


def version_record(uid: str) -> dict[str, Any]:
    catalog = open_catalog()
    try:
        doc = catalog.get(uid)
        assert doc is not None
        version: dict[str, Any] = to_record(doc).wire()["versions"][0]
        return version
    finally:
        catalog.close()


def scored(cli: Cli, *args: str) -> dict[str, Any]:
    code, out, err = cli("assets", "evaluate", "demo-avatar", *args, "-o", "json")
    assert code == 0, err
    assert "nothing is generated or paid" in err
    answer: dict[str, Any] = json.loads(out)
    return answer


def test_other_views_of_the_subject_get_a_number(cli: Cli, workspace: Path, uid: str) -> None:
    views = folder(workspace, "views", "astronaut-small.jpg", "astronaut-soft.webp")
    answer = scored(cli, "--pictures", str(views))
    likeness = answer["likeness"]
    # a number, over the threshold: these pictures look like her (not a verdict on the LoRA, which
    # made nothing here). Two views of one photograph are also near-copies of each other and of the
    # training images (cut from that photograph), which the copy rules may say.
    assert likeness["verdict"] == "alike"
    assert any(r.endswith(": these pictures look like the subject") for r in likeness["reasons"])
    assert not any("generated" in reason for reason in likeness["reasons"])
    assert likeness["median"] >= score.THRESHOLD and likeness["percent"] > 50
    assert not any("do not look like the subject" in reason for reason in likeness["reasons"])
    assert likeness["images"] == likeness["faces"] == 2
    assert "baselineMedian" not in likeness and "gain" not in likeness  # no baseline given
    assert [s["name"] for s in answer["scores"]] == ["astronaut-small.jpg", "astronaut-soft.webp"]
    assert all(s["similarity"] > score.THRESHOLD for s in answer["scores"])
    assert answer["source"] == "pictures" and answer["costUsd"] == 0
    stored = {Path(a["uri"]).name for a in answer["artifacts"]}
    assert {"likeness-grid.jpg", "likeness.json", "evaluation.json"} <= stored

    # the same in a table: what it says of these pictures and the median in a line, each picture's score
    code, out, _ = cli("assets", "evaluate", "demo-avatar", "--pictures", str(views), "-o", "table")
    assert code == 0
    assert f": these pictures look like the subject, median {likeness['median']:.2f}" in out
    assert "astronaut-soft.webp" in out and "not a verdict on the LoRA" in out
    assert " good" not in out and "generated" not in out


def test_another_person_is_poor_with_the_reason(cli: Cli, workspace: Path, uid: str) -> None:
    other = folder(workspace, "other", "grace-hopper.jpg")
    baseline = folder(workspace, "baseline", "astronaut-small.jpg")
    answer = scored(cli, "--pictures", str(other), "--baseline", str(baseline))
    likeness = answer["likeness"]
    assert likeness["verdict"] == "unlike"
    assert likeness["median"] < score.THRESHOLD
    assert any(r.endswith(": these pictures do not look like the subject") for r in likeness["reasons"])
    # the baseline (pictures without the LoRA) was scored too: the gain is measured
    assert likeness["baselineMedian"] > likeness["median"] and likeness["gain"] < 0
    assert [p["name"] for p in answer["baseline"]] == ["astronaut-small.jpg"]


def test_pictures_without_a_face_are_no_faces(cli: Cli, workspace: Path, uid: str) -> None:
    answer = scored(cli, "--pictures", str(folder(workspace, "cups", "coffee.png")))
    assert answer["likeness"]["verdict"] == "no-faces" and "median" not in answer["likeness"]
    assert answer["scores"][0]["similarity"] is None


def test_what_is_not_a_picture_is_refused_in_one_line(cli: Cli, workspace: Path, uid: str) -> None:
    mixed = folder(workspace, "mixed", "astronaut-small.jpg")
    (mixed / "notes.png").write_text("a text file named like a picture")
    code, out, err = cli("assets", "evaluate", "demo-avatar", "--pictures", str(mixed))
    assert code != 0 and out == ""
    assert err.strip().splitlines() == [
        f"contentgen assets: {mixed / 'notes.png'}: not a picture (PNG, JPEG or WebP), whatever its name says"
    ]

    empty = workspace / "empty"
    empty.mkdir()
    (empty / ".DS_Store").write_bytes(b"hidden files are not read")
    code, _, err = cli("assets", "evaluate", "demo-avatar", "--pictures", str(empty))
    assert code != 0 and len(err.strip().splitlines()) == 1 and "no picture to score" in err

    many = workspace / "many"
    many.mkdir()
    source = (mixed / "astronaut-small.jpg").read_bytes()
    for index in range(scoring.MAX_PICTURES + 1):
        (many / f"{index:02d}.jpg").write_bytes(source)
    code, _, err = cli("assets", "evaluate", "demo-avatar", "--pictures", str(many))
    assert code != 0 and f"over the {scoring.MAX_PICTURES} pictures scored at once" in err

    code, _, err = cli("assets", "evaluate", "demo-avatar", "--pictures", str(mixed), "--seed", "3")
    assert code != 0 and "--seed: not with --pictures" in err
    assert not list(the_store().list(f"loras/demo-user/{uid}/v1/likeness/e"))  # nothing stored by a refusal


def test_nothing_is_overwritten_and_the_history_is_kept(cli: Cli, workspace: Path, uid: str) -> None:
    code, _, err = cli("assets", "evaluate", "demo-avatar", "-o", "json")  # e1: generated, offline
    assert code == 0, err
    store = the_store()
    prefix = f"loras/demo-user/{uid}/v1/likeness/"
    before = {i.key: i.sha256 for i in store.list(prefix)}

    pictures = write(workspace / "demo")  # the demo's five pictures
    answer = scored(cli, "--pictures", str(workspace / "demo"))
    assert answer["evaluation"] == 2 and answer["recorded"]
    after = {i.key: i.sha256 for i in store.list(prefix)}
    assert {k: v for k, v in after.items() if k in before} == before  # e1 untouched
    assert {k.removeprefix(prefix) for k in after if k not in before} == {
        "e2/claim.json",
        "e2/likeness-grid.jpg",
        "e2/likeness.json",
        "e2/evaluation.json",
    }
    kept = json.loads(store.get_bytes(prefix + "e2/evaluation.json"))
    assert kept["source"] == "pictures" and kept["by"] == "cli" and kept["usage"] == []
    assert sorted(p["name"] for p in kept["pictures"]) == sorted(p.name for p in pictures)

    # its run was not evaluated: the first evaluation of generated pictures that measured, the offline
    # e1, is its verdict, and the pictures' scoring, though newer and measured, is in its history only
    version = version_record(uid)
    assert (version["likenessEvaluation"], version["likenessSource"]) == (1, "")
    assert (
        version["likenessEntry"]["provider"] == "offline"
        and version["likenessChoice"]["how"] == "first-measured"
    )
    [outside] = version["likenessHistory"]
    assert (outside["evaluation"], outside["source"]) == (2, "pictures")
    assert outside["likeness"]["images"] == len(pictures)
