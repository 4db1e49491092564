"""The garbage collector: background, orphan and foreground propagation (blockOwnerDeletion),
and dependents of owners that never existed. ConfigMaps stand for owners and dependents; a
finalizer of the test's own holds a dependent to show what waits for what."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.cluster.conftest import Cluster, job_manifest, wait_for

pytestmark = pytest.mark.timeout(60)

HOLD = "example.com/hold"
MERGE = "application/merge-patch+json"


def owner_ref(owner: dict[str, Any], *, block: bool = False) -> dict[str, Any]:
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    if block:
        ref["blockOwnerDeletion"] = True
    return ref


def configmap(
    cluster: Cluster, name: str, *owners: dict[str, Any], finalizers: tuple[str, ...] = ()
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owners:
        meta["ownerReferences"] = list(owners)
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return cluster.create("", "configmaps", {"metadata": meta, "data": {"k": "v"}})


def gone(cluster: Cluster, name: str) -> bool:
    return cluster.get("", "configmaps", "default", name) is None


def delete(cluster: Cluster, name: str, policy: str) -> None:
    cluster.call("delete", "", "configmaps", "default", name, {"propagationPolicy": policy})


def release(cluster: Cluster, name: str) -> None:
    cluster.call(
        "patch", "", "configmaps", "default", name, {"metadata": {"finalizers": None}}, content_type=MERGE
    )


def test_background_deletion_removes_dependents_after_the_owner(cluster: Cluster) -> None:
    owner = configmap(cluster, "owner")
    configmap(cluster, "child-a", owner_ref(owner))
    configmap(cluster, "child-b", owner_ref(owner, block=True))
    delete(cluster, "owner", "Background")
    assert gone(cluster, "owner")  # at once: background does not wait for dependents
    wait_for(lambda: gone(cluster, "child-a") and gone(cluster, "child-b"), "the dependents to be collected")


def test_orphan_removes_the_references_then_the_finalizer(cluster: Cluster) -> None:
    owner = configmap(cluster, "parent")
    configmap(cluster, "kept", owner_ref(owner, block=True))
    other = configmap(cluster, "other-owner")
    configmap(cluster, "two-owners", owner_ref(owner), owner_ref(other))
    delete(cluster, "parent", "Orphan")
    wait_for(lambda: gone(cluster, "parent"), "the orphan finalizer to be handled")
    kept = cluster.get("", "configmaps", "default", "kept")
    assert kept is not None and "ownerReferences" not in kept["metadata"]
    both = cluster.get("", "configmaps", "default", "two-owners")
    assert both is not None and both["metadata"]["ownerReferences"] == [owner_ref(other)]
    versions = cluster.history("", "configmaps", "default", "parent")
    assert any(v["metadata"].get("finalizers") == ["orphan"] for v in versions)  # set by the API server


def test_foreground_waits_for_blocking_dependents_only(cluster: Cluster) -> None:
    owner = configmap(cluster, "app")
    configmap(cluster, "blocking", owner_ref(owner, block=True), finalizers=(HOLD,))
    configmap(cluster, "loose", owner_ref(owner), finalizers=(HOLD,))
    configmap(cluster, "plain", owner_ref(owner, block=True))
    delete(cluster, "app", "Foreground")

    def deleting(name: str) -> bool:
        obj = cluster.get("", "configmaps", "default", name)
        return obj is not None and bool(obj["metadata"].get("deletionTimestamp"))

    wait_for(
        lambda: deleting("blocking") and deleting("loose") and gone(cluster, "plain"),
        "every dependent to be deleted",
    )
    app = cluster.get("", "configmaps", "default", "app")
    assert app is not None and app["metadata"]["finalizers"] == ["foregroundDeletion"]  # held by "blocking"
    release(cluster, "blocking")
    wait_for(lambda: gone(cluster, "app"), "the owner to go once no blocking dependent is left")
    assert deleting("loose")  # it never blocked its owner, and still waits for its own finalizer
    release(cluster, "loose")
    wait_for(lambda: gone(cluster, "loose"), "the released dependent")


def test_dependents_of_an_owner_that_never_existed_are_deleted(cluster: Cluster) -> None:
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": str(uuid.uuid4())}
    configmap(cluster, "haunted", ghost)
    wait_for(lambda: gone(cluster, "haunted"), "the dangling dependent to be deleted")
    live = configmap(cluster, "alive")
    configmap(cluster, "half", ghost, owner_ref(live))
    wait_for(
        lambda: (
            (cluster.get("", "configmaps", "default", "half") or {})
            .get("metadata", {})
            .get("ownerReferences")
            == [owner_ref(live)]
        ),
        "the dangling reference to be removed from a dependent with a live owner",
    )
    unknown = {"apiVersion": "example.com/v1", "kind": "Unserved", "name": "x", "uid": str(uuid.uuid4())}
    configmap(cluster, "unresolvable", unknown)
    configmap(cluster, "marker", ghost)  # collected after "unresolvable" was looked at
    wait_for(lambda: gone(cluster, "marker"), "the marker")
    assert not gone(cluster, "unresolvable")  # a kind the server does not serve is left alone


def test_deleting_a_job_in_the_foreground_waits_for_its_pods(cluster: Cluster, tmp_path: Any) -> None:
    gate = tmp_path / "never"
    script = f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.02)\n"
    job = cluster.create("batch", "jobs", job_manifest("fg", "-c", script))
    wait_for(
        lambda: [p for p in cluster.pods_of(job) if p["status"].get("phase") == "Running"], "the pod to run"
    )
    cluster.call("delete", "batch", "jobs", "default", "fg", {"propagationPolicy": "Foreground"})
    wait_for(lambda: cluster.get("batch", "jobs", "default", "fg") is None, "the Job to be deleted")
    assert not cluster.pods_of(job)  # its pod (blockOwnerDeletion) was gone first
    (run,) = [p for p in cluster.node.processes if p.pod.startswith("fg-")]
    assert run.signals == ["SIGTERM"]
