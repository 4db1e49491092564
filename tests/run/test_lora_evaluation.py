"""A LoraEvaluation on a laptop (`contentgen run examples/loraevaluation.yaml`) and through
`contentgen worker`, on the offline provider with every local stage real: its loraRef resolved to
the version trained here, the evaluation stored beside that version under a number of its own,
its record and the LoRA version's likeness history written, and a worker attempt that stopped
after storing the evaluation handing it over again instead of making it twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.api import EvaluatedLora, RunResult
from contentgen.api.run import parse_termination
from contentgen.catalog import open_catalog, to_record
from contentgen.catalog.lineage import lineage
from contentgen.pipeline.local_run import local_uid
from contentgen.store import LocalStore
from tests.conftest import EXAMPLES
from tests.harness.cli import SAMPLE, result_of, run, snapshot_file, worker
from tests.providers.fake_fal import FAL_KEY, FakeFal
from tests.providers.fakes import mocked, unslept_retries

EVALUATION = EXAMPLES / "loraevaluation.yaml"
LORA_UID = local_uid("LoraTraining", "default", "demo-avatar")


def handed_over(message: str, store: LocalStore) -> RunResult:
    """The worker's result as the operator reads it: the termination message, or the stored result
    when the message left details out to fit the kubelet's limit (longer paths do)."""
    done = parse_termination(message)
    assert isinstance(done, RunResult)
    if done.truncated and done.result_uri is not None:
        return RunResult.model_validate_json(store.get_bytes(store.key_of(done.result_uri)))
    return done


def keys_under(store: LocalStore, prefix: str) -> list[str]:
    return sorted(info.key.removeprefix(prefix) for info in store.list(prefix))


def test_a_lora_version_evaluated_again_on_a_laptop(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--offline", str(EVALUATION))
    assert code == 1 and "loraRef 'demo-avatar'" in err and "run its manifest first" in err
    code, _, err = run(capsys, "--offline", "--source", str(SAMPLE), str(EXAMPLES / "loratraining.yaml"))
    assert code == 0, err

    code, out, err = run(capsys, "--result", "first.json", str(EVALUATION))  # its provider: the version's
    assert code == 0, err
    first = result_of(workspace / "first.json")
    assert first.kind == "LoraEvaluation" and first.provider == "offline" and first.evaluation is not None
    assert (first.evaluation.lora.name, first.evaluation.lora.uid, first.evaluation.lora.version) == (
        "demo-avatar", LORA_UID, 1,
    )  # fmt: skip
    # the version's model (its run's choice among the simulated checkpoints) draws the subject's
    # face offline (providers/offline_subject.py): measured on the manifest's seeds
    assert first.evaluation.evaluation == 1 and first.evaluation.likeness.median is not None
    assert first.evaluation.likeness.seeds == [3, 4]  # the manifest's, not the training's
    assert "evaluated version 1 of demo-avatar again as its evaluation e1" in out

    # its files are the LoRA version's, beside its earlier likeness; its own, a result document
    store = LocalStore(workspace / "contentgen-data" / "store")
    likeness = f"loras/demo-user/{LORA_UID}/v1/likeness/e1/"
    assert keys_under(store, likeness) == [
        "claim.json",
        "evaluation.json",
        "likeness-grid.jpg",
        "likeness.json",
    ]
    own = f"evaluations/demo-user/{first.uid}/"
    assert keys_under(store, own) == ["v1/result.json"]
    stored = json.loads(store.get_bytes(likeness + "evaluation.json"))
    assert stored["by"] == "LoraEvaluation" and stored["resource"] == {
        "kind": "LoraEvaluation", "namespace": "default", "name": "demo-avatar-again", "uid": first.uid,
    }  # fmt: skip

    catalog = open_catalog()
    own_record = to_record(catalog.get(first.uid)).wire()  # type: ignore[arg-type]
    assert (own_record["type"], own_record["status"], own_record["evaluation"]) == (
        "lora-evaluation", "Succeeded", 1,
    )  # fmt: skip
    assert own_record["lora"]["name"] == "demo-avatar"
    assert own_record["likeness"]["verdict"] == first.evaluation.likeness.verdict
    assert own_record["versions"][0]["recordUri"] == store.uri(likeness + "evaluation.json")
    traced = lineage(catalog, catalog.get(first.uid), None)  # type: ignore[arg-type]
    assert [(u.name, u.uid, u.version, u.found) for u in traced.loras] == [("demo-avatar", LORA_UID, 1, True)]
    assert traced.loras[0].trained is not None and traced.loras[0].trained.dataset_uri
    lora = to_record(catalog.get(LORA_UID)).wire()  # type: ignore[arg-type]
    (version,) = lora["versions"]
    # the training's own evaluation stays the version's verdict; the LoraEvaluation's is in its history
    assert version["likenessEvaluation"] == 0 and version["likenessChoice"]["how"] == "run"
    [again] = version["likenessHistory"]
    assert again["evaluation"] == 1 and again["likeness"]["seeds"] == [3, 4]
    assert again["resource"]["kind"] == "LoraEvaluation"
    assert store.uri(likeness + "likeness-grid.jpg") in [a["uri"] for a in version["artifacts"]]

    # run again: a new run of the resource, its own version and number; the first stays
    code, _, err = run(capsys, "--result", "second.json", str(EVALUATION))
    assert code == 0, err
    second = result_of(workspace / "second.json")
    assert (second.version, second.evaluation.evaluation) == (2, 2)  # type: ignore[union-attr]
    lora = to_record(catalog.get(LORA_UID)).wire()  # type: ignore[arg-type]
    assert lora["versions"][0]["likenessEvaluation"] == 0
    assert [h["evaluation"] for h in lora["versions"][0]["likenessHistory"]] == [1, 2]
    assert [v["version"] for v in to_record(catalog.get(first.uid)).wire()["versions"]] == [1, 2]  # type: ignore[arg-type]


def test_a_version_without_its_dataset_is_refused_in_one_line(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "--offline", "--source", str(SAMPLE), str(EXAMPLES / "loratraining.yaml"))[0] == 0
    manifest = yaml.safe_load(EVALUATION.read_text())
    manifest["spec"]["loraRef"]["version"] = 2
    (workspace / "v2.yaml").write_text(yaml.safe_dump(manifest))
    code, _, err = run(capsys, str(workspace / "v2.yaml"))
    assert code == 1 and "LoraVersionNotFound: loraRef 'demo-avatar' version 2" in err
    assert "has no usable version 2 (usable versions: v1)" in err
    assert len(err.strip().splitlines()) == 1


def lora_trained_by_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunResult:
    """A LoRA version as a LoraTraining's Job leaves it (offline, on the sample video)."""
    from tests.httpserver import serve

    spec = {
        "owner": "u",
        "provider": "offline",
        "source": {"url": "http://placeholder/x.mp4"},
        "triggerWord": "tw",
        "dataset": {"maxFrames": 4, "minFrames": 4},
        "evaluation": {"enabled": False},
    }
    with serve({"/sample.mp4": (200, {}, SAMPLE.read_bytes())}) as (base, _):
        spec["source"] = {"url": f"{base}/sample.mp4"}
        path = snapshot_file(tmp_path, "LoraTraining", spec, version=1)
        code, message = worker(tmp_path, path, monkeypatch, CONTENTGEN_ALLOW_PRIVATE_SOURCES="true")
    assert code == 0, message
    trained = parse_termination(message)
    assert isinstance(trained, RunResult) and trained.lora is not None
    return trained


def test_the_worker_hands_a_stored_evaluation_over_again_instead_of_making_it_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = lora_trained_by_the_worker(tmp_path, monkeypatch)
    assert trained.lora is not None
    lora = EvaluatedLora(
        name="w",
        uid="11111111-2222-3333-4444-555555555555",
        version=1,
        model_uri=trained.lora.model_uri,
        provider="offline",
        trigger_word="tw",
        dataset_uri=trained.lora.dataset_uri,
    )
    spec: dict[str, Any] = {"owner": "u", "loraRef": {"name": "w"}, "evaluation": {"seeds": [5]}}
    (tmp_path / "spec.json").unlink()
    evaluation = snapshot_file(tmp_path, "LoraEvaluation", spec, version=1, lora=lora)
    snapshot = json.loads(evaluation.read_text())
    snapshot["uid"] = "99999999-2222-3333-4444-555555555555"  # the LoraEvaluation's own
    evaluation.write_text(json.dumps(snapshot))
    code, message = worker(tmp_path, evaluation, monkeypatch)
    assert code == 0, message
    store = LocalStore(tmp_path / "store")
    done = handed_over(message, store)
    assert done.evaluation is not None and done.evaluation.evaluation == 1
    assert done.provider == "offline" and done.evaluation_record is not None  # the snapshot's provider
    likeness = f"loras/u/{lora.uid}/v1/likeness/"
    made = keys_under(store, likeness)
    assert "e1/evaluation.json" in made and not any(k.startswith("e2/") for k in made)
    own = f"evaluations/u/{snapshot['uid']}/v1/result.json"

    # the pod stopped after storing the evaluation, before its result: the next attempt takes it
    store.delete(own)
    code, message = worker(tmp_path, evaluation, monkeypatch)
    assert code == 0, message
    again = handed_over(message, store)
    assert again.evaluation is not None
    assert again.evaluation.evaluation == 1 and keys_under(store, likeness) == made
    assert (
        again.evaluation_record is not None
        and again.evaluation_record["likeness"] == done.evaluation_record["likeness"]
    )
    # and an attempt after the result was stored hands the result over as it is
    code, message = worker(tmp_path, evaluation, monkeypatch)
    assert code == 0 and keys_under(store, likeness) == made


def test_a_fal_evaluation_is_paid_once_its_checkpoints_its_own_and_its_cost_counted_once(
    workspace: Path, capsys: pytest.CaptureFixture[str], s3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the real S3 server and the fal fake: 24 pictures the first time (the baseline is not
    stored), each checkpointed under the LoraEvaluation's own temp/ (what its deletion cancels); a
    second LoraEvaluation with those seeds pays for the 12 with the LoRA only. Each one's cost is
    its own record's, not counted again in the LoRA's."""
    monkeypatch.setenv("CONTENTGEN_STORE", f"s3://{s3}/cg")
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    unslept_retries(monkeypatch)
    assert run(capsys, "--offline", "--source", str(SAMPLE), str(EXAMPLES / "loratraining.yaml"))[0] == 0
    manifest = yaml.safe_load(EVALUATION.read_text())
    manifest["spec"]["provider"] = "fal"
    (workspace / "fal.yaml").write_text(yaml.safe_dump(manifest))
    fal = FakeFal()
    with mocked(fal):
        code, _, err = run(capsys, "--result", "fal.json", str(workspace / "fal.yaml"))
    assert code == 0, err
    assert "estimated cost $0.8400 at fal" in err  # 24 one-megapixel pictures at $0.035
    assert fal.billed == 24
    done = result_of(workspace / "fal.json")
    from contentgen.store import open_store

    store = open_store(f"s3://{s3}/cg")
    checkpoints = keys_under(store, f"temp/{done.uid}/checkpoints/")  # type: ignore[arg-type]
    assert len(checkpoints) == 24 and all(c.startswith("likeness-v1-e1-likeness-v1-") for c in checkpoints)
    assert not keys_under(store, f"temp/{LORA_UID}/checkpoints/likeness-")  # type: ignore[arg-type]

    manifest["metadata"]["name"] = "demo-avatar-once-more"
    (workspace / "again.yaml").write_text(yaml.safe_dump(manifest))
    with mocked(fal):
        code, _, err = run(capsys, "--result", "again.json", str(workspace / "again.yaml"))
    assert code == 0, err
    assert fal.billed == 36  # the baseline was stored: the 12 with the LoRA only
    assert "estimated cost $0.4200 at fal" in err  # and the estimate knew it: 12 pictures at $0.035
    assert result_of(workspace / "again.json").evaluation.evaluation == 2  # type: ignore[union-attr]

    catalog = open_catalog()
    costs = {doc["name"]: to_record(doc).cost for doc in catalog.find_raw({})}
    first, second = costs["demo-avatar-again"].actual_usd, costs["demo-avatar-once-more"].actual_usd  # type: ignore[union-attr]
    assert first and second and first == pytest.approx(2 * second)  # at fal's price per megapixel
    once_more = costs["demo-avatar-once-more"]  # estimated as billed: the 12 pictures with the LoRA
    assert once_more is not None and once_more.estimated_usd == pytest.approx(12 * 0.035)  # the table's
    assert once_more.detail.startswith("actual: 12 megapixels of fal-ai/flux-lora")  # the account's price
    lora = to_record(catalog.get(LORA_UID)).wire()  # type: ignore[arg-type]
    assert lora["cost"]["evaluationsUsd"] == 0  # counted in the LoraEvaluations' records
    version = lora["versions"][0]
    every = [
        *version["likenessHistory"],
        {"evaluation": version["likenessEvaluation"], **(version["likenessEntry"] or {})},
    ]
    assert {h["evaluation"]: h.get("costUsd") for h in every}[1] == pytest.approx(first)
    from contentgen.catalog.queries import fold_spend

    spent = fold_spend(catalog.find_raw({}, {"owner": 1, "type": 1, "cost": 1, "evaluationCost": 1}))
    assert spent.by_type["lora-evaluation"] == pytest.approx(first + second)
    assert spent.total_usd == pytest.approx(first + second)  # the offline training cost nothing
