"""`contentgen assets evaluate`: a stored LoRA version evaluated again, without training it again
(pipeline/likeness/rescore.py). Each LoRA here is trained by `contentgen run --offline` on the
sample video with its evaluation off and its faces.json removed (a version trained before either
existed); the re-evaluations go through the offline provider, and through the real fal provider
against the fal fake with the store on the real S3 server (fal fetches the LoRA from a link)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.catalog import open_catalog, to_record
from contentgen.cli.main import main
from contentgen.pipeline.likeness import evaluation as evaluation_module
from contentgen.pipeline.likeness.score import THRESHOLD
from contentgen.store import DEFAULT_LOCAL_STORE, ObjectStore, open_store
from tests.conftest import EXAMPLES
from tests.providers.fake_fal import FAL_KEY, FakeFal
from tests.providers.fakes import mocked, unslept_retries

SAMPLE = EXAMPLES / "media" / "sample.mp4"
PICTURES = 12  # likeness-v1: six prompts × two seeds, with the LoRA (as many without it)
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "CONTENTGEN_PRICES", "CONTENTGEN_BUDGETS"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    unslept_retries(monkeypatch)  # the providers' waits are recorded, not slept
    return tmp_path


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def trained(cli: Cli, workspace: Path) -> dict[str, Any]:
    """An offline LoRA version of the sample video as one trained before the evaluation: no
    likeness report and no faces.json. Returns its record (current shape)."""
    manifest = yaml.safe_load((EXAMPLES / "loratraining.yaml").read_text())
    manifest["spec"]["evaluation"] = {"enabled": False}
    manifest["spec"]["dataset"]["captioning"] = "template"
    path = workspace / "lora.yaml"
    path.write_text(yaml.safe_dump(manifest))
    code, _, err = cli("run", "--offline", "--source", str(SAMPLE), str(path))
    assert code == 0, err
    catalog = open_catalog()
    [doc] = catalog.find_raw({"kind": "LoraTraining"})
    catalog.close()
    store = the_store()
    version = doc["versions"][0]
    assert "likeness" not in version
    faces = store.key_of(version["datasetUri"]).rpartition("/")[0] + "/faces.json"
    assert store.delete(faces)
    return doc


def the_store() -> ObjectStore:
    return open_store(os.environ.get("CONTENTGEN_STORE") or DEFAULT_LOCAL_STORE)


def catalog_doc(uid: str) -> dict[str, Any]:
    """The record's document as the catalog holds it."""
    catalog = open_catalog()
    try:
        doc = catalog.get(uid)
        assert doc is not None
        return doc
    finally:
        catalog.close()


def record(uid: str) -> dict[str, Any]:
    return to_record(catalog_doc(uid)).wire()


def test_offline_evaluations_keep_the_history_and_recompute_the_faces(cli: Cli, workspace: Path) -> None:
    doc = trained(cli, workspace)
    uid = doc["_id"]
    store = the_store()

    code, out, err = cli("assets", "evaluate", "demo-avatar", "-o", "json")
    assert code == 0, err
    first = json.loads(out)
    assert (first["evaluation"], first["ran"], first["recorded"], first["dryRun"]) == (1, True, True, False)
    # the offline pictures show the LoRA's simulated likeness (providers/offline_subject.py): the
    # version's model is its training's last step, over-trained, and measured so
    assert first["likeness"]["verdict"] == "poor" and first["likeness"]["median"] < THRESHOLD
    assert first["estimateUsd"] == 0 and first["costUsd"] == 0
    # the faces were computed from the dataset archive and kept with the dataset version, once
    faces = store.key_of(doc["versions"][0]["datasetUri"]).rpartition("/")[0] + "/faces.json"
    kept = json.loads(store.get_bytes(faces))
    assert len(kept["images"]) == doc["versions"][0]["frames"]
    assert any(a["uri"] == store.uri(faces) for a in first["artifacts"])
    prefix = f"loras/demo-user/{uid}/v1/likeness/e1/"
    assert {k.removeprefix(prefix) for k in (i.key for i in store.list(prefix))} == {
        "claim.json",  # the number, taken where no other evaluation had taken it
        "likeness-grid.jpg",
        "likeness.json",
        "evaluation.json",
    }
    assert json.loads(store.get_bytes(prefix + "claim.json")) == {"claimant": "local"}

    code, out, err = cli("assets", "evaluate", "demo-avatar", "--seed", "3", "-o", "table")
    assert code == 0, err
    assert "as evaluation e2: poor, median " in out
    shown = record(uid)["versions"][0]
    # the version's verdict stays the first (it has none of its own run), the later one is in its
    # history, never silently in its place
    assert shown["likenessEvaluation"] == 1 and shown["likeness"]["seeds"] == [1, 2]
    assert shown["likenessChoice"]["how"] == "first-measured"
    [later] = shown["likenessHistory"]
    assert (later["evaluation"], later["seeds"], later["by"]) == (2, [3], "cli")
    assert json.loads(store.get_bytes(prefix + "evaluation.json"))["seeds"] == [1, 2]
    assert store.exists(store.key_of(later["likeness"]["gridUri"]))
    assert {a["uri"] for a in shown["artifacts"]} >= {
        later["likeness"]["gridUri"],
        shown["likeness"]["gridUri"],
    }

    code, out, _ = cli("assets", "get", "demo-avatar", "-o", "table")
    assert (
        "likeness poor, median " in out
        and "(the verdict of evaluation e1, the first that measured it (its run's measured nothing); "
        "also e2 poor (cli))"
        in out
    )
    # a person may choose the later one as the verdict (tests/catalog/test_verdict_choice.py: one
    # that measured nothing may not)
    code, _, err = cli("assets", "promote", "demo-avatar", "--evaluation", "2")
    assert code == 0, err
    assert record(uid)["versions"][0]["likenessEvaluation"] == 2

    # fal cannot fetch the LoRA from a local store: refused before anything is asked of it
    fal = FakeFal()
    with mocked(fal):
        code, _, err = cli("assets", "evaluate", "demo-avatar", "--provider", "fal", "--yes")
    assert code != 0 and "file:// links work with the offline provider only; nothing was paid" in err
    assert fal.accepted == 0

    code, _, err = cli("assets", "evaluate", "demo-avatar", "--version", "7")
    assert code != 0 and "--version: " in err and "no usable version 7 (usable: v1)" in err


@pytest.fixture
def on_s3(s3: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CONTENTGEN_STORE", f"s3://{s3}/cg")
    return s3


class Stopped(BaseException):
    """The process killed mid-evaluation."""


def test_fal_evaluation_asks_first_resumes_without_paying_twice_and_respects_the_budget(
    cli: Cli, workspace: Path, on_s3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = trained(cli, workspace)
    uid = doc["_id"]
    fal = FakeFal()  # black pictures: no face, which is all billing needs

    # without --yes (and no terminal to ask at): the estimate, nothing paid
    with mocked(fal):
        code, out, err = cli("assets", "evaluate", uid, "--provider", "fal", "-o", "json")
    assert code == 0, err
    dry = json.loads(out)
    # 24 pictures of one megapixel on flux-lora at the table's $0.035: the baseline is not stored
    assert dry["dryRun"] and dry["estimateUsd"] == pytest.approx(24 * 0.035)
    assert "add --yes" in err and fal.accepted == 0

    # a budget that cannot cover it: refused with the numbers, nothing paid
    monkeypatch.setenv("CONTENTGEN_BUDGETS", json.dumps({"ownerMonthlyUsd": 0.5}))
    with mocked(fal):
        code, _, err = cli("assets", "evaluate", uid, "--provider", "fal", "--yes")
    assert code != 0
    assert "the monthly budget of owner demo-user is $0.50 (CONTENTGEN_BUDGETS)" in err
    assert "estimated at $0.84" in err and "nothing was paid" in err
    assert fal.accepted == 0
    monkeypatch.setenv("CONTENTGEN_BUDGETS", json.dumps({"ownerMonthlyUsd": 5}))

    # stopped after five paid pictures (the process killed): nothing recorded yet
    real = evaluation_module.run_evaluation

    def stopping(*args: Any, **kwargs: Any) -> Any:
        def progress(percent: float) -> None:
            if fal.billed >= 5:
                raise Stopped

        return real(*args[:7], progress, *args[8:], **kwargs)

    monkeypatch.setattr(evaluation_module, "run_evaluation", stopping)
    with mocked(fal), pytest.raises(Stopped):
        cli("assets", "evaluate", uid, "--provider", "fal", "--yes")
    assert fal.billed == 5
    unrecorded = record(uid)["versions"][0]
    assert not unrecorded["likenessHistory"] and unrecorded["likeness"] is None

    # the same command again resumes it as the same evaluation: the five are not paid again
    monkeypatch.setattr(evaluation_module, "run_evaluation", real)
    with mocked(fal):
        code, out, err = cli("assets", "evaluate", uid, "--provider", "fal", "--yes", "-o", "json")
    assert code == 0, err
    done = json.loads(out)
    assert done["evaluation"] == 1 and done["ran"]
    assert fal.billed == 2 * PICTURES == len([j for j in fal.ours if j.app == "fal-ai/flux-lora"])
    # priced as a run's usage is: at the account's price from fal's pricing API (the fake's $0.03
    # a megapixel, under the table's $0.035), each usage line with its unit price and source
    assert done["costUsd"] == pytest.approx(2 * PICTURES * 0.03)
    (entry,) = catalog_doc(uid)["versions"][0]["evaluations"]
    assert entry["usage"] and all(
        line["unitPriceUsd"] == 0.03 and line["priceSource"] == "fal pricing API" for line in entry["usage"]
    )
    # its cost is the record's: the re-evaluation's spend, by month
    cost = record(uid)["cost"]
    assert cost["evaluationsUsd"] == pytest.approx(2 * PICTURES * 0.03)

    # the budget counts it: another evaluation ($0.42 now that the baseline is stored) does not fit in $1
    monkeypatch.setenv("CONTENTGEN_BUDGETS", json.dumps({"ownerMonthlyUsd": 1}))
    with mocked(fal):
        code, _, err = cli("assets", "evaluate", uid, "--provider", "fal", "--yes")
    assert code != 0 and "has spent $0.72" in err and "estimated at $0.42" in err
    assert fal.billed == 2 * PICTURES


def test_fal_without_its_key_says_what_this_command_takes(
    cli: Cli, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = trained(cli, workspace)
    monkeypatch.delenv("FAL_KEY")
    fal = FakeFal()
    with mocked(fal):
        code, out, err = cli("assets", "evaluate", doc["_id"], "--provider", "fal", "--yes")
    assert (code, out) == (1, "")
    last = err.splitlines()[-1]
    assert last.startswith("contentgen assets: MissingCredentials: FAL_KEY is not set: set it")
    assert "or evaluate with --provider offline" in last  # what `assets evaluate` accepts
    assert "--offline" not in last.replace("--provider offline", "") and fal.accepted == 0
    assert "Traceback" not in err
