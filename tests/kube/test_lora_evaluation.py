"""A LoraEvaluation in the cluster: the real operator (kopf) against the real control plane, under
the chart's RBAC, with the real worker run by the node for its Job, on the offline provider. A
LoRA trained offline, then its version 1 evaluated again: Succeeded with `no-faces` (the offline
pictures show none), the report and the cost in its status, the evaluation in the LoRA version's
likeness history in the catalog; one of a LoRA that does not exist, and one of another owner's,
wait Stalled saying why; deleting it with `deletionPolicy: Delete` removes its own objects and
nothing of the LoRA's. Both install modes, so that the chart's RBAC for the kind is proven. On the
same cluster, issue 38's sharing: a LoRA of alice's used by bob's ImageGeneration once her
LoraTraining's annotation shares it with him, and carol's refused (LoraNotShared)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contentgen.catalog import Catalog, to_record
from contentgen.store import keys
from tests.kube.harness import Cluster, cluster, operated, operator, wait_for
from tests.kube.test_operator import image, lora, media, namespaced_rbac, reason, record_calls, uid_of
from tests.rbac.record import identity

pytestmark = pytest.mark.timeout(600)
__all__ = ["media"]  # the kube tests' media server, a fixture of this module too


def evaluation(name: str, lora_name: str, **spec: Any) -> dict[str, Any]:
    body = {"owner": "alice", "loraRef": {"name": lora_name, "version": 1}, "evaluation": {"seeds": [3]}}
    body.update(spec)
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "LoraEvaluation",
        "metadata": {"name": name},
        "spec": body,
    }


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with operated(tmp_path_factory) as c:
        yield c


def stored(c: Cluster, prefix: str) -> list[str]:
    return sorted(i.key.removeprefix(prefix) for i in c.store.list(prefix))


def test_a_lora_version_evaluated_again_in_the_cluster(env: Cluster, media: str) -> None:
    c, ns = env, "evaluate"
    c.apply(lora("face", media), ns)
    c.wait_phase("LoraTraining", ns, "face", "Succeeded")
    lora_uid = uid_of(c, "LoraTraining", ns, "face")
    c.apply(evaluation("face-again", "face", deletionPolicy="Delete"), ns)
    status = c.wait_phase("LoraEvaluation", ns, "face-again", "Succeeded")
    uid = uid_of(c, "LoraEvaluation", ns, "face-again")

    # its status: the report, the version evaluated, its number, the cost (the provider it ran on:
    # the version's, offline)
    assert reason(status) == "Succeeded" and status["likeness"]["verdict"] == "no-faces"
    assert status["likeness"]["seeds"] == [3] and "median" not in status["likeness"]
    assert (status["lora"]["name"], status["lora"]["uid"], status["lora"]["version"]) == ("face", lora_uid, 1)
    assert status["lora"]["provider"] == "offline" and status["evaluation"] == 1
    assert status["cost"]["estimatedUsd"] == 0 and status["cost"]["actualUsd"] == 0
    assert [v["version"] for v in status["versions"]] == [1] and status["latestVersion"] == 1
    events = [e["reason"] for e in c.events(ns, "face-again")]
    assert events[:1] == ["JobCreated"] and events[-1] == "Succeeded"
    (job,) = [j for j in c.jobs(ns) if j["metadata"]["name"].startswith("face-again-le-")]
    assert job["metadata"]["annotations"]["contentgen.io/provider"] == "offline"

    # its files are the LoRA version's (numbered after the training's own evaluation); its own,
    # the run's result
    likeness = keys.likeness_evaluation("alice", lora_uid, 1, 1)
    assert stored(c, likeness) == ["claim.json", "evaluation.json", "likeness-grid.jpg", "likeness.json"]
    assert stored(c, keys.evaluations_root("alice", uid)) == ["v1/result.json"]

    # the catalog: its own record, and the evaluation in the LoRA version's history
    catalog = Catalog(c.mongo, lambda: None)

    def recorded() -> dict[str, Any] | None:
        doc = catalog.get(lora_uid)
        version = to_record(doc).wire()["versions"][0] if doc else {}
        return version if version.get("likenessEvaluation") == 1 else None

    version = wait_for(recorded, 60, "the evaluation in the LoRA's history")
    assert version["likeness"]["seeds"] == [3] and version["likeness"]["verdict"] == "no-faces"
    assert [h["evaluation"] for h in version["likenessHistory"]] == [0]  # the training's own
    own = wait_for(lambda: catalog.get(uid), 60, "the LoraEvaluation's record")
    record = to_record(own).wire()
    assert (record["type"], record["status"], record["evaluation"], record["lora"]["uid"]) == (
        "lora-evaluation", "Succeeded", 1, lora_uid,
    )  # fmt: skip
    assert record["provider"] == "offline"  # the spec names none: the version's
    entry = next(e for e in catalog.get(lora_uid)["versions"][0]["evaluations"] if e["evaluation"] == 1)  # type: ignore[index]
    assert entry["resource"]["uid"] == uid and entry["by"] == "LoraEvaluation"

    # deleted with deletionPolicy Delete: its own objects go, the LoRA's evaluation stays
    c.delete("LoraEvaluation", ns, "face-again")
    wait_for(lambda: c.resource("LoraEvaluation", ns, "face-again") is None, what="face-again deleted")
    assert stored(c, keys.evaluations_root("alice", uid)) == [] and stored(c, keys.temp_root(uid)) == []
    assert stored(c, likeness) == ["claim.json", "evaluation.json", "likeness-grid.jpg", "likeness.json"]
    assert "CleanedUp" in [e["reason"] for e in c.events(ns, "face-again")]
    assert to_record(catalog.get(lora_uid)).wire()["versions"][0]["likenessEvaluation"] == 1  # type: ignore[arg-type]


def test_an_evaluation_it_cannot_run_waits_and_says_why(env: Cluster, media: str) -> None:
    c, ns = env, "evaluate-refused"
    c.apply(evaluation("of-nothing", "nobody"), ns)
    c.apply(lora("bobs", media, owner="bob"), ns)
    c.apply(evaluation("of-bobs", "bobs"), ns)

    def waiting(name: str, why: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            status = c.status("LoraEvaluation", ns, name)
            ready = next((x for x in status.get("conditions") or [] if x["type"] == "Ready"), {})
            return status if ready.get("reason") == why else None

        return wait_for(check, 120, f"{name} {why}")  # type: ignore[no-any-return]

    nothing = waiting("of-nothing", "LoraNotFound")
    assert "there is no LoraTraining 'nobody' in namespace evaluate-refused" in nothing["message"]
    stalled = next(x["status"] for x in nothing["conditions"] if x["type"] == "Stalled")
    assert nothing["phase"] == "Pending" and stalled == "True"
    bobs = waiting("of-bobs", "LoraOwnerMismatch")
    assert "loraRef 'bobs' belongs to owner 'bob', not 'alice' (spec.owner)" in bobs["message"]
    assert not [j for j in c.jobs(ns) if "-le-" in j["metadata"]["name"]]  # nothing ran, nothing paid


def _image_waiting(c: Cluster, ns: str, name: str, why: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = c.status("ImageGeneration", ns, name)
        ready = next((x for x in status.get("conditions") or [] if x["type"] == "Ready"), {})
        return status if ready.get("reason") == why else None

    return wait_for(check, 120, f"{name} {why}")  # type: ignore[no-any-return]


def test_a_lora_shared_with_bob_is_used_by_his_image_generation_and_not_by_carols(
    env: Cluster, media: str
) -> None:
    c = env
    c.apply(lora("avatar", media), "share-alice")
    c.wait_phase("LoraTraining", "share-alice", "avatar", "Succeeded")
    lora_uid = uid_of(c, "LoraTraining", "share-alice", "avatar")
    ref = {"loraRef": {"name": "avatar", "namespace": "share-alice", "owner": "alice"}, "scale": 0.8}
    c.apply(image("bobs", owner="bob", model="flux-lora", loras=[ref]), "share-bob")
    c.apply(image("carols", owner="carol", model="flux-lora", loras=[ref]), "share-carol")

    for ns, name, owner in (("share-bob", "bobs", "bob"), ("share-carol", "carols", "carol")):
        status = _image_waiting(c, ns, name, "LoraNotShared")
        assert status["phase"] == "Pending" and reason(status, "Stalled") == "LoraNotShared"
        assert f"has not shared it with owner '{owner}' for use" in status["message"]
        assert (
            "kubectl annotate loratraining/avatar -n share-alice contentgen.io/shared-with="
            in status["message"]
        )
        assert not c.jobs(ns)  # nothing ran, nothing paid
        assert "LoraNotShared" in [e["reason"] for e in c.events(ns, name)]

    c.patch(
        "LoraTraining",
        "share-alice",
        "avatar",
        {"metadata": {"annotations": {"contentgen.io/shared-with": "owner:bob=use"}}},
    )
    done = c.wait_phase("ImageGeneration", "share-bob", "bobs", "Succeeded")
    used = done["versions"][-1]["loras"]
    assert [(u["name"], u["uid"], u["version"]) for u in used] == [("avatar", lora_uid, 1)]
    status = _image_waiting(c, "share-carol", "carols", "LoraNotShared")  # still: bob's grant is not carol's
    assert not c.jobs("share-carol")

    def mirrored() -> list[dict[str, Any]] | None:
        doc = c.catalog_doc(lora_uid)
        return (doc or {}).get("shares") or None

    shares = wait_for(mirrored, 60, "the grant in the LoRA's record")
    assert [(s["to"], s["access"]) for s in shares] == [("owner:bob", "use")]


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_the_charts_rbac_runs_it_in_both_install_modes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, media: str, mode: str
) -> None:
    """Every call the operator and the worker make for the kind is one the chart's RBAC test knows
    (tests/rbac/observed-calls.json). Recording them (UPDATE_OBSERVED_CALLS=1) waits for its watch
    too, which the audit log has only once the watch ends (the operator stopped, and the API server
    told so by the next event it would send: minutes); checking them need not."""
    namespaced = mode == "namespaced"
    with cluster(tmp_path, monkeypatch, rbac=namespaced_rbac(["team-e"]) if namespaced else None) as c:
        if namespaced:
            monkeypatch.setenv("CONTENTGEN_WATCH_NAMESPACES", '["team-e"]')
            monkeypatch.setenv("CONTENTGEN_MANAGE_WORKER_ACCESS", "false")  # the chart makes them there
        with operator(c):
            c.apply(lora("face", media), "team-e")
            c.apply(evaluation("face-again", "face", deletionPolicy="Delete"), "team-e")
            status = c.wait_phase("LoraEvaluation", "team-e", "face-again", "Succeeded")
            assert status["likeness"]["verdict"] == "no-faces" and status["lora"]["version"] == 1
            c.delete("LoraEvaluation", "team-e", "face-again")
            wait_for(
                lambda: c.resource("LoraEvaluation", "team-e", "face-again") is None,
                what="face-again deleted",
            )
        if os.environ.get("UPDATE_OBSERVED_CALLS") == "1":  # recording the calls: its watch too
            c.apply(evaluation("after", "face"), "team-e")  # an event for the stopped operator's watch

            def watch_ended() -> bool:
                return any(
                    d.verb == "watch" and d.resource == "loraevaluations" and identity(d.user) == "operator"
                    for d in c.decisions()
                )

            wait_for(watch_ended, 180, "the operator's watch of LoraEvaluations in the audit log")
        record_calls(c, mode)
