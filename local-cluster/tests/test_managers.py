"""The controllers' installs as the cluster applies them, without running them (managers.py): from
each release's own install as `make kube` rendered it from its module (controllers/bin/NAME.json),
what the manager process is (its Deployment, Services, Secret, APIServices) is left out, every
webhook and CRD conversion webhook points at the process's address with the cluster's CA, Kueue
keeps only the webhooks of its own kinds and of the frameworks it runs, and the manager's
configuration is the release's with the process's needs merged over it; KEDA's install its
operator's alone. The build's pins."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from localcluster import controllers
from localcluster.managers import (
    ADAPTER_SERVICE,
    KUEUE_FRAMEWORKS,
    adapter_service,
    install_objects,
    manager_config,
    merge,
)
from localcluster.node.layout import Layout
from localcluster.node.nodenet import link_names

URL = "https://10.200.0.1:4443"
CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def release(name: str) -> list[dict[str, Any]]:
    controller = controllers.CONTROLLERS[name]
    if not controller.built():
        pytest.fail(f"{name} is not built: run `make kube`")
    return json.loads(controller.manifests.read_text())  # type: ignore[no-any-return]


def test_the_builds_are_pinned_by_their_go_modules() -> None:
    pins = (
        ("jobset", "v0.12.0"),
        ("kueue", "v0.19.2"),
        ("trainer", "v2.3.0"),
        ("keda", "v2.21.0"),
        ("keda-adapter", "v2.21.0"),
    )
    for name, version in pins:
        controller = controllers.CONTROLLERS[name]
        assert controller.version() == version
        assert f"tool {controller.package}\n" in (controller.source / "go.mod").read_text()
        assert controller.built(), f"{name}: run `make kube`"


@pytest.mark.parametrize("name", ["jobset", "kueue", "trainer"])
def test_the_install_points_every_webhook_at_the_process(name: str) -> None:
    docs = release(name)
    first, hooks, later = install_objects(docs, URL, CA)
    kinds = {d["kind"] for d in [*first, *later]}
    assert not kinds & {"Deployment", "Service", "Secret", "APIService"}, kinds
    assert {"CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} <= kinds
    assert not manager_config(first)  # the manager's own configuration is written by managers.py
    assert hooks and {h["kind"] for h in hooks} == {
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
    for hook in (h for doc in hooks for h in doc["webhooks"]):
        config = hook["clientConfig"]
        assert set(config) == {"url", "caBundle"} and config["url"].startswith(URL + "/"), config
        assert base64.b64decode(config["caBundle"]) == CA
    for crd in (d for d in first if d["kind"] == "CustomResourceDefinition"):
        conversion = crd["spec"].get("conversion") or {}
        if conversion.get("strategy") == "Webhook":
            assert conversion["webhook"]["clientConfig"]["url"] == URL + "/convert"
    if name == "trainer":  # its runtimes are admitted by its own webhooks: applied once it answers
        assert {d["metadata"]["name"] for d in later} >= {"torch-distributed"}


def test_kedas_install_is_its_operators_alone() -> None:
    """Its CRDs, its operator's ServiceAccount and RBAC: no webhook (its admission webhooks are
    another binary, not built) and none of its metrics apiserver's objects."""
    first, hooks, later = install_objects(release("keda"), URL, CA)
    assert not hooks and not later
    crds = {d["metadata"]["name"] for d in first if d["kind"] == "CustomResourceDefinition"}
    assert {"scaledobjects.keda.sh", "scaledjobs.keda.sh", "triggerauthentications.keda.sh"} <= crds
    accounts = [
        (d["metadata"]["namespace"], d["metadata"]["name"]) for d in first if d["kind"] == "ServiceAccount"
    ]
    assert accounts == [("keda", "keda-operator")]
    (role,) = [d for d in first if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "keda-operator"]
    # what scaling a Deployment on its pods takes: list the pods, set the scale, make the HPA
    rules = [(set(r["apiGroups"]), set(r["resources"]), set(r["verbs"])) for r in role["rules"]]
    assert any("" in g and "pods" in r and "list" in v for g, r, v in rules)
    assert any("*" in g and "*/scale" in r and "update" in v for g, r, v in rules)
    assert any("autoscaling" in g and "horizontalpodautoscalers" in r and "create" in v for g, r, v in rules)


def test_kedas_metrics_apiserver_is_its_rbac_then_its_apiservice_at_the_process() -> None:
    """KEDA's metrics apiserver: its release's RBAC first (the HPA controller may read external
    metrics; the server may delegate authentication and authorization), its Deployment and Service
    left out; once it answers, its APIService with the cluster's CA, pointing at a Service without
    a selector whose Endpoints are the process."""
    docs = release("keda-adapter")
    first, hooks, later = install_objects(docs, URL, CA)
    assert not hooks and not later
    kinds = {d["kind"] for d in first}
    assert not kinds & {"Deployment", "Service", "APIService"}
    bindings = {d["metadata"]["name"]: d for d in first if d["kind"].endswith("Binding")}
    hpa = bindings["keda-hpa-controller-external-metrics"]["subjects"]
    assert hpa == [
        {"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler", "namespace": "kube-system"}
    ]
    assert bindings["keda-system-auth-delegator"]["roleRef"]["name"] == "system:auth-delegator"
    service, endpoints, api = adapter_service(docs, "10.200.0.1", 4443, CA)
    assert api["metadata"]["name"] == "v1beta1.external.metrics.k8s.io"
    assert api["spec"]["service"] == {"name": ADAPTER_SERVICE, "namespace": "keda", "port": 443}
    assert base64.b64decode(api["spec"]["caBundle"]) == CA and "insecureSkipTLSVerify" not in api["spec"]
    assert service["spec"] == {"ports": [{"name": "https", "port": 443, "targetPort": 4443}]}  # no selector
    assert endpoints["subsets"] == [
        {"addresses": [{"ip": "10.200.0.1"}], "ports": [{"name": "https", "port": 4443}]}
    ]


def test_kueue_keeps_the_webhooks_of_its_kinds_and_of_the_frameworks_it_runs() -> None:
    docs = release("kueue")
    groups = frozenset({"kueue.x-k8s.io", *KUEUE_FRAMEWORKS.values()})
    _, all_hooks, _ = install_objects(docs, URL, CA)
    _, hooks, _ = install_objects(docs, URL, CA, groups)
    names = {h["name"] for doc in hooks for h in doc["webhooks"]}
    every = {h["name"] for doc in all_hooks for h in doc["webhooks"]}
    assert {"mjob.kb.io", "vjob.kb.io", "mjobset.kb.io", "mtrainjob.kb.io", "mworkload.kb.io"} <= names
    # the Pod, Deployment and StatefulSet integrations' are not (every such creation would wait on Kueue)
    assert {"mpod.kb.io", "mdeployment.kb.io", "mstatefulset.kb.io"} <= every - names
    # the release's own configuration, which managers.py changes only where the process needs it
    assert "batch/job" in manager_config(docs)["integrations"]["frameworks"]


def test_settings_merge_mapping_by_mapping() -> None:
    base = {"webhook": {"port": 9443, "host": ""}, "integrations": {"frameworks": ["a", "b"]}, "keep": 1}
    over = {"webhook": {"port": 1}, "integrations": {"frameworks": ["c"]}}
    assert merge(base, over) == {
        "webhook": {"port": 1, "host": ""},
        "integrations": {"frameworks": ["c"]},
        "keep": 1,
    }
    assert base["webhook"] == {"port": 9443, "host": ""}  # not changed in place


def test_the_links_between_nodes_are_named_within_linux_limits(tmp_path: Any) -> None:
    a, b = Layout(200, tmp_path / "a"), Layout(254, tmp_path / "b")
    ends = link_names(a, b)
    assert ends == ("lc200to254", "lc254to200")
    assert all(len(end) <= 15 for end in ends)
