"""Owners bound to namespaces without the admission policy (a cluster where the chart's
ValidatingAdmissionPolicy is not installed): the real operator holds a resource whose owner its
namespace does not allow (applied with the real kubectl), Pending and Stalled with
OwnerNotAllowed, starts no Job for it, and starts it by itself once the namespace's
contentgen.io/owners annotation allows the owner."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from contentgen.controller.owners import ANNOTATION
from tests.harness.conditions import state
from tests.harness.kube import image, record_calls
from tests.kube.harness import cluster, default_manifests, operator, wait_for
from tests.kubectl import Kubectl

pytestmark = pytest.mark.timeout(600)


def test_the_operator_holds_an_owner_the_namespace_does_not_allow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_policy = [
        d for d in default_manifests(tmp_path / "cluster") if "AdmissionPolicy" not in d["kind"]
    ]
    assert len(without_policy) < len(default_manifests(tmp_path / "cluster"))  # the chart has one
    with cluster(
        tmp_path,
        monkeypatch,
        rbac=[d for d in without_policy if d["kind"] != "CustomResourceDefinition"],
    ) as c:
        c.admin.create(
            "/api/v1/namespaces",
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "team", "annotations": {ANNOTATION: "bob"}},
            },
        )
        with operator(c):
            # Through the real kubectl, as a user would: with no policy the API server admits it.
            assert c.local.control is not None
            kubectl = Kubectl(c.local.control.admin_kubeconfig, tmp_path / "kubectl-home")
            applied = kubectl.run("apply", "-n", "team", "-f", "-", stdin=yaml.safe_dump(image("alices")))
            assert "imagegeneration.contentgen.io/alices created" in applied.stdout
            held = wait_for(
                lambda: (
                    (s := c.status("ImageGeneration", "team", "alices")).get("conditions")
                    and state(s, "Ready")[1] == "OwnerNotAllowed"
                    and s
                ),
                what="OwnerNotAllowed",
            )
            assert held["phase"] == "Pending" and state(held, "Stalled") == ("True", "OwnerNotAllowed")
            shown = kubectl.run("get", "imagegeneration", "alices", "-n", "team").stdout
            assert "Pending" in shown, shown
            assert held["message"].startswith(
                f"owner 'alice' is not allowed in namespace team: its annotation {ANNOTATION} allows bob."
            )
            assert f"kubectl annotate namespace team {ANNOTATION}=bob,alice --overwrite" in held["message"]
            wait_for(
                lambda: any(
                    e["reason"] == "OwnerNotAllowed" and e["type"] == "Warning"
                    for e in c.events("team", "alices")
                ),
                what="a Warning event",
            )
            c.apply(image("bobs", owner="bob"), "team")
            c.wait_phase("ImageGeneration", "team", "bobs", "Succeeded")
            bobs = c.status("ImageGeneration", "team", "bobs")["jobName"]
            assert [j["metadata"]["name"] for j in c.jobs("team")] == [bobs]  # none for alice's
            uid = c.resource("ImageGeneration", "team", "alices")["metadata"]["uid"]  # type: ignore[index]
            record = wait_for(lambda: c.catalog_doc(uid), what="the catalog record")
            assert record["latestRun"]["reason"] == "OwnerNotAllowed" and record["status"] == "Pending"
            # The namespace allows alice now: her resource starts by itself.
            c.admin.patch("/api/v1/namespaces/team", {"metadata": {"annotations": {ANNOTATION: "bob,alice"}}})
            done = c.wait_phase("ImageGeneration", "team", "alices", "Succeeded", timeout=180)
            assert done["latestVersion"] == 1
    record_calls(c)
