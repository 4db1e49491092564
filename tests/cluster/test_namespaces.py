"""Namespaces: the system ones from the start, a default ServiceAccount in each, and a deleted
namespace emptied (running pods included) before its finalizer is removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from contentgen.cluster.namespaces import SYSTEM_NAMESPACES
from tests.cluster.conftest import CA_PEM, Cluster, job_manifest, wait_for

pytestmark = pytest.mark.timeout(60)


def test_system_namespaces_and_default_service_accounts(cluster: Cluster) -> None:
    names = {ns["metadata"]["name"] for ns in cluster.list("", "namespaces", None)}
    assert set(SYSTEM_NAMESPACES) <= names
    for name in SYSTEM_NAMESPACES:
        wait_for(
            lambda n=name: cluster.get("", "serviceaccounts", n, "default"),
            f"the default ServiceAccount in {name}",
        )
    cluster.create("", "namespaces", {"metadata": {"name": "team-a"}})
    wait_for(
        lambda: cluster.get("", "serviceaccounts", "team-a", "default"), "a ServiceAccount in a new namespace"
    )
    ca = wait_for(lambda: cluster.get("", "configmaps", "team-a", "kube-root-ca.crt"), "the cluster CA")
    assert ca["data"] == {"ca.crt": CA_PEM}
    cluster.call("delete", "", "serviceaccounts", "team-a", "default")
    wait_for(
        lambda: cluster.get("", "serviceaccounts", "team-a", "default"),
        "the deleted ServiceAccount to be re-created",
    )


def test_a_deleted_namespace_is_emptied_then_finalized(cluster: Cluster, tmp_path: Path) -> None:
    cluster.create("", "namespaces", {"metadata": {"name": "doomed"}})
    wait_for(
        lambda: cluster.get("", "serviceaccounts", "doomed", "default"), "the namespace's ServiceAccount"
    )
    cluster.create("", "configmaps", {"metadata": {"name": "settings"}, "data": {"a": "b"}}, "doomed")
    cluster.create("", "secrets", {"metadata": {"name": "keys"}, "stringData": {"k": "v"}}, "doomed")
    held = {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "data": {}}
    cluster.create("", "configmaps", held, "doomed")
    script = f"import os, time\nwhile not os.path.exists({str(tmp_path / 'never')!r}): time.sleep(0.02)\n"
    job = cluster.create("batch", "jobs", job_manifest("busy", "-c", script), "doomed")
    wait_for(
        lambda: [p for p in cluster.pods_of(job) if p["status"].get("phase") == "Running"], "the pod to run"
    )

    cluster.call("delete", "", "namespaces", "", "doomed")
    ns = cluster.get("", "namespaces", "", "doomed")
    assert ns is not None and ns["status"]["phase"] == "Terminating"

    def conditions() -> dict[str, tuple[str, str]]:
        current = cluster.get("", "namespaces", "", "doomed") or {}
        return {
            c["type"]: (c["status"], c["message"]) for c in current.get("status", {}).get("conditions") or []
        }

    only_held = {
        "NamespaceContentRemaining": (
            "True",
            "Some resources are remaining: configmaps. has 1 resource instances",
        ),
        "NamespaceFinalizersRemaining": (
            "True",
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances",  # noqa: E501
        ),
        "NamespaceDeletionContentFailure": (
            "False",
            "All content successfully deleted, may be waiting on finalization",
        ),
    }
    wait_for(
        lambda: all(conditions().get(k) == v for k, v in only_held.items()),
        "all but the held ConfigMap to go",
    )
    assert not cluster.list("", "pods", "doomed")  # the running pod was stopped and deleted
    assert cluster.get("", "namespaces", "", "doomed") is not None  # held by the ConfigMap's finalizer
    cluster.call(
        "patch",
        "",
        "configmaps",
        "doomed",
        "held",
        {"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    wait_for(lambda: cluster.get("", "namespaces", "", "doomed") is None, "the namespace to be finalized")
    for plural in ("configmaps", "secrets", "serviceaccounts", "pods", "events"):
        assert not cluster.list("", plural, "doomed"), plural
    assert not cluster.list("batch", "jobs", "doomed")
    (run,) = [p for p in cluster.node.processes if p.namespace == "doomed"]
    assert run.signals == ["SIGTERM"]
