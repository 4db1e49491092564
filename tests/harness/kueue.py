"""Kueue's Workloads as the operator reads them: conditions, a Workload of a Job, a started
resource (tests/controller)."""

from __future__ import annotations

from typing import Any

from contentgen.controller.decide import World, decide
from tests.harness.controller import NOW, apply, resource

JOB_UID = "5d3c8a52-1111-4222-8333-444455556666"


WORKLOAD = "job-demo-ig-0b7f1f3e-g1-3c2ab"


PENDING_QUOTA = (
    "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor "
    "default-flavor, 1 more needed"
)


def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-11-21T11:59:00Z",
        "observedGeneration": 1,
    }


def workload(
    *conditions: dict[str, Any],
    active: bool | None = None,
    job_uid: str = JOB_UID,
    name: str = WORKLOAD,
    **status: Any,
) -> dict[str, Any]:
    """A Workload of a batch/v1 Job as Kueue makes it (jobframework.ConstructWorkload)."""
    spec: dict[str, Any] = {
        "queueName": "gpus",
        "podSets": [{"name": "main", "count": 1, "template": {"spec": {"containers": []}}}],
    }
    if active is not None:
        spec["active"] = active
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Workload",
        "metadata": {
            "name": name,
            "namespace": "ns",
            "creationTimestamp": "2026-11-21T11:58:00Z",
            "labels": {"kueue.x-k8s.io/job-uid": job_uid},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": "demo-ig-0b7f1f3e-g1",
                    "uid": job_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
        "status": {"conditions": list(conditions), **status},
    }


def started() -> Any:
    res = resource("ImageGeneration", provider="cluster")
    return apply(res, decide(res, World(now=NOW)))
