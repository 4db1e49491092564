"""A LoraEvaluation in the cluster: the real operator (kopf) against the real control plane, under
the chart's RBAC, with the real worker run by the node for its Job, on the offline provider. A
LoRA trained offline, then its version 1 evaluated again: Succeeded with `no-faces` (the offline
pictures show none), the report and the cost in its status, the evaluation in the LoRA version's
likeness history in the catalog; one of a LoRA that does not exist, and one of another owner's,
wait Stalled saying why; deleting it with `deletionPolicy: Delete` removes its own objects and
nothing of the LoRA's. Under the chart's cluster-wide install here; its namespaced install is
test_namespaced_install.py's. On the
same cluster, issue 38's sharing: a LoRA of alice's used by bob's ImageGeneration once her
LoraTraining's annotation shares it with him, and carol's refused (LoraNotShared)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.catalog import to_record
from contentgen.store import keys
from tests.harness.kube import evaluation, image, lora, reason, record_calls, uid_of
from tests.kube.harness import Cluster, operated, wait_for
from tests.kubectl import Kubectl

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with operated(tmp_path_factory) as c:
        yield c
    # the chart's default (cluster-wide) install: every call the module's tests made, an
    # evaluation deleted with deletionPolicy Delete and a LoRA's grants mirrored among them, is one
    # the chart's RBAC test knows
    record_calls(c, "cluster-wide")


def stored(c: Cluster, prefix: str) -> list[str]:
    return sorted(i.key.removeprefix(prefix) for i in c.store.list(prefix))


def test_a_lora_version_evaluated_again_in_the_cluster(env: Cluster) -> None:
    c, ns = env, "evaluate"
    c.apply(lora("face", c.media), ns)
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
    catalog = c.catalog()

    def recorded() -> dict[str, Any] | None:
        doc = catalog.get(lora_uid)
        version = to_record(doc).wire()["versions"][0] if doc else {}
        return version if [h["evaluation"] for h in version.get("likenessHistory") or []] == [1] else None

    version = wait_for(recorded, 60, "the evaluation in the LoRA's history")
    # the training's own evaluation stays the version's verdict; the LoraEvaluation's is in its history
    assert version["likenessEvaluation"] == 0
    [again] = version["likenessHistory"]
    assert again["likeness"]["seeds"] == [3] and again["likeness"]["verdict"] == "no-faces"
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
    kept = to_record(catalog.get(lora_uid)).wire()["versions"][0]  # type: ignore[arg-type]
    assert [h["evaluation"] for h in kept["likenessHistory"]] == [1]


def test_an_evaluation_it_cannot_run_waits_and_says_why(env: Cluster) -> None:
    c, ns = env, "evaluate-refused"
    c.apply(evaluation("of-nothing", "nobody"), ns)
    c.apply(lora("bobs", c.media, owner="bob"), ns)
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
    env: Cluster, tmp_path: Path
) -> None:
    """Admission refuses carol's and, once the operator has mirrored alice's grant into the share
    policy's ConfigMap, admits bob's, which runs with her version; a grant taken back after a
    resource was admitted is the operator's to refuse (LoraNotShared, nothing run)."""
    c = env
    kubectl = Kubectl(c.local.control.admin_kubeconfig, tmp_path / "kubectl-home")
    c.apply(lora("avatar", c.media), "share-alice")
    c.wait_phase("LoraTraining", "share-alice", "avatar", "Succeeded")
    lora_uid = uid_of(c, "LoraTraining", "share-alice", "avatar")
    ref = {"loraRef": {"name": "avatar", "namespace": "share-alice", "owner": "alice"}, "scale": 0.8}
    for ns in ("share-bob", "share-carol"):
        c.ensure_namespace(ns)

    def apply(ns: str, manifest: dict[str, Any]) -> tuple[bool, str]:
        done = kubectl.run("apply", "-n", ns, "-f", "-", stdin=yaml.safe_dump(manifest), check=False)
        return done.returncode == 0, done.stderr.strip()

    def grants() -> dict[str, str]:
        return dict((c.get("configmaps", "contentgen", "contentgen-shares") or {}).get("data") or {})

    def refused(owner: str) -> str:
        return (
            f"spec.loras[0].loraRef: loraRef 'avatar' belongs to owner 'alice', who has not shared it with "
            f"owner '{owner}' for use; alice shares it with: kubectl annotate loratraining/avatar -n "
            f"share-alice contentgen.io/shared-with=owner:{owner}=use "
            "(with --overwrite, after its other grants)"
        )

    carols = image("carols", owner="carol", model="flux-lora", loras=[ref])

    def probe() -> bool:  # the API server loads a policy in the background
        dry = kubectl.run(
            "apply",
            "-n",
            "share-carol",
            "--dry-run=server",
            "-f",
            "-",
            stdin=yaml.safe_dump(carols),
            check=False,
        )
        return dry.returncode != 0

    wait_for(probe, 30, "the share policy in force")
    ok, message = apply("share-carol", carols)
    assert not ok and "\n" not in message and message.endswith(refused("carol"))
    c.patch(
        "LoraTraining",
        "share-alice",
        "avatar",
        {"metadata": {"annotations": {"contentgen.io/shared-with": "owner:bob=use"}}},
    )
    wait_for(lambda: grants().get("share-alice.avatar") == "owner:bob=use", 60, "the grant mirrored")
    bobs = image("bobs", owner="bob", model="flux-lora", loras=[ref])
    wait_for(lambda: apply("share-bob", bobs)[0], 30, "bob's admitted")  # the policy's params: an informer's
    ok, message = apply("share-carol", carols)  # bob's grant is not carol's
    assert not ok and message.endswith(refused("carol"))
    done = c.wait_phase("ImageGeneration", "share-bob", "bobs", "Succeeded")
    used = done["versions"][-1]["loras"]
    assert [(u["name"], u["uid"], u["version"]) for u in used] == [("avatar", lora_uid, 1)]

    def mirrored() -> list[dict[str, Any]] | None:
        doc = c.catalog_doc(lora_uid)
        return (doc or {}).get("shares") or None

    shares = wait_for(mirrored, 60, "the grant in the LoRA's record")
    assert [(s["to"], s["access"]) for s in shares] == [("owner:bob", "use")]

    # carol is given use, her resource admitted (waiting for a version alice has not trained yet),
    # and the grant taken back: the operator refuses it before anything runs.
    annotate = ["annotate", "loratraining/avatar", "-n", "share-alice", "--overwrite"]
    kubectl.run(*annotate, "contentgen.io/shared-with=owner:bob=use,owner:carol=use")
    wait_for(lambda: "carol" in grants().get("share-alice.avatar", ""), 60, "carol's grant mirrored")
    pinned = {**ref, "loraRef": {**ref["loraRef"], "version": 2}}
    later = image("carols-later", owner="carol", model="flux-lora", loras=[pinned])
    wait_for(lambda: apply("share-carol", later)[0], 30, "carol's admitted")
    _image_waiting(c, "share-carol", "carols-later", "LoraVersionNotFound")
    kubectl.run(*annotate, "contentgen.io/shared-with=owner:bob=use")
    status = _image_waiting(c, "share-carol", "carols-later", "LoraNotShared")
    assert status["phase"] == "Pending" and reason(status, "Stalled") == "LoraNotShared"
    assert "has not shared it with owner 'carol' for use" in status["message"]
    assert (
        "kubectl annotate loratraining/avatar -n share-alice "
        "contentgen.io/shared-with=owner:bob=use,owner:carol=use --overwrite" in status["message"]
    )
    assert not c.jobs("share-carol")  # nothing ran, nothing paid
    assert "LoraNotShared" in [e["reason"] for e in c.events("share-carol", "carols-later")]
    wait_for(lambda: grants().get("share-alice.avatar") == "owner:bob=use", 60, "the grant taken back")
    # Her LoraTraining deleted, its grants leave the ConfigMap.
    c.delete("LoraTraining", "share-alice", "avatar")
    wait_for(lambda: "share-alice.avatar" not in grants(), 60, "the deleted LoRA's grants gone")
