"""Fencing (issue 28) as the real API server enforces it (tests/apiserver.py), through the
operator's own adapter (controller/kube.py): a status write decided on an older version is
refused with a 409 (so a former leader's late write cannot undo a newer state), the resource is
read again by a list (the operator's RBAC), an Event of a transition posted twice is one Event,
and a replica that cannot prove its Lease sends no write at all."""

from __future__ import annotations

import asyncio
from typing import Any

import kubernetes
import pytest
import yaml

from contentgen.api import KINDS
from contentgen.api.crd import rendered_crds
from contentgen.controller.events import event_body
from contentgen.controller.kube import Kube, KubeError, NotLeading
from tests import waiting
from tests.apiserver import admin, admin_kubeconfig, fresh_namespace

KIND = KINDS["ImageGeneration"]


def install_crd() -> None:
    client = admin()
    crd = next(yaml.safe_load(text) for text in rendered_crds().values() if "imagegenerations" in text)
    client.apply(crd)
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}"

    def established() -> bool:
        conditions = (client.get(path).get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    waiting.wait_for(established, 60, "the CRD to be served", interval=0.1)


def kube(**kwargs: Any) -> Kube:
    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(admin_kubeconfig()), client_configuration=config)  # type: ignore[no-untyped-call]
    return Kube(config, **kwargs)


@pytest.fixture(scope="module")
def namespace() -> str:
    install_crd()
    return fresh_namespace("fencing")


def create(namespace: str, name: str) -> dict[str, Any]:
    body = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "ImageGeneration",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"owner": "alice", "provider": "offline", "prompt": "a lighthouse", "numImages": 1},
    }
    return admin().create(f"/apis/contentgen.io/v1alpha1/namespaces/{namespace}/imagegenerations", body)  # type: ignore[no-any-return]


def test_a_status_write_decided_on_an_older_version_is_refused(namespace: str) -> None:
    created = create(namespace, "stale")
    decided_on = str(created["metadata"]["resourceVersion"])

    async def go() -> None:
        k = kube()
        try:
            done = await k.patch_status(KIND, namespace, "stale", {"phase": "Succeeded"}, decided_on)
            assert done["status"]["phase"] == "Succeeded"
            with pytest.raises(KubeError) as refused:  # a former leader's write, decided before
                await k.patch_status(KIND, namespace, "stale", {"phase": "Running"}, decided_on)
            assert refused.value.status == 409
            latest = await k.read_resource(KIND, namespace, "stale")
            assert latest is not None and latest["status"]["phase"] == "Succeeded"
            assert latest["metadata"]["resourceVersion"] == done["metadata"]["resourceVersion"]
            assert await k.read_resource(KIND, namespace, "absent") is None
        finally:
            await k.close()

    asyncio.run(go())


def test_an_event_of_a_transition_is_recorded_once(namespace: str) -> None:
    resource = create(namespace, "evented")

    async def go() -> None:
        k = kube()
        body = event_body(resource, "Normal", "Succeeded", "done", transition="42")
        try:
            await k.request("POST", f"/api/v1/namespaces/{namespace}/events", body)
            with pytest.raises(KubeError) as again:  # the same transition, posted by another replica
                await k.request("POST", f"/api/v1/namespaces/{namespace}/events", body)
            assert again.value.status == 409
        finally:
            await k.close()

    asyncio.run(go())
    events = admin().get(f"/api/v1/namespaces/{namespace}/events")["items"]
    assert [e["reason"] for e in events if e["involvedObject"]["name"] == "evented"] == ["Succeeded"]


def test_a_replica_that_cannot_prove_its_lease_sends_no_write(namespace: str) -> None:
    create(namespace, "fenced")

    async def go() -> None:
        k = kube(may_write=lambda: False)
        try:
            with pytest.raises(NotLeading):
                await k.patch_status(KIND, namespace, "fenced", {"phase": "Failed"})
            assert await k.read_resource(KIND, namespace, "fenced") is not None  # reads still go
        finally:
            await k.close()

    asyncio.run(go())
    fenced = admin().get(f"/apis/contentgen.io/v1alpha1/namespaces/{namespace}/imagegenerations/fenced")
    assert "status" not in fenced or fenced["status"].get("phase") != "Failed"
