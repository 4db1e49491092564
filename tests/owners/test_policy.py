"""The chart's ValidatingAdmissionPolicy, evaluated by the real kube-apiserver (tests/apiserver.py)
and met through the real kubectl: an ImageGeneration whose owner its namespace does not allow is
refused, with a message that names the contentgen.io/owners annotation and the command that allows
the owner (which works); the chart's mapping and default apply where a namespace has no
annotation; updates of existing resources are never refused (their owner was checked at creation;
the operator re-checks before each run)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import apiserver
from tests.chart.conftest import render
from tests.kubectl import Kubectl

LABEL = "contentgen.test/owner-policy"


def install_policy(tag: str, values: dict[str, Any]) -> None:
    """The chart's policy and binding (under names of their own), for namespaces labelled `tag`."""
    from tests.harness.kubeapi import apply_crds

    apply_crds()
    docs = [
        d
        for d in render({"ownerPolicy": {**values, "namespaceSelector": {LABEL: tag}}})
        if "Admission" in d["kind"] and d["metadata"]["name"] == "contentgen-owners"
    ]
    assert [d["kind"] for d in docs] == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    for doc in docs:
        doc["metadata"]["name"] += f"-{tag}"
        if doc["kind"] == "ValidatingAdmissionPolicyBinding":
            doc["spec"]["policyName"] += f"-{tag}"
        apiserver.admin().apply(doc)


def namespace(tag: str, owners: str | None = None) -> str:
    name = apiserver.fresh_namespace(f"owners-{tag}")
    meta: dict[str, Any] = {"labels": {LABEL: tag}}
    if owners is not None:
        meta["annotations"] = {"contentgen.io/owners": owners}
    apiserver.admin().patch(f"/api/v1/namespaces/{name}", {"metadata": meta})
    return name


def image(name: str, owner: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": "ImageGeneration",
            "metadata": {"name": name},
            "spec": {"owner": owner, "prompt": "a lighthouse at dusk", "provider": "offline"},
        }
    )


@pytest.fixture
def kubectl(tmp_path: Path) -> Kubectl:
    return Kubectl(apiserver.admin_kubeconfig(), tmp_path / "home")


def in_force(k: Kubectl, ns: str, refused_owner: str) -> None:
    """The API server loads a new policy in the background: wait until it refuses a dry run."""
    deadline = time.monotonic() + 30
    while (
        k.run(
            "apply", "-n", ns, "--dry-run=server", "-f", "-", stdin=image("probe", refused_owner), check=False
        ).returncode
        == 0
    ):
        assert time.monotonic() < deadline, "the policy was not in force in time"
        time.sleep(0.2)


def test_an_owner_the_namespace_does_not_list_is_refused_through_kubectl(kubectl: Kubectl) -> None:
    install_policy("annotated", {})
    ns = namespace("annotated", "bob, carol")
    in_force(kubectl, ns, "alice")
    refused = kubectl.run("apply", "-n", ns, "-f", "-", stdin=image("portrait", "alice"), check=False)
    assert refused.returncode == 1
    message = refused.stderr
    assert "ValidatingAdmissionPolicy 'contentgen-owners-annotated'" in message
    assert (
        f"spec.owner: owner alice is not allowed in namespace {ns}: "
        "its annotation contentgen.io/owners allows bob, carol" in message
    )
    fix = f"kubectl annotate namespace {ns} contentgen.io/owners=bob,carol,alice --overwrite"
    assert fix in message
    assert kubectl.run("get", "imagegenerations", "-n", ns, "-o", "name").stdout == ""
    # An owner it lists is admitted.
    assert "created" in kubectl.run("apply", "-n", ns, "-f", "-", stdin=image("for-bob", "bob")).stdout
    # The command in the message allows alice.
    kubectl.run(*fix.split()[1:])
    assert "created" in kubectl.run("apply", "-n", ns, "-f", "-", stdin=image("portrait", "alice")).stdout
    # Taking alice out again refuses new resources of hers, but never an update of one that exists.
    kubectl.run("annotate", "namespace", ns, "contentgen.io/owners=bob", "--overwrite")
    in_force(kubectl, ns, "alice")
    patched = kubectl.run(
        "patch", "imagegeneration", "portrait", "-n", ns, "--type=merge", "-p", '{"spec":{"seed":7}}'
    )
    assert "patched" in patched.stdout


def test_the_charts_mapping_and_default_where_there_is_no_annotation(kubectl: Kubectl) -> None:
    mapped_ns = apiserver.fresh_namespace("owners-mapped")
    install_policy("mapped", {"namespaces": {mapped_ns: ["dora"]}, "default": []})
    apiserver.admin().patch(f"/api/v1/namespaces/{mapped_ns}", {"metadata": {"labels": {LABEL: "mapped"}}})
    elsewhere = namespace("mapped")
    open_to_all = namespace("mapped", "*")
    empty = namespace("mapped", "")
    in_force(kubectl, mapped_ns, "erin")
    ok = kubectl.run("apply", "-n", mapped_ns, "-f", "-", stdin=image("a", "dora"))
    assert "created" in ok.stdout
    refused = kubectl.run("apply", "-n", mapped_ns, "-f", "-", stdin=image("b", "erin"), check=False)
    assert refused.returncode == 1
    assert "it has no contentgen.io/owners annotation, and the chart allows dora there" in refused.stderr
    nobody = kubectl.run("apply", "-n", elsewhere, "-f", "-", stdin=image("c", "dora"), check=False)
    assert nobody.returncode == 1 and "the chart allows no owner there" in nobody.stderr
    assert "created" in kubectl.run("apply", "-n", open_to_all, "-f", "-", stdin=image("d", "anyone")).stdout
    none = kubectl.run("apply", "-n", empty, "-f", "-", stdin=image("e", "dora"), check=False)
    assert none.returncode == 1 and "its annotation contentgen.io/owners allows no owner there" in none.stderr


def test_namespaces_the_policy_does_not_select_are_left_alone(kubectl: Kubectl) -> None:
    install_policy("selected", {"default": []})
    free = apiserver.fresh_namespace("owners-free")  # not labelled: not the binding's
    probe = namespace("selected")
    in_force(kubectl, probe, "alice")
    assert "created" in kubectl.run("apply", "-n", free, "-f", "-", stdin=image("x", "alice")).stdout
