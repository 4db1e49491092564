"""A Job's pod that the cluster will not create, schedule or start is reported in the resource's
status (Pending, with the reason and the cluster's own words) well within a minute, by the real
API server's admission (ResourceQuota, LimitRange, ServiceAccount) and the real scheduler; and the
resource goes on by itself once the obstacle is gone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness.kube import image, reason, record_calls
from tests.kube.harness import Cluster, operator, unoperated, wait_for

pytestmark = pytest.mark.timeout(600)
WITHIN = 60.0  # the promise: the cause is in the status within a minute


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with unoperated(tmp_path_factory) as c, pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONTENTGEN_RECONCILE_INTERVAL_SECONDS", "2")
        with operator(c):
            yield c
        record_calls(c)


def reported(c: Cluster, namespace: str, name: str, why: str) -> dict[str, Any]:
    began = time.monotonic()
    status = wait_for(
        lambda: (
            (s := c.status("ImageGeneration", namespace, name)).get("conditions") and reason(s) == why and s
        ),
        WITHIN + 30,
        lambda: f"{why} for {namespace}/{name} (now {c.status('ImageGeneration', namespace, name)})",
    )
    assert time.monotonic() - began < WITHIN + 30  # a hang guard, generous; the status carries the cause
    assert status["phase"] == "Pending"
    wait_for(
        lambda: any(e["reason"] == why and e["type"] == "Warning" for e in c.events(namespace, name)),
        30,
        f"a Warning {why}",
    )
    return status  # type: ignore[no-any-return]


def test_a_quota_on_cpu_limits_refuses_the_pod(env: Cluster) -> None:
    c, ns = env, "quota"
    c.ensure_namespace(ns)
    c.enforce_quota(ns, {"limits.cpu": "4"}, "cpu")
    c.apply(image("capped"), ns)
    status = reported(c, ns, "capped", "PodNotCreated")
    assert "cannot create its pod" in status["message"] and "limits.cpu" in status["message"], status
    c.admin.delete(f"/api/v1/namespaces/{ns}/resourcequotas/cpu")  # the administrator relents
    c.wait_phase("ImageGeneration", ns, "capped", "Succeeded", timeout=420)


def test_a_limit_range_below_the_workers_memory_refuses_the_pod(env: Cluster) -> None:
    c, ns = env, "small"
    c.ensure_namespace(ns)
    limits = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "small", "namespace": ns},
        "spec": {"limits": [{"type": "Container", "max": {"memory": "256Mi"}}]},
    }
    c.admin.create(f"/api/v1/namespaces/{ns}/limitranges", limits)
    c.apply(image("too-big"), ns)
    status = reported(c, ns, "too-big", "PodNotCreated")
    assert "maximum memory usage per Container is 256Mi" in status["message"], status


def test_an_unschedulable_pod_is_reported(env: Cluster) -> None:
    c, ns = env, "nowhere"
    node = f"/api/v1/nodes/{c.node_name}"
    c.admin.patch(node, {"spec": {"unschedulable": True}})  # kubectl cordon
    try:
        c.apply(image("homeless"), ns)
        status = reported(c, ns, "homeless", "PodNotScheduled")
        assert "cannot be scheduled" in status["message"] and "unschedulable" in status["message"], status
    finally:
        c.admin.patch(node, {"spec": {"unschedulable": False}})  # kubectl uncordon
    c.wait_phase("ImageGeneration", ns, "homeless", "Succeeded", timeout=300)


def test_a_namespace_made_again_gets_its_worker_account_again(env: Cluster) -> None:
    c, ns = env, "reborn"
    c.apply(image("first"), ns)
    c.wait_phase("ImageGeneration", ns, "first", "Succeeded")
    c.admin.delete(f"/api/v1/namespaces/{ns}")
    wait_for(lambda: c.get("namespaces", "", ns) is None, 120, "the namespace gone")
    c.apply(image("second"), ns)  # the operator made its ServiceAccount once, in the old namespace
    c.wait_phase("ImageGeneration", ns, "second", "Succeeded", timeout=180)
    assert c.get("serviceaccounts", ns, "contentgen-worker") is not None
